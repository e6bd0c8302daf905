/**
 * What becomes of a row a stage gives up on: a vanished row (deleted by the application during the run) is counted and
 * logged, never reported; any other failure is counted and handed to the run's `onRowFailed` (the CLI's --report).
 */
import { isVanished, Metrics, type RowFailed } from "@lo-migrate/core"
import * as Effect from "effect/Effect"

export type ReportRow = (failure: RowFailed) => Effect.Effect<void>

export const makeReportRow = Effect.fnUntraced(function*(onRowFailed?: ReportRow) {
  const metrics = yield* Metrics
  const report: ReportRow = (failure) =>
    isVanished(failure)
      ? Effect.andThen(metrics.vanished, Effect.logInfo(`row vanished (deleted during the run), skipped: ${failure.message}`))
      : Effect.andThen(metrics.failed(failure), onRowFailed?.(failure) ?? Effect.void)
  return report
})

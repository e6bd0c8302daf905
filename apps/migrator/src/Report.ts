/**
 * The failure report: every row that failed (malformed hash, NULL oid, missing large object, size or SHA-1 mismatch,
 * no right to read its large object, conflicting at commit) as one JSON line `{"hash","oid","reason","detail"}`, so operators can grep,
 * count by reason or feed it to a repair script. Each failure is also logged as a warning.
 *
 * Rows deleted by the application during the run (vanished) are not failures and are not listed (the summary counts
 * them).
 *
 * The file is truncated when the run starts: it lists the failures of this run (a bad row that is still bad is found
 * again by every run, since its `sha2` stays NULL).
 */
import type { RowFailed } from "@lo-migrate/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Semaphore from "effect/Semaphore"

export interface ReportLine {
  readonly hash: string
  readonly oid: number | null
  /** The failure's tag: MalformedHash, NullOid, InvalidSize, MissingLargeObject, SizeMismatch, Sha1Mismatch, ... */
  readonly reason: string
  /** Human-readable detail (sizes, the computed SHA-1, ...). */
  readonly detail: string
}

export const reportLine = (failure: RowFailed): ReportLine => ({
  hash: failure.hash,
  oid: failure.oid,
  reason: failure.reason._tag,
  detail: failure.reason.message
})

export const formatReportLine = (failure: RowFailed): string => `${JSON.stringify(reportLine(failure))}\n`

/** The report file could not be opened or written: fatal (exit 3), since failures would go unrecorded. */
export class ReportError extends Schema.TaggedError<ReportError>()("ReportError", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `cannot write the failure report ${this.path}: ${this.detail}`
  }
}

export class FailureReport extends Context.Service<FailureReport, {
  readonly record: (failure: RowFailed) => Effect.Effect<void, ReportError>
}>()("lo-migrate/FailureReport") {
  /** Log only (no --report). */
  static readonly logOnly: Layer.Layer<FailureReport> = Layer.succeed(
    FailureReport,
    FailureReport.of({
      record: (failure) => Effect.logWarning(`row failed, skipped: ${failure.message}`)
    })
  )

  /** Log and append to `path` (truncated first). Opening fails fast with `ReportError`. */
  static readonly file = (path: string): Layer.Layer<FailureReport, ReportError, FileSystem.FileSystem> =>
    Layer.effect(
      FailureReport,
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const file = yield* fs.open(path, { flag: "w" }).pipe(
          Effect.mapError((e) => new ReportError({ path, detail: e.message }))
        )
        const encoder = new TextEncoder()
        // One writer at a time: lines from concurrent stages must not interleave.
        const lock = yield* Semaphore.make(1)
        return FailureReport.of({
          record: (failure) =>
            Effect.logWarning(`row failed, skipped: ${failure.message}`).pipe(
              Effect.andThen(
                lock.withPermits(1)(file.writeAll(encoder.encode(formatReportLine(failure))))
              ),
              Effect.mapError((e) => new ReportError({ path, detail: e.message }))
            )
        })
      })
    )
}

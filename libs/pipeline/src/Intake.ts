/**
 * The source side of a run: the rows to migrate, from `LoSource` into the read queue (counted as stage "source"), and
 * the count of the remaining rows for the monitor. The source retries each failed page itself (with the run's
 * `RetryPolicy`) and keeps its cursor, so every row comes through once; an error that reaches here has spent its
 * retry budget.
 */
import { LoSource, Metrics, retryInfrastructure, type SourceRow } from "@lo-migrate/core"
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { claimedBytes } from "./InFlight.ts"
import type { Stop } from "./Stop.ts"

/**
 * Offers the source's rows to the read queue until the source is exhausted or `stop` comes, then ends the queue.
 */
export const intake = Effect.fn("Pipeline.intake")(function*(readQueue: Queue.Queue<SourceRow, Cause.Done>, stop: Stop) {
  const source = yield* LoSource
  const metrics = yield* Metrics
  const pump = source.rows.pipe(
    Stream.runForEachArray((chunk) =>
      Effect.andThen(
        metrics.processed("source", chunk.length, chunk.reduce((n, row) => n + claimedBytes(row), 0)),
        Queue.offerAll(readQueue, chunk)
      )
    ),
    Effect.andThen(stop.sourceExhausted)
  )
  yield* Effect.raceFirst(pump, stop.requested).pipe(Effect.ensuring(Queue.end(readQueue)))
})

/**
 * Counts the remaining rows for the monitor's percentage and ETA. It can take long on a big table, so it runs beside
 * the migration, and its failure only costs the monitor those figures.
 */
export const countRows: Effect.Effect<void, never, LoSource | Metrics> = Effect.gen(function*() {
  const source = yield* LoSource
  const metrics = yield* Metrics
  yield* source.count.pipe(
    retryInfrastructure("count"),
    Effect.flatMap(metrics.setCounts),
    Effect.catch((e) => Effect.logWarning(`could not count the rows to migrate: ${e.message}`))
  )
})

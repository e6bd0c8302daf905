/**
 * The read stage: read queue ─▶ `LoReader.read` / `readBatch` ×readers ─▶ store queue. Each unit (one row, or a batch
 * of small rows) first waits for the throttle (Throttle.ts), then for its bytes in the byte budgets, then is read (retried per the run's policy; a spill
 * that found the disk full first waits for the spilled objects in flight to be released). Objects read are handed to
 * `InFlight` and to the store queue; rows that fail are reported. The store queue ends when the stage does.
 */
import {
  type InfrastructureError,
  type LoObject,
  LoReader,
  Metrics,
  retryInfrastructure,
  type RowFailed
} from "@lo-migrate/core"
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type { InFlight } from "./InFlight.ts"
import type { ReadUnit, ReadUnits } from "./ReadUnits.ts"
import type { ReportRow } from "./Report.ts"
import { type Admission, noThrottle } from "./Throttle.ts"

type ReadResults = ReadonlyArray<Result.Result<LoObject, RowFailed>>

/** One unit through the reader: one result per row (a row's own failure is a result, not an error). */
const readOnce = Effect.fnUntraced(function*(unit: ReadUnit) {
  const reader = yield* LoReader
  if (unit._tag === "Single") {
    return yield* reader.read(unit.rows[0]!).pipe(
      Effect.map((o): ReadResults => [Result.succeed(o)]),
      Effect.catchTag("RowFailed", (e) => Effect.succeed<ReadResults>([Result.fail(e)]))
    )
  }
  const results = yield* reader.readBatch(unit.rows)
  if (results.length !== unit.rows.length) {
    return yield* Effect.die(new Error(`LoReader.readBatch returned ${results.length} results for ${unit.rows.length} rows`))
  }
  return results
})

/**
 * Reads one unit within the byte budgets. The waits (for budget, for the read) are interruptible; taking ownership of
 * what they produced is not, so no object escapes `InFlight` and no byte of a budget is lost.
 */
const readUnit = (
  unit: ReadUnit,
  inFlight: InFlight,
  admit: Admission
): Effect.Effect<ReadResults, InfrastructureError, LoReader | Metrics> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      yield* restore(admit(unit.rows.length, unit.bytes.claimed))
      const reservations = yield* inFlight.reserve(unit.bytes.charges, restore)
      const exit = yield* Effect.exit(restore(
        readOnce(unit).pipe(
          Effect.tapError((e) => e._tag === "LocalFileError" && e.retryable ? inFlight.spillsDrained : Effect.void),
          retryInfrastructure(unit._tag === "Single" ? "read" : "readBatch")
        )
      ))
      if (Exit.isFailure(exit)) {
        yield* inFlight.cancel(reservations)
        return yield* Effect.failCause(exit.cause)
      }
      yield* inFlight.adopt(reservations, exit.value)
      return exit.value
    })
  )

/** Reads every unit `units` yields, `readers` at a time, into `storeQueue`; ends the store queue when done. */
export const readStage = Effect.fn("Pipeline.read")(function*(
  units: ReadUnits,
  storeQueue: Queue.Queue<LoObject, Cause.Done>,
  inFlight: InFlight,
  options: { readonly readers: number; readonly report: ReportRow; readonly admit?: Admission }
) {
  const metrics = yield* Metrics
  yield* Stream.fromEffectRepeat(units.next).pipe(
    Stream.mapEffect((unit) => readUnit(unit, inFlight, options.admit ?? noThrottle), { concurrency: options.readers, unordered: true }),
    Stream.runForEach((results) => {
      const objects: Array<LoObject> = []
      const failures: Array<RowFailed> = []
      let bytes = 0
      for (const r of results) {
        if (Result.isFailure(r)) {
          failures.push(r.failure)
        } else {
          objects.push(r.success)
          bytes += r.success.size
        }
      }
      // the unit's objects go on together: one count, one offer
      const passOn = objects.length === 0
        ? Effect.void
        : Effect.andThen(metrics.processed("read", objects.length, bytes), Queue.offerAll(storeQueue, objects))
      return Effect.andThen(passOn, Effect.forEach(failures, options.report, { discard: true }))
    })
  )
  yield* Queue.end(storeQueue)
})

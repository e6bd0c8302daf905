/**
 * How the read stage takes rows from the read queue: one row at a time, or several small rows already waiting grouped
 * into one `LoReader.readBatch` call (batching never waits for rows, and a batch never claims more than a byte
 * budget). On `stop` it takes no more rows (`halt`) and drops those still waiting (`dropWaiting`).
 */
import type { SourceRow } from "@lo-migrate/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type { ValidPipelineConfig } from "./Config.ts"
import type { InFlight, UnitBytes } from "./InFlight.ts"

/** Rows read together: `Single` (one row, `LoReader.read`) or `Batch` (one `readBatch` call), and what they cost. */
export interface ReadUnit {
  readonly _tag: "Single" | "Batch"
  readonly rows: ReadonlyArray<SourceRow>
  /** Worked out while the unit was built (`InFlight.unitFrom`). */
  readonly bytes: UnitBytes
}

export class ReadUnits {
  /** A row polled while filling a batch that could not join it: read next. */
  private pending: SourceRow | undefined
  private stopped = false

  private readonly queue: Queue.Dequeue<SourceRow, Cause.Done>
  private readonly cfg: ValidPipelineConfig
  private readonly inFlight: InFlight

  constructor(queue: Queue.Dequeue<SourceRow, Cause.Done>, cfg: ValidPipelineConfig, inFlight: InFlight) {
    this.queue = queue
    this.cfg = cfg
    this.inFlight = inFlight
  }

  private batchable(row: SourceRow): boolean {
    return this.cfg.readBatchRows > 1 && Number.isSafeInteger(row.size) && row.size >= 0 &&
      row.size <= this.cfg.readBatchObjectMax
  }

  /** The next unit to read; `Cause.Done` once the queue has ended (or `stop` came). */
  get next(): Effect.Effect<ReadUnit, Cause.Done> {
    const self = this
    return Effect.gen(function*() {
      if (self.stopped) return yield* Cause.done()
      let first: SourceRow
      if (self.pending !== undefined) {
        first = self.pending
        self.pending = undefined
      } else {
        first = yield* Queue.take(self.queue)
      }
      const rows = [first]
      const unit = self.inFlight.unitFrom(first)
      const batching = self.batchable(first)
      while (batching && rows.length < self.cfg.readBatchRows) {
        const next = yield* Queue.poll(self.queue)
        if (Option.isNone(next)) break
        if (!self.batchable(next.value) || !unit.fits(next.value)) {
          self.pending = next.value
          break
        }
        rows.push(next.value)
      }
      return { _tag: rows.length === 1 ? "Single" : "Batch", rows, bytes: unit.bytes() }
    })
  }

  /** Takes no more rows: `next` ends from now on. */
  halt(): void {
    this.stopped = true
  }

  /** Drops the rows waiting (in the queue, or polled for a batch); whether there were any. */
  get dropWaiting(): Effect.Effect<boolean> {
    return Effect.map(Queue.clear(this.queue), (dropped) => {
      const left = dropped.length > 0 || this.pending !== undefined
      this.pending = undefined
      return left
    })
  }
}

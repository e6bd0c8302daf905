/**
 * How the read stage takes rows from the read queue: one row at a time, or several small rows already waiting grouped
 * into one `LoReader.readBatch` call (batching never waits for rows, and a batch never claims more than a byte
 * budget). A batch goes on past rows too big to join it (`readBatchObjectMax`): they are set aside, at most
 * `readBatchRows` of them per batch, and read next as singles in the order they came. A row that does not fit the
 * batch's byte budget ends the batch and is read after those. On `stop` it takes no more rows (`halt`) and drops
 * those still waiting, in the queue or set aside (`dropWaiting`).
 */
import type { SourceRow } from "@lo-migrate/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
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
  /**
   * Rows taken from the queue while a batch was built that did not join it, in the order they came: read next, before
   * any row of the queue. At most `readBatchRows` (the bound on rows held here, outside the queue).
   */
  private readonly waiting: Array<SourceRow> = []
  private stopped = false

  private readonly queue: Queue.Dequeue<SourceRow, Cause.Done>
  private readonly cfg: ValidPipelineConfig
  private readonly inFlight: InFlight

  constructor(queue: Queue.Dequeue<SourceRow, Cause.Done>, cfg: ValidPipelineConfig, inFlight: InFlight) {
    this.queue = queue
    this.cfg = cfg
    this.inFlight = inFlight
  }

  /**
   * A row may join a batch if it is small (`readBatchObjectMax`) and will be held in memory (`inMemoryObjectMax`, when
   * known): a row the reader spills goes alone, so one unit never holds more than one spill file before its objects are
   * adopted (a batch of spilled rows could fill a small --temp-dir with files that no upload can free, and fail again
   * on every retry).
   */
  private batchable(row: SourceRow): boolean {
    return this.cfg.readBatchRows > 1 && Number.isSafeInteger(row.size) && row.size >= 0 &&
      row.size <= this.cfg.readBatchObjectMax && row.size <= (this.cfg.inMemoryObjectMax ?? Number.MAX_SAFE_INTEGER)
  }

  /**
   * The unit that starts with `first`: alone, or a batch filled with rows already in the queue. In one synchronous
   * step, so `halt` and `dropWaiting` (another fiber) never see a batch half built; after `halt` it takes no more rows.
   */
  private build(first: SourceRow): ReadUnit {
    const rows = [first]
    const unit = this.inFlight.unitFrom(first)
    const max = this.cfg.readBatchRows
    if (this.batchable(first) && !this.stopped) {
      while (rows.length < max && this.waiting.length < max) {
        const next = Queue.takeUnsafe(this.queue)
        if (next === undefined || Exit.isFailure(next)) break
        const row = next.value
        if (!this.batchable(row)) {
          this.waiting.push(row)
        } else if (unit.fits(row)) {
          rows.push(row)
        } else {
          this.waiting.push(row)
          break
        }
      }
    }
    return { _tag: rows.length === 1 ? "Single" : "Batch", rows, bytes: unit.bytes() }
  }

  /** The next unit to read; `Cause.Done` once the queue has ended and nothing is set aside (or `stop` came). */
  get next(): Effect.Effect<ReadUnit, Cause.Done> {
    return Effect.suspend(() => {
      if (this.stopped) return Cause.done()
      const first = this.waiting.shift()
      if (first !== undefined) return Effect.succeed(this.build(first))
      return Effect.map(Queue.take(this.queue), (row) => this.build(row))
    })
  }

  /**
   * Rows waiting to be read: those in the queue and those set aside. The monitor shows this as the read queue's use, so
   * rows a batch passed over are not missing from it (`capacity` counts the set-aside bound as well).
   */
  get size(): Effect.Effect<number> {
    return Effect.map(Queue.size(this.queue), (queued) => queued + this.waiting.length)
  }

  /** The most rows that can wait to be read: the queue's capacity plus the set-aside bound (none without batches). */
  static capacity(cfg: ValidPipelineConfig): number {
    return cfg.readQueue + (cfg.readBatchRows > 1 ? cfg.readBatchRows : 0)
  }

  /** Takes no more rows: `next` ends from now on. */
  halt(): void {
    this.stopped = true
  }

  /** Drops the rows waiting (set aside while a batch was built, then those in the queue) and returns them. */
  get dropWaiting(): Effect.Effect<ReadonlyArray<SourceRow>> {
    return Effect.map(Queue.clear(this.queue), (queued) => this.waiting.splice(0).concat(queued))
  }
}

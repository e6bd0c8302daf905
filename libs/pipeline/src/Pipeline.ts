/**
 * The migration as four stages joined by bounded queues:
 *
 *   LoSource ─▶ intake ─▶ [read queue] ─▶ read ×readers ─▶ [store queue] ─▶ store ×storers ─▶ [commit queue] ─▶ commit ×committers
 *
 * Each stage is a module (Intake.ts, ReadStage.ts, StoreStage.ts, CommitStage.ts) that takes from its queue only what
 * it starts working on (so every element not being worked on sits in a queue the monitor can see; the one exception:
 * up to `readBatchRows` rows too big for a read batch, set aside by ReadUnits.ts while it fills one) and bounds the work
 * in flight: the read stage with `Stream.mapEffect({ unordered })` over its read units, the store stage with a fixed
 * set of `storers` fibers, the commit stage with `committers` batches at a time. A row reaches the committer only
 * after its put returned `Uploaded` or `AlreadyPresent`. Every retry uses `config.retry` (core's `RetryPolicy`, set
 * here for the whole run).
 *
 * Ending:
 * - The source ends: every queue drains in order, the run returns its summary.
 * - `stop` completes: the source is interrupted and rows not yet taken by a reader are dropped (they keep sha2 NULL
 *   for the next run); reads in flight finish, everything read is uploaded, everything uploaded is committed.
 * - An infrastructure error (after `config.retry`; the source retries each page itself with that policy) or a defect
 *   in the source, read or store stage: those three stages are interrupted, and the commit stage still commits every
 *   uploaded object already in the commit queue, then the run fails with the error. This is safe: those objects are
 *   in the store.
 * - A failure of the commit stage interrupts everything at once (there is nothing left to commit with).
 * - Interruption of the run: everything is interrupted; nothing is committed afterwards.
 * In every case, bodies that were read and not yet released (temp files) are released before the run returns.
 */
import {
  type HashCommitter,
  type InfrastructureError,
  type LoObject,
  type LoReader,
  type LoSource,
  Metrics,
  type MetricsSnapshot,
  type ObjectStore,
  RetryPolicy,
  type RowFailed,
  type SourceRow
} from "@lo-migrate/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import { commitStage, type Uploaded } from "./CommitStage.ts"
import { type PipelineConfig, validatePipelineConfig, type ValidPipelineConfig } from "./Config.ts"
import { InFlight } from "./InFlight.ts"
import { countRows, intake } from "./Intake.ts"
import { readStage } from "./ReadStage.ts"
import { makeAdmission } from "./Throttle.ts"
import { ReadUnits } from "./ReadUnits.ts"
import { makeReportRow } from "./Report.ts"
import { Stop } from "./Stop.ts"
import { storeStage } from "./StoreStage.ts"

export interface RunOptions {
  /** When it completes: stop taking new rows, finish what was read, commit what is uploaded, return. */
  readonly stop?: Effect.Effect<void>
  /** Called once for every row that is reported and skipped (e.g. the CLI writes its --report file). */
  readonly onRowFailed?: (failure: RowFailed) => Effect.Effect<void>
}

export interface MigrationSummary {
  /** Rows whose sha2 now holds their SHA-256 through this run (set by it, or found already set to that value). */
  readonly migrated: number
  /** Bytes of those rows. */
  readonly migratedBytes: number
  /** Puts that found the object already in the store (uploaded by an earlier, interrupted run). */
  readonly alreadyPresent: number
  /** Rows reported and skipped. */
  readonly failed: number
  /**
   * Rows the application deleted while they were in flight (object missing and the row gone, or the row gone at
   * commit): logged and counted here, not reported, not failures.
   */
  readonly vanished: number
  /** Whether `stop` ended the run before the source was exhausted. */
  readonly stopped: boolean
}

/** Queue names as the monitor shows them. */
export const queueNames = { read: "read queue", store: "store queue", commit: "commit queue" } as const

/** A bounded queue the monitor samples (registered in `Metrics` for the life of the run). */
const monitoredQueue = Effect.fnUntraced(function*<A>(name: string, capacity: number) {
  const queue = yield* Queue.bounded<A, Cause.Done>(capacity)
  const metrics = yield* Metrics
  yield* metrics.registerQueue(name, capacity, Queue.size(queue))
  return queue
})

/** The read queue and the units the read stage takes from it; the monitor counts the rows set aside as queued too. */
const monitoredReadUnits = Effect.fnUntraced(function*(cfg: ValidPipelineConfig, inFlight: InFlight) {
  const queue = yield* Queue.bounded<SourceRow, Cause.Done>(cfg.readQueue)
  const units = new ReadUnits(queue, cfg, inFlight)
  const metrics = yield* Metrics
  yield* metrics.registerQueue(queueNames.read, ReadUnits.capacity(cfg), units.size)
  return { queue, units }
})

/** What this run added to the counters: the summary is read from `Metrics`, not tallied a second time. */
const summaryOf = (before: MetricsSnapshot, after: MetricsSnapshot, stopped: boolean): MigrationSummary => ({
  migrated: after.stages.commit.objects - before.stages.commit.objects,
  migratedBytes: after.stages.commit.bytes - before.stages.commit.bytes,
  alreadyPresent: after.alreadyPresent - before.alreadyPresent,
  failed: after.failed - before.failed,
  vanished: after.vanished - before.vanished,
  stopped
})

/**
 * Runs the source, read and store stages (`upstream`) beside the commit stage, with the endings of the module comment:
 * a commit failure interrupts the upstream; an upstream failure still lets the commit stage drain its queue.
 */
const runStages = Effect.fnUntraced(function*<E1, E2, R1, R2>(
  upstream: Effect.Effect<void, E1, R1>,
  commit: Effect.Effect<void, E2, R2>,
  commitQueue: Queue.Queue<Uploaded, Cause.Done>
) {
  const commitFiber = yield* Effect.forkScoped(commit)
  const upstreamFiber = yield* Effect.forkScoped(upstream)
  yield* Effect.forkScoped(
    Effect.flatMap(Fiber.await(commitFiber), (exit) => Exit.isFailure(exit) ? Fiber.interrupt(upstreamFiber) : Effect.void)
  )
  const upstreamExit = yield* Fiber.await(upstreamFiber)
  yield* Queue.end(commitQueue)
  const commitExit = yield* Fiber.await(commitFiber)
  // The upstream's own failure comes first (a commit failure while draining is usually its consequence); an upstream
  // that was only interrupted, by the commit stage's failure, adds nothing.
  if (Exit.isFailure(upstreamExit) && !Cause.hasInterruptsOnly(upstreamExit.cause)) {
    return yield* Effect.failCause(
      Exit.isFailure(commitExit) ? Cause.combine(upstreamExit.cause, commitExit.cause) : upstreamExit.cause
    )
  }
  if (Exit.isFailure(commitExit)) return yield* Effect.failCause(commitExit.cause)
  if (Exit.isFailure(upstreamExit)) return yield* Effect.failCause(upstreamExit.cause)
})

/**
 * Runs the migration until the source is exhausted, `stop` completes, or a fatal error. See the module comment for
 * how each ending behaves. An invalid config is a defect here: validate it first with `validatePipelineConfig`.
 */
export const runMigration: (
  config: PipelineConfig,
  options?: RunOptions
) => Effect.Effect<MigrationSummary, InfrastructureError, LoSource | LoReader | ObjectStore | HashCommitter | Metrics> = Effect
  .fn("lo-migrate.runMigration")(
    function*(config: PipelineConfig, options: RunOptions = {}) {
      const cfg = yield* Effect.orDie(validatePipelineConfig(config))
      const metrics = yield* Metrics
      const before = yield* metrics.snapshot
      const report = yield* makeReportRow(options.onRowFailed)
      // made before the stages are forked: its finalizer runs after they are interrupted (finalizers run in reverse)
      const inFlight = yield* InFlight.make(cfg)
      const { queue: readQueue, units } = yield* monitoredReadUnits(cfg, inFlight)
      const storeQueue = yield* monitoredQueue<LoObject>(queueNames.store, cfg.storeQueue)
      const commitQueue = yield* monitoredQueue<Uploaded>(queueNames.commit, cfg.commitQueue)
      // --max-objects-per-second / --max-bandwidth: each read unit waits for its rows and their bytes (Throttle.ts)
      const admit = yield* makeAdmission({ objectsPerSecond: cfg.maxObjectsPerSecond, bytesPerSecond: cfg.maxBytesPerSecond })
      const stop = yield* Stop.watch(options.stop, units)
      yield* Effect.forkScoped(countRows)

      yield* runStages(
        Effect.all([
          intake(readQueue, stop),
          readStage(units, storeQueue, inFlight, { readers: cfg.readers, report, admit }),
          storeStage(storeQueue, commitQueue, inFlight, { storers: cfg.storers, report })
        ], { concurrency: "unbounded", discard: true }),
        commitStage(commitQueue, { ...cfg, report }),
        commitQueue
      )
      return summaryOf(before, yield* metrics.snapshot, stop.rowsLeft)
    },
    // every retry of the run (the source's own included) follows `config.retry`
    (effect, config) => Effect.provideService(effect, RetryPolicy, config.retry),
    Effect.scoped
  )

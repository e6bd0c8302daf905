/**
 * The migration as a stream pipeline:
 *
 *   LoSource.rows ─▶ [read queue] ─▶ read ×readers ─▶ [store queue] ─▶ put ×storers ─▶ [commit queue] ─▶ commit ×committers
 *
 * Each stage is an Effect Stream that pulls one element at a time from a bounded `Queue` (so every element that is not
 * being worked on sits in a queue the monitor can see) and runs its work with `Stream.mapEffect({ unordered })`, whose
 * semaphore bounds the work in flight. A row reaches the committer only after its put returned `Uploaded` or
 * `AlreadyPresent`.
 *
 * Ending:
 * - The source ends: every queue drains in order, the run returns its summary.
 * - `stop` completes: the source is interrupted and rows not yet taken by a reader are dropped (they keep sha2 NULL
 *   for the next run); reads in flight finish, everything read is uploaded, everything uploaded is committed.
 * - An infrastructure error (after `config.retry`) or a defect in the source, read or store stage: those three stages
 *   are interrupted, and the commit stage still commits every uploaded object already in the commit queue, then the
 *   run fails with the error. This is safe: those objects are in the store.
 * - A failure of the commit stage interrupts everything at once (there is nothing left to commit with).
 * - Interruption of the run: everything is interrupted; nothing is committed afterwards.
 * In every case, bodies that were read and not yet released (temp files) are released before the run returns.
 */
import {
  type CommitEntry,
  type CommitResult,
  CorruptedInTransit,
  type DatabaseError,
  HashCommitter,
  type InfrastructureError,
  isVanished,
  type LoObject,
  LoReader,
  LoSource,
  Metrics,
  MimeTypeMetadata,
  ObjectStore,
  type PutOutcome,
  retryInfrastructure,
  RowFailed,
  RowVanished,
  type Sha256Hex,
  Sha2Conflict,
  type SourceRow,
  storedContentType,
  type TransferCorrupted
} from "@lo-migrate/core"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Latch from "effect/Latch"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import { AdaptiveLimit } from "./AdaptiveLimit.ts"
import { ByteBudget, type Reservation } from "./ByteBudget.ts"
import { type PipelineConfig, validatePipelineConfig } from "./Config.ts"
import { trackInFlight } from "./InFlightBytes.ts"
import { makeAdmission } from "./Throttle.ts"

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

/** An uploaded object on its way to the committer. */
interface Uploaded {
  readonly hash: string
  readonly oid: number | null
  readonly sha256: Sha256Hex
  readonly size: number
}

/** A byte budget and what a row costs of it. */
interface Budget {
  readonly budget: ByteBudget
  readonly charge: (row: SourceRow) => number
}

type ReadUnit =
  | { readonly _tag: "Single"; readonly row: SourceRow }
  | { readonly _tag: "Batch"; readonly rows: ReadonlyArray<SourceRow> }

/** Queue names as the monitor shows them. */
export const queueNames = { read: "read queue", store: "store queue", commit: "commit queue" } as const

/**
 * Runs the migration until the source is exhausted, `stop` completes, or a fatal error. See the module comment for
 * how each ending behaves. An invalid config is a defect here: validate it first with `validatePipelineConfig`.
 */
export const runMigration = (
  config: PipelineConfig,
  options: RunOptions = {}
): Effect.Effect<MigrationSummary, InfrastructureError, LoSource | LoReader | ObjectStore | HashCommitter | Metrics> =>
  Effect.scoped(Effect.gen(function*() {
    const cfg = yield* Effect.orDie(validatePipelineConfig(config))
    const source = yield* LoSource
    const reader = yield* LoReader
    const store = yield* ObjectStore
    const committer = yield* HashCommitter
    const metrics = yield* Metrics
    const onRowFailed = options.onRowFailed ?? (() => Effect.void)

    let migrated = 0
    let migratedBytes = 0
    let alreadyPresent = 0
    let failed = 0
    let vanished = 0
    let stopped = false

    // Every object read and not yet released. Released when its upload ends (either way); whatever is still here
    // when the scope closes (failure, interruption) is released by this finalizer, which runs after every stage
    // fiber below has been interrupted (finalizers run in reverse order).
    const live = new Set<LoObject>()
    // The byte budgets (each optional): `maxInFlightBytes` charges every row its claimed size, `maxInMemoryBytes` only
    // rows small enough to be held in memory. `held` keeps what each live object holds of each budget, given back
    // when it is released.
    const budgets: Array<Budget> = []
    if (cfg.maxInFlightBytes !== undefined) {
      budgets.push({ budget: new ByteBudget(cfg.maxInFlightBytes), charge: (row) => claimedBytes(row) })
    }
    if (cfg.maxInMemoryBytes !== undefined) {
      const objectMax = cfg.inMemoryObjectMax ?? Number.MAX_SAFE_INTEGER
      budgets.push({
        budget: new ByteBudget(cfg.maxInMemoryBytes),
        charge: (row) => {
          const bytes = claimedBytes(row)
          return bytes <= objectMax ? bytes : 0
        }
      })
    }
    const held = new Map<LoObject, ReadonlyArray<number>>()
    // --max-objects-per-second / --max-bandwidth: each read unit waits for its rows and their bytes (Throttle.ts)
    const admit = yield* makeAdmission({ objectsPerSecond: cfg.maxObjectsPerSecond, bytesPerSecond: cfg.maxBytesPerSecond })
    // A spill that found the disk full (ENOSPC) waits, before it is retried, until the spilled objects in flight at
    // that moment are released (their uploads end either way and remove their files).
    const spillReleased = new Map<LoObject, Deferred.Deferred<void>>()
    const spillsDrained = Effect.suspend(() => {
      // every waiter is registered at once, before the first wait: a release while waiting must find its own
      const released = [...live].filter((o) => o.body._tag === "Spilled").map((o) => {
        let d = spillReleased.get(o)
        if (d === undefined) {
          d = Deferred.makeUnsafe<void>()
          spillReleased.set(o, d)
        }
        return d
      })
      return Effect.andThen(
        Effect.logWarning(`spill directory full: waiting for the ${released.length} spilled objects in flight to be uploaded`),
        Effect.forEach(released, Deferred.await, { discard: true })
      )
    })
    const release = (o: LoObject) =>
      Effect.suspend(() => {
        if (!live.delete(o)) return Effect.void
        const waiters = spillReleased.get(o)
        if (waiters !== undefined) {
          spillReleased.delete(o)
          Deferred.doneUnsafe(waiters, Effect.void)
        }
        const shares = held.get(o)
        held.delete(o)
        // free the body first, then hand its bytes to the next read
        return Effect.andThen(
          Effect.andThen(o.release, trackInFlight(-o.size)),
          Effect.sync(() => shares?.forEach((bytes, i) => budgets[i]!.budget.give(bytes)))
        )
      })
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const rest = [...live]
        live.clear()
        return Effect.forEach(rest, (o) => Effect.andThen(o.release, trackInFlight(-o.size)), { discard: true })
      })
    )

    const readQueue = yield* Queue.bounded<SourceRow, Cause.Done>(cfg.readQueue)
    const storeQueue = yield* Queue.bounded<LoObject, Cause.Done>(cfg.storeQueue)
    const commitQueue = yield* Queue.bounded<Uploaded, Cause.Done>(cfg.commitQueue)
    yield* metrics.registerQueue(queueNames.read, cfg.readQueue, Queue.size(readQueue))
    yield* metrics.registerQueue(queueNames.store, cfg.storeQueue, Queue.size(storeQueue))
    yield* metrics.registerQueue(queueNames.commit, cfg.commitQueue, Queue.size(commitQueue))

    const retry = (operation: string, stopWhen?: () => boolean) =>
    <A, E extends InfrastructureError>(self: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      retryInfrastructure(operation, cfg.retry, stopWhen)(self).pipe(Effect.provideService(Metrics, metrics))

    // A deleted row is not a failed row: counted and logged as vanished, never reported.
    const report = (failure: RowFailed) =>
      Effect.suspend(() => {
        if (isVanished(failure)) {
          vanished++
          return Effect.andThen(metrics.vanished, Effect.logInfo(`row vanished (deleted during the run), skipped: ${failure.message}`))
        }
        failed++
        return Effect.andThen(metrics.failed(failure), onRowFailed(failure))
      })

    // Counting the remaining rows can take long on a big table: it runs beside the migration, and its failure only
    // costs the monitor its percentage and ETA.
    yield* source.count.pipe(
      retry("count"),
      Effect.flatMap(metrics.setCounts),
      Effect.catch((e) => Effect.logWarning(`could not count the rows to migrate: ${e.message}`)),
      Effect.forkScoped
    )

    // --- source -> read queue ------------------------------------------------------------------------------------
    // Rows emitted and not finished yet, and rows reported in this run, by (hash, oid). A source that fails with a
    // retryable error is restarted from its beginning; it then yields again only rows whose sha2 is still NULL, and
    // these two sets tell which of those this run already has in hand or has already reported.
    const inFlight = new Map<string, number>()
    const reported = new Set<string>()
    const rowKey = (hash: string, oid: number | null) => `${hash}\u0000${oid ?? ""}`
    const started = (row: SourceRow) => {
      const key = rowKey(row.hash, row.oid)
      inFlight.set(key, (inFlight.get(key) ?? 0) + 1)
    }
    const finished = (hash: string, oid: number | null, failed: boolean) => {
      const key = rowKey(hash, oid)
      const n = inFlight.get(key) ?? 0
      if (n <= 1) inFlight.delete(key)
      else inFlight.set(key, n - 1)
      if (failed) reported.add(key)
    }
    const alreadyInHand = (row: SourceRow) => {
      const key = rowKey(row.hash, row.oid)
      return inFlight.has(key) || reported.has(key)
    }

    // Bytes as the row claims them; a nonsensical size (the reader will report it) counts as 0.
    const claimedBytes = (row: SourceRow) => (Number.isSafeInteger(row.size) && row.size > 0 ? row.size : 0)
    const produceOnce = (progress: () => void) =>
      source.rows.pipe(
        Stream.runForEachArray((chunk) =>
          Effect.suspend(() => {
            progress()
            const fresh: Array<SourceRow> = []
            let bytes = 0
            for (const row of chunk) {
              if (alreadyInHand(row)) continue
              started(row)
              fresh.push(row)
              bytes += claimedBytes(row)
            }
            if (fresh.length === 0) return Effect.void
            return Effect.andThen(metrics.processed("source", fresh.length, bytes), Queue.offerAll(readQueue, fresh))
          })
        )
      )
    // Retries of the source, per the retry policy: failures in a row back off and give up when the budget is spent.
    // A failure after progress (rows came through since the last restart) is a new episode with a fresh budget: a
    // run lasts days, a blip now and then must not add up to its end.
    const produce: Effect.Effect<void, DatabaseError> = Effect.gen(function*() {
      while (true) {
        let progressed = false
        const exit = yield* Effect.exit(
          Effect.suspend(() => {
            progressed = false
            return produceOnce(() => {
              progressed = true
            })
          }).pipe(retry("source", () => progressed))
        )
        if (Exit.isSuccess(exit)) return
        const error = Cause.findErrorOption(exit.cause)
        if (!progressed || Option.isNone(error) || !error.value.retryable) return yield* Effect.failCause(exit.cause)
        yield* metrics.retried("source")
        yield* Effect.logWarning(`source failed after progress, restarting it: ${error.value.message}`)
      }
    })
    // A row polled while filling a read batch that cannot join it; read next. Only the pulling fiber (and stop) touch it.
    let pending: SourceRow | undefined
    // `stop`: the source is interrupted, rows not yet taken by a reader are dropped (they keep sha2 NULL), and the
    // read stage ends once its reads in flight are done; the store and commit stages then drain as usual.
    // `stopped` says whether rows were left behind: the source was still running, or rows were still waiting.
    const stopLatch = Latch.makeUnsafe(false)
    let sourceExhausted = false
    let stopRequested = false
    if (options.stop !== undefined) {
      yield* options.stop.pipe(
        Effect.andThen(Effect.suspend(() => {
          stopRequested = true
          stopLatch.openUnsafe()
          return Effect.map(Queue.clear(readQueue), (dropped) => {
            if (!sourceExhausted || dropped.length > 0 || pending !== undefined) stopped = true
            pending = undefined
          })
        })),
        Effect.forkScoped
      )
    }
    const intake = Effect.raceFirst(
      Effect.andThen(produce, Effect.sync(() => {
        sourceExhausted = true
      })),
      stopLatch.await
    ).pipe(Effect.ensuring(Queue.end(readQueue)))

    // --- read queue -> read -> store queue -----------------------------------------------------------------------
    const batchRows = cfg.readBatchRows
    const batchable = (row: SourceRow) =>
      batchRows > 1 && Number.isSafeInteger(row.size) && row.size >= 0 && row.size <= cfg.readBatchObjectMax
    const nextUnit: Effect.Effect<ReadUnit, Cause.Done> = Effect.gen(function*() {
      if (stopRequested) return yield* Cause.done()
      let first: SourceRow
      if (pending !== undefined) {
        first = pending
        pending = undefined
      } else {
        first = yield* Queue.take(readQueue)
      }
      if (!batchable(first)) return { _tag: "Single", row: first }
      const rows = [first]
      const charged = budgets.map((b) => b.charge(first))
      while (rows.length < batchRows) {
        const next = yield* Queue.poll(readQueue)
        if (Option.isNone(next)) break
        // a batch never claims more than a byte budget (only a single object may)
        const row = next.value
        if (!batchable(row) || budgets.some((b, i) => charged[i]! + b.charge(row) > b.budget.total)) {
          pending = row
          break
        }
        rows.push(row)
        budgets.forEach((b, i) => charged[i] = charged[i]! + b.charge(row))
      }
      return rows.length === 1 ? { _tag: "Single", row: first } : { _tag: "Batch", rows }
    })

    const readUnit = (unit: ReadUnit): Effect.Effect<ReadonlyArray<Result.Result<LoObject, RowFailed>>, InfrastructureError> => {
      const read = unit._tag === "Single"
        ? reader.read(unit.row).pipe(
          Effect.map((o): ReadonlyArray<Result.Result<LoObject, RowFailed>> => [Result.succeed(o)]),
          Effect.catchTag("RowFailed", (e) => Effect.succeed([Result.fail(e)]))
        )
        : reader.readBatch(unit.rows).pipe(
          Effect.flatMap((results) =>
            results.length === unit.rows.length
              ? Effect.succeed(results)
              : Effect.die(new Error(`LoReader.readBatch returned ${results.length} results for ${unit.rows.length} rows`))
          )
        )
      const rows = unit._tag === "Single" ? [unit.row] : unit.rows
      // The waits (for budget, for the read) are interruptible; taking ownership of what they produced is not, so no
      // object escapes `live` and no byte of the budget is lost.
      return Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          yield* restore(admit(rows.length, rows.reduce((n, row) => n + claimedBytes(row), 0)))
          // Budgets are taken one after the other, always in the same order; one that is granted is given back if a
          // later wait fails or is interrupted (`cancel` gives back a grant or leaves the line).
          const reservations: Array<Reservation> = []
          const cancelAll = Effect.sync(() => reservations.forEach((r, i) => budgets[i]!.budget.cancel(r)))
          for (const b of budgets) {
            const r = b.budget.reserve(rows.reduce((n, row) => n + b.charge(row), 0))
            reservations.push(r)
            yield* restore(b.budget.await(r)).pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? cancelAll : Effect.void))
          }
          const exit = yield* Effect.exit(restore(
            read.pipe(
              Effect.tapError((e) => e._tag === "LocalFileError" && e.retryable ? spillsDrained : Effect.void),
              retry(unit._tag === "Single" ? "read" : "readBatch")
            )
          ))
          if (Exit.isFailure(exit)) {
            yield* cancelAll
            return yield* Effect.failCause(exit.cause)
          }
          // Each object keeps its row's charge (up to its verified size) until released; the rest goes back now.
          const left = reservations.map((r) => r.bytes)
          for (const r of exit.value) {
            if (Result.isFailure(r)) continue
            live.add(r.success)
            yield* trackInFlight(r.success.size)
            if (budgets.length > 0) {
              held.set(
                r.success,
                budgets.map((b, i) => {
                  const share = Math.min(b.charge(r.success.row), left[i]!)
                  left[i] = left[i]! - share
                  return share
                })
              )
            }
          }
          left.forEach((bytes, i) => budgets[i]!.budget.give(bytes))
          return exit.value
        })
      )
    }

    const readStage = Stream.fromEffectRepeat(nextUnit).pipe(
      Stream.mapEffect(readUnit, { concurrency: cfg.readers, unordered: true }),
      Stream.runForEach((results) => {
        let objects = 0
        let bytes = 0
        for (const r of results) {
          if (Result.isSuccess(r)) {
            objects++
            bytes += r.success.size
          }
        }
        return Effect.andThen(
          objects > 0 ? metrics.processed("read", objects, bytes) : Effect.void,
          Effect.forEach(results, (r) =>
            Result.isSuccess(r)
              ? Queue.offer(storeQueue, r.success)
              : Effect.andThen(Effect.sync(() => finished(r.failure.hash, r.failure.oid, true)), report(r.failure)), {
            discard: true
          })
        )
      }),
      Effect.andThen(Queue.end(storeQueue))
    )

    // --- store queue -> put -> commit queue ----------------------------------------------------------------------
    /** A mime type that cannot be a header value is stored in metadata (core ContentType.ts): say so, naming the row. */
    const warnIfMimeTypeReplaced = (o: LoObject): Effect.Effect<void> => {
      const stored = storedContentType(o.row.mimeType)
      if (stored._tag !== "Replaced") return Effect.void
      const where = stored.whole
        ? `the original in x-amz-meta-${MimeTypeMetadata.original} (percent-encoded UTF-8)`
        : `too long for a header (${o.row.mimeType!.length} characters): its SHA-256 in ` +
          `x-amz-meta-${MimeTypeMetadata.sha256}, the full value stays in _nice_binary.mime_type`
      const shown = o.row.mimeType!.length > 80 ? `${JSON.stringify(o.row.mimeType!.slice(0, 80))}...` : JSON.stringify(o.row.mimeType)
      return Effect.logWarning(
        `row hash=${JSON.stringify(o.row.hash)}: mime type ${shown} is not a plain Content-Type (${stored.reason}); ` +
          `object ${o.sha256} stored as ${stored.contentType}, ${where}`
      )
    }

    // Every put attempt (retries too) takes a permit of the adaptive limit: throttling halves it, successes raise it
    // again up to --storer-threads (AdaptiveLimit.ts).
    const storeLimit = new AdaptiveLimit({ max: cfg.storers })
    yield* metrics.registerConcurrency("store", Effect.sync(() => ({ name: "store", ...storeLimit.reading })))
    // An object the store keeps receiving corrupted (after its own retries from these verified bytes) is reported and
    // skipped: nothing is committed for it, the run goes on.
    const storeOne = (o: LoObject): Effect.Effect<Uploaded | undefined, InfrastructureError> =>
      Effect.andThen(
        warnIfMimeTypeReplaced(o), // once, outside the retried put
        store.put({ key: o.sha256, contentType: o.row.mimeType, size: o.size, md5Base64: o.md5Base64, body: o.body }).pipe(
        Effect.map((outcome): PutOutcome | TransferCorrupted => outcome),
        Effect.catchTag("TransferCorrupted", (e) => Effect.succeed(e)),
        (attempt) => storeLimit.withPermit(attempt, (e) => e._tag === "StorageError" && e.throttled === true),
        retry("put"),
        Effect.flatMap((outcome): Effect.Effect<Uploaded | undefined> => {
          if (outcome === "Uploaded" || outcome === "AlreadyPresent") {
            return Effect.andThen(
              outcome === "AlreadyPresent"
                ? Effect.andThen(Effect.sync(() => void alreadyPresent++), metrics.alreadyPresent)
                : Effect.void,
              Effect.as(metrics.processed("store", 1, o.size), { hash: o.row.hash, oid: o.row.oid, sha256: o.sha256, size: o.size })
            )
          }
          return Effect.as(
            Effect.andThen(
              Effect.sync(() => finished(o.row.hash, o.row.oid, true)),
              report(new RowFailed({
                hash: o.row.hash,
                oid: o.row.oid,
                reason: new CorruptedInTransit({ attempts: outcome.attempts, detail: outcome.message })
              }))
            ),
            undefined
          )
        })
        )
      ).pipe(Effect.ensuring(release(o)))

    const storeStage = Stream.fromEffectRepeat(Queue.take(storeQueue)).pipe(
      Stream.mapEffect(storeOne, { concurrency: cfg.storers, unordered: true }),
      Stream.runForEach((u) => u === undefined ? Effect.void : Queue.offer(commitQueue, u)),
      Effect.andThen(Queue.end(commitQueue))
    )

    // --- commit queue -> commit ----------------------------------------------------------------------------------
    const commitBatch = (items: ReadonlyArray<Uploaded>): Effect.Effect<void, InfrastructureError> => {
      // One entry per hash (duplicate rows share a hash; the store stage may hand both over in one batch).
      const byHash = new Map<string, Array<Uploaded>>()
      const entries: Array<CommitEntry> = []
      for (const item of items) {
        const group = byHash.get(item.hash)
        if (group === undefined) {
          byHash.set(item.hash, [item])
          entries.push({ hash: item.hash, sha256: item.sha256 })
        } else {
          group.push(item)
        }
      }
      return committer.commit(entries).pipe(
        Effect.withSpan("lo-migrate.commit", { attributes: { rows: entries.length } }),
        retry("commit"),
        Effect.flatMap((result: CommitResult) => {
          let objects = 0
          let bytes = 0
          for (const hash of [...result.committed, ...result.alreadySet]) {
            for (const item of byHash.get(hash) ?? []) {
              objects++
              bytes += item.size
            }
          }
          migrated += objects
          migratedBytes += bytes
          const failedHashes = new Set([...result.vanished, ...result.conflicts.map((c) => c.hash)])
          for (const item of items) finished(item.hash, item.oid, failedHashes.has(item.hash))
          const failures: Array<RowFailed> = []
          for (const hash of result.vanished) {
            for (const item of byHash.get(hash) ?? []) {
              failures.push(new RowFailed({ hash, oid: item.oid, reason: new RowVanished({ at: "commit" }) }))
            }
          }
          for (const c of result.conflicts) {
            for (const item of byHash.get(c.hash) ?? []) {
              failures.push(new RowFailed({
                hash: c.hash,
                oid: item.oid,
                reason: new Sha2Conflict({ existing: c.existing, computed: c.computed })
              }))
            }
          }
          const classified = new Set([...result.committed, ...result.alreadySet, ...failedHashes])
          const unclassified = entries.filter((e) => !classified.has(e.hash)).map((e) => e.hash)
          return Effect.andThen(
            metrics.processed("commit", objects, bytes),
            Effect.andThen(
              Effect.forEach(failures, report, { discard: true }),
              // a HashCommitter bug, not a row's fault: those rows stay as they are and the next run sees them again
              unclassified.length === 0 ? Effect.void : Effect.logWarning(
                `HashCommitter left ${unclassified.length} rows unclassified (not counted): ${unclassified.slice(0, 5).join(", ")}`
              )
            )
          )
        })
      )
    }

    const commitStage = Stream.fromEffectRepeat(Queue.take(commitQueue)).pipe(
      Stream.groupedWithin(cfg.commitChunk, cfg.commitLinger),
      Stream.mapEffect(commitBatch, { concurrency: cfg.committers, unordered: true }),
      Stream.runDrain
    )

    // --- wiring --------------------------------------------------------------------------------------------------
    const commitFiber = yield* Effect.forkScoped(commitStage)
    const upstreamFiber = yield* Effect.forkScoped(
      Effect.all([intake, readStage, storeStage], { concurrency: "unbounded", discard: true })
    )
    // If the commit stage fails, stop the upstream at once: nothing it produces could be committed any more.
    yield* Effect.forkScoped(
      Effect.flatMap(Fiber.await(commitFiber), (exit) => Exit.isFailure(exit) ? Fiber.interrupt(upstreamFiber) : Effect.void)
    )

    const upstreamExit = yield* Fiber.await(upstreamFiber)
    // Upstream failed: let the commit stage commit what is already uploaded and queued, then finish.
    yield* Queue.end(commitQueue)
    const commitExit = yield* Fiber.await(commitFiber)
    // The upstream's own failure comes first (a commit failure while draining is usually its consequence); an
    // upstream that was only interrupted, by the commit stage's failure, adds nothing.
    if (Exit.isFailure(upstreamExit) && !Cause.hasInterruptsOnly(upstreamExit.cause)) {
      return yield* Effect.failCause(
        Exit.isFailure(commitExit) ? Cause.combine(upstreamExit.cause, commitExit.cause) : upstreamExit.cause
      )
    }
    if (Exit.isFailure(commitExit)) return yield* Effect.failCause(commitExit.cause)
    if (Exit.isFailure(upstreamExit)) return yield* Effect.failCause(upstreamExit.cause)
    return { migrated, migratedBytes, alreadyPresent, failed, vanished, stopped } satisfies MigrationSummary
  })).pipe(Effect.withSpan("lo-migrate.runMigration"))

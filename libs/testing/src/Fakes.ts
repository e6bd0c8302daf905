/**
 * In-memory layers for the five ports, over a shared `World`. They follow the ports' contracts as the live adapters
 * must (keyset paging over `sha2 IS NULL`, verified reads with spilling, an idempotent content-addressed store, a
 * classifying committer) and add fault injection. The committer asserts, at every commit, that each key it is about to
 * record is in the bucket with exactly the right bytes: a violation is recorded in `world.violations` and the commit
 * dies with an `InvariantViolation` instead of applying anything.
 */
import {
  checkRow,
  type CommitEntry,
  type CommitResult,
  DatabaseError,
  HashCommitter,
  type LoObject,
  LoReader,
  LoSource,
  makeDigester,
  Metrics,
  MissingLargeObject,
  RowVanished,
  ObjectStore,
  type PutOutcome,
  type PutRequest,
  retryInfrastructure,
  type RowCounts,
  RowFailed,
  Sha2Conflict,
  type Sha256Hex,
  type SourceRow,
  type Stage,
  StorageError,
  verifyDigests
} from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type FakeRow, type Operation, sha256Hex, type World } from "./World.ts"

export interface FakeOptions {
  /** Rows per source page (default 16). */
  readonly pageSize?: number
  /** Objects larger than this many bytes are spilled to a temp file (default 64 KiB). */
  readonly inMemMax?: number
  /** Chunk size the reader feeds the digester with (default 16 KiB). */
  readonly readChunk?: number
  /** The bucket name used in errors (default "fake-bucket"). */
  readonly bucket?: string
}

/** The defect a crash knob raises. */
export class FakeCrash extends Error {
  override readonly name = "FakeCrash"
}

const begin = (world: World, op: Operation): Effect.Effect<void> =>
  Effect.suspend(() => {
    world.operation(op)
    const delay = world.faults.latency(op)
    return delay === undefined ? Effect.void : Effect.sleep(delay)
  })

const crash = (world: World, what: string): Effect.Effect<never> =>
  world.faults.crashMode === "die" ? Effect.die(new FakeCrash(`fake crash after ${what}`)) : Effect.interrupt

const toSourceRow = (r: FakeRow): SourceRow => ({ hash: r.hash, oid: r.oid, size: r.size, mimeType: r.mimeType })

const compareRows = (a: { readonly hash: string; readonly id: number }, b: { readonly hash: string; readonly id: number }): number =>
  a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.id - b.id

// ---------------------------------------------------------------------------------------------------------------------
// LoSource

interface Cursor {
  readonly hash: string
  readonly id: number
}

/**
 * Keyset pages of `pageSize` rows ordered by (hash, row id) over the rows whose `sha2` is NULL *when the page is
 * queried*: rows inserted behind the cursor are left for the next run, deleted or committed rows stop appearing. Like
 * the live adapter, a page that fails retryably is retried by itself (the `RetryPolicy` in force, counted as
 * "source"), from the same cursor.
 */
export const makeLoSource = Effect.fnUntraced(function*(world: World, options: FakeOptions = {}) {
  const metrics = yield* Metrics
  const pageSize = options.pageSize ?? 16
  const attempt = (after: Cursor | undefined) =>
    Effect.gen(function*() {
      yield* begin(world, "page")
      if (world.faults.sourceFailures > 0) {
        world.faults.sourceFailures--
        return yield* new DatabaseError({ operation: "page", detail: "fake: connection reset", retryable: true })
      }
      const ordered = world.rowsInKeyOrder()
      // first position after the cursor (binary search), then the next `pageSize` rows whose sha2 is NULL
      let lo = 0
      let hi = ordered.length
      while (after !== undefined && lo < hi) {
        const mid = (lo + hi) >>> 1
        if (compareRows(ordered[mid]!, after) <= 0) lo = mid + 1
        else hi = mid
      }
      const rows: Array<FakeRow> = []
      for (let i = lo; i < ordered.length && rows.length < pageSize; i++) {
        if (ordered[i]!.sha2 === null) rows.push(ordered[i]!)
      }
      const last = rows.at(-1)
      const next: Option.Option<Cursor | undefined> = rows.length < pageSize || last === undefined
        ? Option.none()
        : Option.some({ hash: last.hash, id: last.id })
      return [rows.map(toSourceRow), next] as const
    })
  const page = (after: Cursor | undefined) =>
    attempt(after).pipe(retryInfrastructure("source"), Effect.provideService(Metrics, metrics))
  return LoSource.of({
    rows: Stream.paginate<Cursor | undefined, SourceRow, DatabaseError>(undefined, page),
    count: Effect.gen(function*() {
      yield* begin(world, "count")
      const remaining = world.rows.filter((r) => r.sha2 === null)
      const counts: RowCounts = {
        total: world.rows.length,
        remaining: remaining.length,
        remainingBytes: remaining.reduce((n, r) => n + r.size, 0),
        largest: remaining.reduce((n, r) => Math.max(n, r.size), 0)
      }
      return counts
    })
  })
})

export const fakeLoSource = (world: World, options: FakeOptions = {}): Layer.Layer<LoSource, never, Metrics> =>
  Layer.effect(LoSource, makeLoSource(world, options))

// ---------------------------------------------------------------------------------------------------------------------
// LoReader

/**
 * Reads through `checkRow` / `makeDigester` / `verifyDigests` like the live reader. Bodies up to `inMemMax` bytes stay
 * in memory, larger ones are written to a real temp file that `release` removes; the layer's finalizer removes
 * whatever is left. `world.reader` tracks live objects, in-memory bytes and spill files, with peaks.
 */
export const fakeLoReader = (world: World, options: FakeOptions = {}): Layer.Layer<LoReader> =>
  Layer.effect(
    LoReader,
    Effect.gen(function*() {
      const inMemMax = options.inMemMax ?? 64 * 1024
      const chunk = options.readChunk ?? 16 * 1024
      const stats = world.reader
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "lo-migrate-fake-"))),
        (dir) =>
          Effect.sync(() => {
            for (const path of stats.liveSpills) {
              if (path.startsWith(dir)) {
                rmSync(path, { force: true })
                stats.liveSpills.delete(path)
              }
            }
            rmSync(dir, { recursive: true, force: true })
          })
      )
      let fileNo = 0

      // Synchronous from the digest on, so an interruption cannot leave an untracked object behind.
      const readOne = (row: SourceRow): Effect.Effect<LoObject, RowFailed> =>
        Effect.gen(function*() {
          const checked = yield* checkRow(row)
          const bytes = world.largeObjects.get(checked.oid)
          if (bytes === undefined) {
            // like the live reader: a row that is gone (same hash and oid) vanished, one that is still there failed
            const exists = world.rowsWithHash(row.hash).some((r) => r.oid === checked.oid)
            return yield* new RowFailed({
              hash: row.hash,
              oid: row.oid,
              reason: exists ? new MissingLargeObject({ oid: checked.oid }) : new RowVanished({ at: "read" })
            })
          }
          const digester = makeDigester()
          for (let i = 0; i < bytes.byteLength; i += chunk) digester.update(bytes.subarray(i, i + chunk))
          const digests = digester.digest()
          yield* verifyDigests(row, digests)
          stats.objectsRead++
          stats.liveObjects++
          stats.peakLiveObjects = Math.max(stats.peakLiveObjects, stats.liveObjects)
          stats.liveBytes += digests.size
          stats.peakLiveBytes = Math.max(stats.peakLiveBytes, stats.liveBytes)
          let released = false
          if (digests.size <= inMemMax) {
            stats.liveMemoryBytes += digests.size
            stats.peakLiveMemoryBytes = Math.max(stats.peakLiveMemoryBytes, stats.liveMemoryBytes)
            return {
              row,
              sha1: checked.sha1,
              sha256: digests.sha256,
              md5Base64: digests.md5Base64,
              size: digests.size,
              body: { _tag: "InMemory", bytes: bytes.slice() },
              release: Effect.sync(() => {
                if (released) return
                released = true
                stats.liveObjects--
                stats.liveBytes -= digests.size
                stats.liveMemoryBytes -= digests.size
              })
            } satisfies LoObject
          }
          const path = join(dir, `${digests.sha256}-${fileNo++}`)
          writeFileSync(path, bytes)
          stats.liveSpills.add(path)
          stats.spilled++
          return {
            row,
            sha1: checked.sha1,
            sha256: digests.sha256,
            md5Base64: digests.md5Base64,
            size: digests.size,
            body: { _tag: "Spilled", path },
            release: Effect.sync(() => {
              if (released) return
              released = true
              rmSync(path, { force: true })
              stats.liveSpills.delete(path)
              stats.liveObjects--
              stats.liveBytes -= digests.size
            })
          } satisfies LoObject
        })

      const readFault = (operation: string) =>
        Effect.suspend(() => {
          if (world.faults.readFailures <= 0) return Effect.void
          world.faults.readFailures--
          return Effect.fail(new DatabaseError({ operation, detail: "fake: connection reset", retryable: true }))
        })

      return LoReader.of({
        read: (row) =>
          begin(world, "read").pipe(
            Effect.andThen(readFault("read")),
            Effect.andThen(Effect.uninterruptible(readOne(row)))
          ),
        readBatch: (rows) =>
          begin(world, "readBatch").pipe(
            Effect.andThen(readFault("readBatch")),
            Effect.andThen(Effect.uninterruptible(Effect.forEach(rows, (row) => Effect.result(readOne(row)))))
          )
      })
    })
  )

// ---------------------------------------------------------------------------------------------------------------------
// ObjectStore

/**
 * Idempotent content-addressed bucket: an object of the right size already under the key gives `AlreadyPresent`.
 * Rejects a body whose MD5 does not match `md5Base64` (as S3 does with Content-MD5). A body that is not the key's
 * content, has the wrong size or whose temp file is gone is a pipeline bug: recorded as a violation, and the put dies.
 */
export const makeObjectStore = (world: World, options: FakeOptions = {}): ObjectStore["Service"] => {
  const bucket = options.bucket ?? "fake-bucket"
  const storageError = (operation: string, key: string | undefined, detail: string, retryable: boolean) =>
    new StorageError({ operation, bucket, ...(key === undefined ? {} : { key }), detail, retryable })

  const log = (key: string, size: number, outcome: "Uploaded" | "AlreadyPresent" | "Failed") =>
    world.puts.push({ seq: world.nextSeq(), run: world.run, key, size, outcome })

  const bodyBytes = (request: PutRequest): Effect.Effect<Uint8Array> => {
    const body = request.body
    return body._tag === "InMemory"
      ? Effect.succeed(body.bytes)
      : Effect.try({
        try: () => new Uint8Array(readFileSync(body.path)),
        catch: () => world.violation(`put ${request.key}: spilled body ${body.path} is gone`)
      }).pipe(Effect.orDie)
  }

  const store = (request: PutRequest): Effect.Effect<PutOutcome, StorageError> =>
    Effect.flatMap(bodyBytes(request), (bytes) => {
      if (bytes.byteLength !== request.size) {
        return Effect.die(world.violation(`put ${request.key}: body has ${bytes.byteLength} bytes, request says ${request.size}`))
      }
      if (createHash("md5").update(bytes).digest("base64") !== request.md5Base64) {
        log(request.key, request.size, "Failed")
        return Effect.fail(storageError("put", request.key, "fake: BadDigest (Content-MD5 mismatch)", false))
      }
      if (sha256Hex(bytes) !== request.key) {
        return Effect.die(world.violation(`put ${request.key}: body hashes to ${sha256Hex(bytes)}`))
      }
      const existing = world.bucket.get(request.key)
      if (existing !== undefined && existing.bytes.byteLength === request.size) {
        log(request.key, request.size, "AlreadyPresent")
        return Effect.succeed<PutOutcome>("AlreadyPresent")
      }
      world.bucket.set(request.key, {
        bytes: bytes.slice(),
        contentType: request.contentType,
        md5Base64: request.md5Base64
      })
      log(request.key, request.size, "Uploaded")
      return Effect.succeed<PutOutcome>("Uploaded")
    })

  return ObjectStore.of({
    put: (request) =>
      Effect.gen(function*() {
        yield* begin(world, "put")
        const faults = world.faults
        if (faults.storeBroken) {
          log(request.key, request.size, "Failed")
          return yield* storageError("put", request.key, "fake: AccessDenied", false)
        }
        if (faults.storeFailures > 0) {
          faults.storeFailures--
          log(request.key, request.size, "Failed")
          return yield* storageError("put", request.key, "fake: 503 SlowDown", true)
        }
        const outcome = yield* Effect.uninterruptible(store(request))
        if (faults.crashAfterPuts !== undefined && --faults.crashAfterPuts <= 0) {
          faults.crashAfterPuts = undefined
          return yield* crash(world, `put ${request.key}`)
        }
        return outcome
      }),
    head: (key: Sha256Hex) =>
      begin(world, "head").pipe(
        Effect.map(() =>
          Option.map(Option.fromNullishOr(world.bucket.get(key)), (o) => ({
            size: o.bytes.byteLength,
            contentType: o.contentType ?? undefined
          }))
        )
      ),
    check: Effect.suspend(() =>
      world.faults.storeBroken
        ? Effect.fail(storageError("check", undefined, "fake: AccessDenied", false))
        : Effect.void
    )
  })
}

export const fakeObjectStore = (world: World, options: FakeOptions = {}): Layer.Layer<ObjectStore> =>
  Layer.sync(ObjectStore, () => makeObjectStore(world, options))

// ---------------------------------------------------------------------------------------------------------------------
// HashCommitter

/** Checks, before anything is applied, that every key of the batch is in the bucket with the right bytes. */
const checkBatch = (world: World, batch: ReadonlyArray<CommitEntry>): string | undefined => {
  for (const entry of batch) {
    const object = world.bucket.get(entry.sha256)
    if (object === undefined) {
      return `commit of sha2=${entry.sha256} for hash=${entry.hash}: the object is not in the bucket`
    }
    const actual = sha256Hex(object.bytes)
    if (actual !== entry.sha256) {
      return `commit of sha2=${entry.sha256} for hash=${entry.hash}: the bucket holds bytes hashing to ${actual}`
    }
    for (const row of world.rowsWithHash(entry.hash)) {
      if (row.sha2 !== null || row.oid === null) continue
      const lo = world.largeObjects.get(row.oid)
      if (lo !== undefined && sha256Hex(lo) !== entry.sha256) {
        return `commit of sha2=${entry.sha256} for hash=${entry.hash}: row ${row.id}'s large object hashes to ${
          sha256Hex(lo)
        }`
      }
    }
  }
  return undefined
}

/**
 * Applies a batch like `UPDATE ... SET sha2 = $2 WHERE hash = $1 AND sha2 IS NULL`, entry after entry, plus the
 * classification of each entry (the `RowFailed` of a vanished or conflicting row made here, as the live adapter does).
 */
const applyBatch = (world: World, batch: ReadonlyArray<CommitEntry>): ReadonlyArray<CommitResult> =>
  batch.map((entry): CommitResult => {
    const failed = (reason: RowFailed["reason"]) => Result.fail(new RowFailed({ hash: entry.hash, oid: entry.oid, reason }))
    const rows = world.rowsWithHash(entry.hash)
    if (rows.length === 0) return failed(new RowVanished({ at: "commit" }))
    const unset = rows.filter((r) => r.sha2 === null)
    if (unset.length > 0) {
      for (const r of unset) r.sha2 = entry.sha256
      return Result.succeed("Committed")
    }
    const other = rows.find((r) => r.sha2 !== entry.sha256)
    return other === undefined
      ? Result.succeed("AlreadySet")
      : failed(new Sha2Conflict({ existing: other.sha2 ?? "", computed: entry.sha256 }))
  })

export const makeHashCommitter = (world: World): HashCommitter["Service"] =>
  HashCommitter.of({
    commit: (batch) =>
      Effect.gen(function*() {
        yield* begin(world, "commit")
        const faults = world.faults
        if (faults.commitFailures > 0) {
          faults.commitFailures--
          return yield* new DatabaseError({
            operation: "commit",
            detail: "fake: could not serialize access",
            retryable: faults.commitFailureRetryable
          })
        }
        const result = yield* Effect.suspend(() => {
          const problem = checkBatch(world, batch)
          if (problem !== undefined) return Effect.die(world.violation(problem))
          const result = applyBatch(world, batch)
          world.commits.push({ seq: world.nextSeq(), run: world.run, entries: [...batch], result })
          return Effect.succeed(result)
        }).pipe(Effect.uninterruptible)
        if (faults.crashAfterCommits !== undefined && --faults.crashAfterCommits <= 0) {
          faults.crashAfterCommits = undefined
          return yield* crash(world, "commit")
        }
        return result
      })
  })

export const fakeHashCommitter = (world: World): Layer.Layer<HashCommitter> =>
  Layer.sync(HashCommitter, () => makeHashCommitter(world))

// ---------------------------------------------------------------------------------------------------------------------
// Metrics

export interface QueueRecord {
  readonly name: string
  readonly capacity: number
  /** The largest fill seen by any sample. */
  maxUsed: number
  samples: number
  size: Effect.Effect<number> | undefined
}

/** What the recording `Metrics` saw, beyond the live counters. */
export class MetricsRecording {
  readonly queues = new Map<string, QueueRecord>()
  readonly failures: Array<RowFailed> = []
  readonly processedCalls: Array<{ readonly stage: Stage; readonly objects: number; readonly bytes: number }> = []
  readonly retries: Array<string> = []
  alreadyPresent = 0

  /** Samples the fill of every registered queue (also done at every `processed` call). */
  readonly sample: Effect.Effect<void> = Effect.suspend(() =>
    Effect.forEach([...this.queues.values()], (q) =>
      q.size === undefined ? Effect.void : Effect.map(q.size, (used) => {
        q.samples++
        q.maxUsed = Math.max(q.maxUsed, used)
      }), { discard: true })
  )
}

/** Core's live `Metrics` plus a `MetricsRecording` (queue fill peaks, every failure, retry and processed call). */
export const recordingMetrics = (recording: MetricsRecording): Layer.Layer<Metrics> =>
  Layer.effect(
    Metrics,
    Effect.map(Metrics.make, (base) =>
      Metrics.of({
        ...base,
        processed: (stage, objects, bytes) =>
          Effect.suspend(() => {
            recording.processedCalls.push({ stage, objects, bytes })
            return base.processed(stage, objects, bytes)
          }).pipe(Effect.andThen(recording.sample)),
        failed: (failure) =>
          Effect.suspend(() => {
            recording.failures.push(failure)
            return base.failed(failure)
          }),
        alreadyPresent: Effect.suspend(() => {
          recording.alreadyPresent++
          return base.alreadyPresent
        }),
        retried: (operation, waiting) =>
          Effect.suspend(() => {
            recording.retries.push(operation)
            return base.retried(operation, waiting)
          }),
        registerQueue: (name, capacity, size) =>
          base.registerQueue(name, capacity, size).pipe(
            Effect.andThen(Effect.acquireRelease(
              Effect.sync(() => {
                const previous = recording.queues.get(name)
                recording.queues.set(name, {
                  name,
                  capacity,
                  maxUsed: previous?.maxUsed ?? 0,
                  samples: previous?.samples ?? 0,
                  size
                })
              }),
              () =>
                Effect.sync(() => {
                  const q = recording.queues.get(name)
                  if (q !== undefined) q.size = undefined
                })
            ))
          )
      }))
  )

// ---------------------------------------------------------------------------------------------------------------------

export type FakeServices = LoSource | LoReader | ObjectStore | HashCommitter | Metrics

/** All five fakes over one world. Pass a `MetricsRecording` to inspect queue fills and failures afterwards. */
export const fakeLayer = (
  world: World,
  options: FakeOptions = {},
  recording: MetricsRecording = new MetricsRecording()
): Layer.Layer<FakeServices> =>
  Layer.mergeAll(
    fakeLoSource(world, options),
    fakeLoReader(world, options),
    fakeObjectStore(world, options),
    fakeHashCommitter(world)
  ).pipe(Layer.provideMerge(recordingMetrics(recording)))

/**
 * The pipeline's guarantees, as properties checked against the in-memory fakes over generated tables, configurations
 * and fault schedules. The fake committer checks property 2 at every single commit (and dies if it is violated), so
 * every property below also proves "sha2 is never recorded for an object that is not in the store".
 */
import { describe, it } from "@effect/vitest"
import { assert } from "@effect/vitest"
import {
  anyInt,
  arbMimeType,
  arbTableSpec,
  type BuiltWorld,
  buildWorld,
  commitOutcomes,
  constantFrom,
  contentBytes,
  integer,
  optional,
  type RowSpec,
  type World
} from "@lo-migrate/testing"
import { Cause, Effect, Exit, Fiber, Latch, Schema } from "effect"
import * as Arbitrary from "effect/Arbitrary"
import { createHash } from "node:crypto"
import { inFlightBound, type PipelineConfig, queueNames, validatePipelineConfig } from "../src/index.ts"
import { ReadUnits } from "../src/ReadUnits.ts"
import { assertFinalState, run, testConfig } from "./helpers.ts"

const arbTable = arbTableSpec({ max: 160 * 1024, maxRows: 24 })

const arbConfig: Arbitrary.Arbitrary<PipelineConfig> = Arbitrary.map(
  Arbitrary.all({
    readers: integer(1, 4),
    storers: integer(1, 4),
    committers: integer(1, 3),
    readQueue: integer(1, 8),
    storeQueue: integer(1, 6),
    commitQueue: integer(1, 8),
    commitChunk: integer(1, 6),
    readBatchRows: integer(1, 5),
    readBatchObjectMax: constantFrom(1, 512, 4096, 65536),
    maxInFlightBytes: optional(constantFrom(2048, 65536, 1_000_000))
  }),
  ({ maxInFlightBytes, ...c }) => testConfig(maxInFlightBytes === undefined ? c : { ...c, maxInFlightBytes })
)

/** One or two valid rows of 1 to 4 MiB. */
const arbBig: Arbitrary.Arbitrary<Array<RowSpec>> = Arbitrary.array(
  Arbitrary.all({
    kind: Arbitrary.Constant("valid" as const),
    content: Arbitrary.all({ size: integer(1024 * 1024, 4 * 1024 * 1024), seed: anyInt }),
    mimeType: arbMimeType
  }),
  { minLength: 1, maxLength: 2 }
)

const arbInMemMax = constantFrom(256, 4096, 65536)

/** A deterministic jitter: about one operation in `oneIn` waits a millisecond, to vary the interleavings. */
const jitter = (seed: number, oneIn = 20) => {
  let x = seed | 0 || 1
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % oneIn === 0 ? "1 millis" as const : undefined
  }
}

/** The same table migrated by one uninterrupted run: what every interrupted/crashed/stopped sequence must reach. */
const reference = Effect.fnUntraced(function*(built: BuiltWorld, config: PipelineConfig, inMemMax: number) {
  const world = built.world.clone()
  const r = yield* run(world, config, {}, { inMemMax })
  assert.isTrue(Exit.isSuccess(r.exit), "reference run succeeds")
  return world
})

/** Keys whose sha2 a commit of a run before `run` recorded. */
const keysCommittedBefore = (world: World, run: number) => {
  const keys = new Set<string>()
  for (const c of world.commits) {
    if (c.run >= run) continue
    const outcomes = commitOutcomes(c.entries, c.result)
    const done = new Set([...outcomes.committed, ...outcomes.alreadySet])
    for (const e of c.entries) if (done.has(e.hash)) keys.add(e.sha256)
  }
  return keys
}

const assertSameFinalState = (world: World, ref: World) => {
  assert.deepStrictEqual(world.violations, [], "property 2: no sha2 without its object, at any commit of any run")
  assert.deepStrictEqual(world.tableState(), ref.tableState())
  assert.deepStrictEqual(world.bucketState(), ref.bucketState())
}

/** No object is uploaded again after its sha2 was committed: later runs never even put those keys. */
const assertNoUploadAfterCommit = (world: World) => {
  for (let r = 2; r <= world.run; r++) {
    const committed = keysCommittedBefore(world, r)
    const again = world.puts.filter((p) => p.run === r && committed.has(p.key))
    assert.deepStrictEqual(again, [], `run ${r} put keys already committed`)
  }
  // and within any run: no "Uploaded" for a key after a commit recorded it
  const firstCommit = new Map<string, number>()
  for (const c of world.commits) {
    const outcomes = commitOutcomes(c.entries, c.result)
    const done = new Set([...outcomes.committed, ...outcomes.alreadySet])
    for (const e of c.entries) if (done.has(e.hash) && !firstCommit.has(e.sha256)) firstCommit.set(e.sha256, c.seq)
  }
  for (const p of world.puts) {
    const at = firstCommit.get(p.key)
    if (p.outcome === "Uploaded" && at !== undefined) assert.isBelow(p.seq, at, `key ${p.key} uploaded after commit`)
  }
}

/** A rerun without faults succeeds, reaches the uninterrupted result `ref`, and puts no key committed earlier. */
const rerunCompletes = Effect.fnUntraced(function*(world: World, config: PipelineConfig, ref: World) {
  const second = yield* run(world, config, {}, { inMemMax: 4096 })
  assert.isTrue(Exit.isSuccess(second.exit))
  assertSameFinalState(world, ref)
  assertNoUploadAfterCommit(world)
})

const assertNoLeak = (world: World) => {
  assert.strictEqual(world.reader.liveObjects, 0, "every read object released")
  assert.strictEqual(world.reader.liveMemoryBytes, 0)
  assert.strictEqual(world.reader.liveSpills.size, 0, "no temp file left")
}

describe("pipeline properties", () => {
  it.live.prop(
    "1+2. a run migrates exactly the valid rows, with their bytes and content types; bad rows are reported",
    [arbTable, arbConfig, arbInMemMax, anyInt],
    ([spec, config, inMemMax, seed]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        built.world.faults.latency = jitter(seed)
        const r = yield* run(built.world, config, {}, { inMemMax, pageSize: 5 })
        assert.isTrue(Exit.isSuccess(r.exit), Exit.isFailure(r.exit) ? Cause.pretty(r.exit.cause) : "")
        assertFinalState(built, r.failures)
        const migrate = built.expectations.filter((e) => e._tag === "Migrate")
        const bad = built.expectations.filter((e) => e._tag === "Fail")
        const summary = Exit.isSuccess(r.exit) ? r.exit.value : undefined
        assert.strictEqual(summary?.migrated, migrate.length)
        assert.strictEqual(
          summary?.migratedBytes,
          migrate.reduce((n, e) => n + built.world.rows.find((row) => row.id === e.rowId)!.size, 0)
        )
        assert.strictEqual(summary?.failed, bad.length)
        assert.strictEqual(r.failures.length, bad.length, "each bad row reported exactly once")
        assert.strictEqual(r.recording.failures.length, bad.length)
        assert.isFalse(summary?.stopped)
        assertNoLeak(built.world)
      }),
    { arbitrary: { runs: 120 } }
  )

  it.live.prop(
    "1b. the same with objects up to several MiB, spilled to temp files (few cases: hashing MiBs takes time)",
    [arbTableSpec({ max: 4096, maxRows: 5 }), arbBig, arbConfig],
    ([small, big, config]) =>
      Effect.gen(function*() {
        const built = buildWorld({ rows: [...small.rows, ...big] })
        assert.isAbove(built.world.largeObjects.size, 0)
        const r = yield* run(built.world, config, {}, { inMemMax: 64 * 1024 })
        assert.isTrue(Exit.isSuccess(r.exit), Exit.isFailure(r.exit) ? Cause.pretty(r.exit.cause) : "")
        assertFinalState(built, r.failures)
        assert.isAtLeast(built.world.reader.spilled, big.length)
        assertNoLeak(built.world)
      }),
    { arbitrary: { runs: 8 } }
  )

  it.live.prop(
    "3a. interrupting a run at any point, then rerunning, gives the uninterrupted result; nothing re-uploaded",
    [arbTable, arbConfig, arbInMemMax, integer(1, 150), anyInt],
    ([spec, config, inMemMax, k, seed]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        const ref = yield* reference(built, config, inMemMax)
        const world = built.world
        world.faults.latency = jitter(seed, 8)
        const reached = Latch.makeUnsafe(false)
        world.afterOperations(k, () => reached.openUnsafe())
        const fiber = yield* Effect.forkChild(run(world, config, {}, { inMemMax }))
        yield* Effect.raceFirst(reached.await, Effect.asVoid(Fiber.await(fiber)))
        yield* Fiber.interrupt(fiber)
        yield* Fiber.await(fiber)
        assertNoLeak(world)
        world.faults.latency = () => undefined
        const second = yield* run(world, config, {}, { inMemMax })
        assert.isTrue(Exit.isSuccess(second.exit))
        assertSameFinalState(world, ref)
        assertFinalState(built, second.failures)
        assertNoUploadAfterCommit(world)
        assertNoLeak(world)
      }),
    { arbitrary: { runs: 80 } }
  )

  it.live.prop(
    "3b. a crash of the store or the database after N operations, then a rerun, gives the uninterrupted result",
    [
      arbTable,
      arbConfig,
      constantFrom("puts" as const, "commits" as const),
      constantFrom("die" as const, "interrupt" as const),
      integer(1, 20)
    ],
    ([spec, config, where, mode, n]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        const ref = yield* reference(built, config, 4096)
        const world = built.world
        world.faults.crashMode = mode
        if (where === "puts") world.faults.crashAfterPuts = n
        else world.faults.crashAfterCommits = n
        const first = yield* run(world, config, {}, { inMemMax: 4096 })
        const crashed = world.faults.crashAfterPuts === undefined && world.faults.crashAfterCommits === undefined
        if (crashed) assert.isTrue(Exit.isFailure(first.exit), "a crash fails the run")
        assertNoLeak(world)
        world.faults.crashAfterPuts = undefined
        world.faults.crashAfterCommits = undefined
        const second = yield* run(world, config, {}, { inMemMax: 4096 })
        assert.isTrue(Exit.isSuccess(second.exit))
        assertSameFinalState(world, ref)
        assertFinalState(built, second.failures)
        assertNoUploadAfterCommit(world)
      }),
    { arbitrary: { runs: 80 } }
  )

  it.live.prop(
    "4. queues never exceed their bounds; in-flight objects and memory stay under inFlightBound",
    [
      arbTableSpec({ max: 96 * 1024, minRows: 5, maxRows: 40, badWeight: 0 }),
      arbConfig,
      arbInMemMax
    ],
    ([spec, config, inMemMax]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        // slow uploads: readers run ahead until the bounds hold them back
        built.world.faults.latency = (op) => (op === "put" ? "1 millis" : undefined)
        const r = yield* run(built.world, config, {}, { inMemMax })
        assert.isTrue(Exit.isSuccess(r.exit))
        const bound = inFlightBound(config, inMemMax)
        assert.isAtMost(built.world.reader.peakLiveObjects, bound.objects)
        assert.isAtMost(built.world.reader.peakLiveMemoryBytes, bound.bytes)
        const capacities = {
          // the read queue's use counts the rows a batch set aside with those queued (readUnits.test.ts)
          [queueNames.read]: ReadUnits.capacity(yield* Effect.orDie(validatePipelineConfig(config))),
          [queueNames.store]: config.storeQueue,
          [queueNames.commit]: config.commitQueue
        }
        for (const [name, q] of r.recording.queues) {
          assert.strictEqual(q.capacity, capacities[name as keyof typeof capacities])
          assert.isAtMost(q.maxUsed, q.capacity)
          assert.isAbove(q.samples, 0)
        }
        assertFinalState(built, r.failures)
      }),
    { arbitrary: { runs: 40 } }
  )

  it.live.prop(
    "4b. with maxInFlightBytes, bytes read and not yet uploaded (memory and temp files) stay within the budget",
    [
      arbTableSpec({ max: 96 * 1024, minRows: 5, maxRows: 40 }),
      arbConfig,
      constantFrom(1024, 8192, 65536, 300_000),
      anyInt
    ],
    ([spec, config, budget, seed]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        const j = jitter(seed, 10)
        built.world.faults.latency = (op) => (op === "put" ? "1 millis" : j())
        const r = yield* run(built.world, { ...config, maxInFlightBytes: budget }, {}, { inMemMax: 4096 })
        assert.isTrue(Exit.isSuccess(r.exit), Exit.isFailure(r.exit) ? Cause.pretty(r.exit.cause) : "")
        const largest = Math.max(
          0,
          ...built.expectations.flatMap((e) =>
            e._tag === "Migrate" ? [built.world.rows.find((row) => row.id === e.rowId)!.size] : []
          )
        )
        assert.isAtMost(built.world.reader.peakLiveBytes, Math.max(budget, largest))
        assertFinalState(built, r.failures)
        assertNoLeak(built.world)
      }),
    { arbitrary: { runs: 40 } }
  )

  it.live.prop(
    "4c. with maxInMemoryBytes, in-memory bytes stay within the budget while spilled objects are not held back",
    [
      arbTableSpec({ max: 96 * 1024, minRows: 5, maxRows: 40 }),
      arbConfig,
      constantFrom(1024, 8192, 65536),
      anyInt
    ],
    ([spec, config, budget, seed]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        const j = jitter(seed, 10)
        built.world.faults.latency = (op) => (op === "put" ? "1 millis" : j())
        const inMemMax = 4096
        const r = yield* run(
          built.world,
          { ...config, maxInMemoryBytes: budget, inMemoryObjectMax: inMemMax },
          {},
          { inMemMax }
        )
        assert.isTrue(Exit.isSuccess(r.exit), Exit.isFailure(r.exit) ? Cause.pretty(r.exit.cause) : "")
        // a single in-memory object larger than the budget passes alone; the reader never holds more than inMemMax
        assert.isAtMost(built.world.reader.peakLiveMemoryBytes, Math.max(budget, inMemMax))
        assert.isAtMost(built.world.reader.peakLiveMemoryBytes, inFlightBound(
          { ...config, maxInMemoryBytes: budget, inMemoryObjectMax: inMemMax },
          inMemMax
        ).bytes)
        assertFinalState(built, r.failures)
        assertNoLeak(built.world)
      }),
    { arbitrary: { runs: 40 } }
  )

  it.live("4d. spilled objects are not charged to maxInMemoryBytes: with a budget of one byte they still run side by side", () =>
    Effect.gen(function*() {
        const rows = Array.from({ length: 6 }, (_, i) => ({
          kind: "valid" as const,
          content: { size: 64 * 1024 + i, seed: i },
          mimeType: "application/octet-stream"
        }))
        const built = buildWorld({ rows })
        built.world.faults.latency = (op) => (op === "put" ? "5 millis" : undefined)
        const config = testConfig({ readers: 3, storers: 3, maxInMemoryBytes: 1, inMemoryObjectMax: 4096 })
        const r = yield* run(built.world, config, {}, { inMemMax: 4096 })
        assert.isTrue(Exit.isSuccess(r.exit))
        assert.isAtLeast(built.world.reader.peakLiveObjects, 2, "spilled objects were held back by the memory budget")
        assert.strictEqual(built.world.reader.peakLiveMemoryBytes, 0)
        assertFinalState(built, r.failures)
        assertNoLeak(built.world)
    }))

  it.live.prop(
    "5a. transient store failures are retried and leave nothing behind",
    [arbTable, arbConfig, integer(1, 3)],
    ([spec, config, failures]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        const migrate = built.expectations.filter((e) => e._tag === "Migrate").length
        built.world.faults.storeFailures = failures // finitely many: every put eventually succeeds
        // As in 5c: a budget no scheduling pause of a loaded machine can use up (with 200 ms, two failures in a row
        // separated by a pause once ended the run under a load average of 19).
        const retry = { ...config.retry, budget: "30 seconds" } as const
        const r = yield* run(built.world, { ...config, retry }, {}, { inMemMax: 4096 })
        assert.isTrue(Exit.isSuccess(r.exit), Exit.isFailure(r.exit) ? Cause.pretty(r.exit.cause) : "")
        assertFinalState(built, r.failures)
        const fired = migrate === 0 ? 0 : failures - built.world.faults.storeFailures
        assert.strictEqual(r.recording.retries.filter((op) => op === "put").length, fired)
        assert.strictEqual(built.world.puts.filter((p) => p.outcome === "Failed").length, fired)
        assertNoLeak(built.world)
      }),
    { arbitrary: { runs: 60 } }
  )

  it.live.prop(
    "5c. a source page that fails mid-run is retried from its cursor; no row is read, uploaded or reported twice",
    [
      arbTable,
      arbConfig,
      Arbitrary.map(Arbitrary.array(integer(1, 12), { maxLength: 4 }), (xs) => [...new Set(xs)])
    ],
    ([spec, config, failAt]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        const world = built.world
        let pages = 0
        world.listeners.push((op) => {
          if (op === "page" && failAt.includes(++pages)) world.faults.sourceFailures = 1
        })
        // Finitely many faults, so a budget that no stall of a loaded machine can use up: with 200 ms, two
        // failures in a row separated by a scheduling pause once ended the run.
        const retry = { ...config.retry, budget: "30 seconds" } as const
        const r = yield* run(world, { ...config, retry }, {}, { inMemMax: 4096, pageSize: 3 })
        assert.isTrue(Exit.isSuccess(r.exit), Exit.isFailure(r.exit) ? Cause.pretty(r.exit.cause) : "")
        assertFinalState(built, r.failures)
        const bad = built.expectations.filter((e) => e._tag === "Fail").length
        const migrate = built.expectations.filter((e) => e._tag === "Migrate")
        assert.strictEqual(r.failures.length, bad, "each bad row reported once")
        // each valid row read at most once (a duplicate may be committed with its twin, by hash, without a read)
        const hashes = new Set(migrate.map((e) => world.rows.find((row) => row.id === e.rowId)!.hash))
        assert.isAtMost(world.reader.objectsRead, migrate.length, "each valid row read at most once")
        assert.isAtLeast(world.reader.objectsRead, hashes.size)
        const putsPerKey = new Map<string, number>()
        for (const p of world.puts) putsPerKey.set(p.key, (putsPerKey.get(p.key) ?? 0) + 1)
        for (const [key, n] of putsPerKey) {
          assert.isAtMost(n, migrate.filter((e) => e.sha256 === key).length, "each valid row uploaded once")
        }
        const injected = failAt.filter((n) => n <= pages).length
        assert.strictEqual(r.recording.retries.filter((op) => op === "source").length, injected)
        assertNoLeak(world)
      }),
    { arbitrary: { runs: 60 } }
  )

  it.live.prop(
    "5b. a persistent store failure ends the run with an error; nothing is wrongly committed; a rerun completes",
    [arbTableSpec({ max: 64 * 1024, minRows: 1, maxRows: 24 }), arbConfig, integer(0, 30)],
    ([spec, config, after]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        const world = built.world
        const ref = yield* reference(built, config, 4096)
        world.afterOperations(after, () => {
          world.faults.storeBroken = true
        })
        const first = yield* run(world, config, {}, { inMemMax: 4096 })
        const putsAfterBreak = world.puts.filter((p) => p.outcome === "Failed")
        if (putsAfterBreak.length > 0) {
          assert.isTrue(Exit.isFailure(first.exit))
          const error = Exit.isFailure(first.exit) ? Cause.squash(first.exit.cause) : undefined
          assert.strictEqual((error as { _tag?: string })._tag, "StorageError")
        }
        // whatever was committed has its object (the committer checked at each commit) and the right value
        for (const e of built.expectations) {
          const row = world.rows.find((r) => r.id === e.rowId)!
          if (e._tag === "Migrate") assert.include([null, e.sha256], row.sha2)
          if (e._tag === "Fail") assert.isNull(row.sha2)
        }
        assert.deepStrictEqual(world.violations, [])
        assertNoLeak(world)
        world.listeners.length = 0
        world.faults.storeBroken = false
        const second = yield* run(world, config, {}, { inMemMax: 4096 })
        assert.isTrue(Exit.isSuccess(second.exit))
        assertSameFinalState(world, ref)
      }),
    { arbitrary: { runs: 60 } }
  )

  it.live.prop(
    "5d. transient read and commit failures are retried; a fatal commit failure ends the run, a rerun completes",
    [arbTable, arbConfig, integer(0, 3), integer(0, 3), Arbitrary.schema(Schema.Boolean)],
    ([spec, config, readFailures, commitFailures, fatal]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        const world = built.world
        const ref = yield* reference(built, config, 4096)
        world.faults.readFailures = readFailures
        world.faults.commitFailures = commitFailures
        world.faults.commitFailureRetryable = !fatal
        const first = yield* run(world, config, {}, { inMemMax: 4096 })
        const commitFired = commitFailures - world.faults.commitFailures
        if (fatal && commitFired > 0) {
          assert.isTrue(Exit.isFailure(first.exit))
          const error = Exit.isFailure(first.exit) ? Cause.squash(first.exit.cause) : undefined
          assert.strictEqual((error as { _tag?: string })._tag, "DatabaseError")
        } else {
          assert.isTrue(Exit.isSuccess(first.exit), Exit.isFailure(first.exit) ? Cause.pretty(first.exit.cause) : "")
          assertFinalState(built, first.failures)
          const readFired = readFailures - world.faults.readFailures
          const retried = first.recording.retries
          assert.strictEqual(retried.filter((op) => op === "read" || op === "readBatch").length, readFired)
          assert.strictEqual(retried.filter((op) => op === "commit").length, commitFired)
        }
        assertNoLeak(world)
        world.faults.readFailures = 0
        world.faults.commitFailures = 0
        yield* rerunCompletes(world, config, ref)
      }),
    { arbitrary: { runs: 60 } }
  )

  it.live.prop(
    "6. stop drains: everything uploaded is committed, the run returns, a rerun finishes the rest",
    [
      arbTableSpec({ max: 64 * 1024, minRows: 4, maxRows: 30 }),
      arbConfig,
      integer(1, 20),
      anyInt
    ],
    ([spec, config, k, seed]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        const world = built.world
        const ref = yield* reference(built, config, 4096)
        // slow commits, so that uploaded objects wait in the commit queue when stop comes
        const j = jitter(seed, 8)
        world.faults.latency = (op) => (op === "commit" ? "1 millis" : j())
        // stop during the uploads: after the k-th put began
        const stop = Latch.makeUnsafe(false)
        let puts = 0
        world.listeners.push((op) => {
          if (op === "put" && ++puts >= k) stop.openUnsafe()
        })
        const first = yield* run(world, config, { stop: stop.await }, { inMemMax: 4096 })
        assert.isTrue(Exit.isSuccess(first.exit), Exit.isFailure(first.exit) ? Cause.pretty(first.exit.cause) : "")
        // every object this run put (Uploaded or AlreadyPresent) has its rows' sha2 recorded
        const uploaded = new Set(world.puts.filter((p) => p.run === world.run && p.outcome !== "Failed").map((p) => p.key))
        for (const e of built.expectations) {
          if (e._tag !== "Migrate" || !uploaded.has(e.sha256)) continue
          assert.strictEqual(world.rows.find((r) => r.id === e.rowId)!.sha2, e.sha256, "uploaded => committed")
        }
        const summary = Exit.isSuccess(first.exit) ? first.exit.value : undefined
        if (summary?.stopped === false) assertSameFinalState(world, ref)
        assertNoLeak(world)
        world.listeners.length = 0
        world.faults.latency = () => undefined
        yield* rerunCompletes(world, config, ref)
      }),
    { arbitrary: { runs: 50 } }
  )

  it.live.prop(
    "7. the application keeps writing: rows inserted and deleted during a run; a rerun migrates what remains",
    [
      arbTableSpec({ max: 16 * 1024, minRows: 1, maxRows: 20 }),
      arbConfig,
      Arbitrary.array(
        Arbitrary.all({
          at: integer(1, 30),
          insert: Arbitrary.array(Arbitrary.all({ size: integer(0, 5000), seed: anyInt }), { maxLength: 3 }),
          deleteIndex: optional(integer(0, 0x7fffffff))
        }),
        { maxLength: 4 }
      )
    ],
    ([spec, config, writes]) =>
      Effect.gen(function*() {
        const built = buildWorld(spec)
        const world = built.world
        const deleted = new Set<string>()
        let deletedRows = 0
        world.faults.latency = (op) => (op === "commit" ? "1 millis" : undefined) // a run long enough to write into
        for (const w of writes) {
          world.afterOperations(w.at, () => {
            for (const c of w.insert) {
              const bytes = contentBytes({ size: c.size, seed: c.seed ^ 0x5a5a })
              // a new content only (a hash shared with a corrupt row would be a different, known hazard)
              if (world.rowsWithHash(sha1(bytes)).length === 0) world.insertContent(bytes, "text/plain")
            }
            if (w.deleteIndex !== undefined && world.rows.length > 0) {
              const row = world.rows[w.deleteIndex % world.rows.length]!
              deleted.add(row.hash)
              deletedRows += world.deleteRows(row.hash)
              if (row.oid !== null) world.largeObjects.delete(row.oid)
            }
          })
        }
        const first = yield* run(world, config, {}, { inMemMax: 4096, pageSize: 4 })
        assert.isTrue(Exit.isSuccess(first.exit), Exit.isFailure(first.exit) ? Cause.pretty(first.exit.cause) : "")
        // a deleted row is not a failure: counted as vanished, never reported (its object gone or not)
        for (const f of first.failures) assert.notStrictEqual(f.reason._tag, "RowVanished")
        if (Exit.isSuccess(first.exit)) assert.isAtMost(first.exit.value.vanished, deletedRows)
        for (const f of first.failures) {
          if (!deleted.has(f.hash)) continue
          assert.include(["Sha2Conflict"].concat(
            built.expectations.filter((e) => e._tag === "Fail" && e.hash === f.hash).map((e) => e._tag === "Fail" ? e.reason : "")
          ), f.reason._tag)
        }
        world.listeners.length = 0
        const second = yield* run(world, config, {}, { inMemMax: 4096, pageSize: 4 })
        assert.isTrue(Exit.isSuccess(second.exit))
        // every row still in the table whose object is good now carries its SHA-256, with the object stored
        const expectedFail = new Set(built.expectations.flatMap((e) => (e._tag === "Fail" ? [e.rowId] : [])))
        for (const row of world.rows) {
          if (expectedFail.has(row.id)) {
            assert.isNull(row.sha2)
            continue
          }
          const bytes = world.largeObjects.get(row.oid!)!
          assert.strictEqual(row.sha2, sha256(bytes))
          assert.deepStrictEqual(world.bucket.get(row.sha2!)?.bytes, bytes)
        }
        assert.deepStrictEqual(world.violations, [])
        assertNoLeak(world)
      }),
    { arbitrary: { runs: 60 } }
  )
})

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")
const sha1 = (bytes: Uint8Array) => createHash("sha1").update(bytes).digest("hex")

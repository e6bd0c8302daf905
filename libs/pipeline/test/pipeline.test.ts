import { assert, describe, it } from "@effect/vitest"
import { Metrics, ObjectStore, type RowFailed, TransferCorrupted } from "@lo-migrate/core"
import {
  buildWorld,
  contentBytes,
  fakeHashCommitter,
  fakeLoReader,
  fakeLoSource,
  makeObjectStore,
  World
} from "@lo-migrate/testing"
import { Cause, Effect, Exit, Fiber, Layer, Schedule } from "effect"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { inFlightBound, queueNames, runMigration } from "../src/index.ts"
import { assertFinalState, run, testConfig } from "./helpers.ts"

describe("runMigration (examples)", () => {
  it.live("migrates valid rows, reports and skips bad ones, leaves migrated rows alone", () =>
    Effect.gen(function*() {
      const built = buildWorld({
        rows: [
          { kind: "valid", content: { size: 10, seed: 1 }, mimeType: "text/plain" },
          { kind: "valid", content: { size: 100_000, seed: 2 }, mimeType: null },
          { kind: "duplicate" },
          { kind: "valid", content: { size: 0, seed: 3 }, mimeType: "" },
          { kind: "migrated", content: { size: 50, seed: 4 }, mimeType: "image/png" },
          { kind: "malformedHash", content: { size: 10, seed: 5 }, mimeType: null, malformation: "short" },
          { kind: "nullOid", content: { size: 10, seed: 6 }, mimeType: null },
          { kind: "missingObject", content: { size: 10, seed: 7 }, mimeType: null },
          { kind: "corrupt", content: { size: 3000, seed: 8 }, mimeType: null },
          { kind: "sizeMismatch", content: { size: 10, seed: 9 }, mimeType: null, delta: 2 }
        ]
      })
      const result = yield* run(built.world, testConfig(), {}, { inMemMax: 1024 })
      assert.isTrue(Exit.isSuccess(result.exit))
      const summary = Exit.isSuccess(result.exit) ? result.exit.value : undefined
      assert.strictEqual(summary?.migrated, 4)
      assert.strictEqual(summary?.migratedBytes, 10 + 100_000 * 2)
      assert.strictEqual(summary?.failed, 5)
      assert.isFalse(summary?.stopped)
      // the duplicate's put finds its twin's object, unless both puts ran at the same time
      assert.include([0, 1], summary?.alreadyPresent)
      assertFinalState(built, result.failures)
      assert.strictEqual(result.failures.length, 5)
      assert.strictEqual(result.recording.failures.length, 5)
      assert.strictEqual(built.world.reader.liveObjects, 0)
      assert.strictEqual(built.world.reader.spilled, 2)
      assert.deepStrictEqual([...result.recording.queues.keys()].sort(), Object.values(queueNames).sort())
    }))

  it.live("the summary counts this run only, when the Metrics outlive it (two runs on one Metrics)", () =>
    Effect.gen(function*() {
      const world = new World()
      const first = Array.from({ length: 5 }, (_, i) => world.insertContent(contentBytes({ size: 10 + i, seed: i + 1 })))
      world.insertRow({ hash: "not a sha1", oid: null, size: 1, mimeType: null })
      const services = Layer.mergeAll(fakeLoSource(world), fakeLoReader(world), fakeHashCommitter(world)).pipe(
        Layer.provideMerge(Layer.mergeAll(Layer.succeed(ObjectStore, makeObjectStore(world)), Metrics.layer))
      )
      yield* Effect.gen(function*() {
        const one = yield* runMigration(testConfig())
        assert.deepStrictEqual(
          [one.migrated, one.migratedBytes, one.failed, one.vanished],
          [5, first.reduce((n, r) => n + r.size, 0), 1, 0]
        )
        world.insertContent(contentBytes({ size: 7, seed: 99 }))
        const two = yield* runMigration(testConfig())
        // the bad row is read and reported again (its sha2 stays NULL), the one new row is migrated
        assert.deepStrictEqual([two.migrated, two.migratedBytes, two.failed, two.vanished], [1, 7, 1, 0])
        const totals = yield* Metrics.use((m) => m.snapshot)
        assert.deepStrictEqual([totals.stages.commit.objects, totals.failed], [6, 2], "the Metrics hold both runs")
      }).pipe(Effect.provide(services))
    }))

  it.live("rows deleted during the run (with their objects, or before the commit) vanish: counted, not failed", () =>
    Effect.gen(function*() {
      const world = new World()
      const rows = Array.from({ length: 6 }, (_, i) => world.insertContent(contentBytes({ size: 100 + i, seed: i + 1 })))
      const [gone, goneAtCommit] = [rows[5]!, rows[0]!]
      // at the first put: one row is deleted with its object (the lo_manage way), one only as a row
      let puts = 0
      world.listeners.push((op) => {
        if (op !== "put" || ++puts !== 1) return
        world.deleteRows(gone.hash)
        world.largeObjects.delete(gone.oid!)
        world.deleteRows(goneAtCommit.hash)
      })
      const result = yield* run(world, testConfig({ readers: 1, readBatchRows: 1 }))
      assert.isTrue(Exit.isSuccess(result.exit))
      const summary = Exit.isSuccess(result.exit) ? result.exit.value : undefined
      assert.strictEqual(summary?.vanished, 2)
      assert.strictEqual(summary?.failed, 0)
      assert.strictEqual(summary?.migrated, 4)
      assert.deepStrictEqual(result.failures, [])
      assert.strictEqual(result.recording.failures.length, 0)
    }))

  it.live("an empty table finishes with an empty summary", () =>
    Effect.gen(function*() {
      const result = yield* run(new World(), testConfig())
      assert.deepStrictEqual(result.exit, Exit.succeed({
        migrated: 0,
        migratedBytes: 0,
        alreadyPresent: 0,
        failed: 0,
        vanished: 0,
        stopped: false
      }))
    }))

  it.live("counts from LoSource.count reach Metrics", () =>
    Effect.gen(function*() {
      const world = new World()
      for (let i = 0; i < 5; i++) world.insertContent(contentBytes({ size: 10 * i, seed: i + 1 }))
      const result = yield* run(world, testConfig())
      assert.isTrue(Exit.isSuccess(result.exit))
      assert.strictEqual(world.operations.count, 1)
    }))

  it.live("a persistent store failure fails the run, commits nothing wrong, leaks no temp file", () =>
    Effect.gen(function*() {
      const world = new World()
      for (let i = 0; i < 20; i++) world.insertContent(contentBytes({ size: 3000 + i, seed: i + 1 }))
      world.faults.storeBroken = true
      const result = yield* run(world, testConfig(), {}, { inMemMax: 1024 })
      assert.isTrue(Exit.isFailure(result.exit))
      const error = Exit.isFailure(result.exit) ? Cause.squash(result.exit.cause) : undefined
      assert.strictEqual((error as { _tag?: string })._tag, "StorageError")
      assert.isTrue(world.rows.every((r) => r.sha2 === null))
      assert.strictEqual(world.reader.liveObjects, 0)
      assert.strictEqual(world.reader.liveSpills.size, 0)
      assert.isAbove(world.reader.spilled, 0)
    }))

  it.live("interrupting the run releases every spilled body", () =>
    Effect.gen(function*() {
      const world = new World()
      for (let i = 0; i < 40; i++) world.insertContent(contentBytes({ size: 3000 + i, seed: i + 1 }))
      world.faults.latency = (op) => (op === "put" ? "3 millis" : undefined)
      const spillsSeen: Array<string> = []
      const fiber = yield* Effect.forkChild(run(world, testConfig(), {}, { inMemMax: 1024 }))
      // interrupt once a few bodies are spilled and the run is busy uploading
      yield* Effect.sync(() => world.reader.liveSpills.size).pipe(
        Effect.repeat({ until: (n) => n >= 3, schedule: Schedule.spaced("1 millis") })
      )
      for (const p of world.reader.liveSpills) spillsSeen.push(p)
      yield* Fiber.interrupt(fiber)
      assert.isAbove(spillsSeen.length, 0)
      assert.strictEqual(world.reader.liveObjects, 0)
      assert.isTrue(spillsSeen.every((p) => !existsSync(p)))
    }))

  it.live("slow uploads fill the store queue up to, and never beyond, the in-flight bound", () =>
    Effect.gen(function*() {
      const world = new World()
      for (let i = 0; i < 60; i++) world.insertContent(contentBytes({ size: 2000 + i, seed: i + 1 }))
      world.faults.latency = (op) => (op === "put" ? "2 millis" : undefined)
      const config = testConfig({ readers: 2, storers: 2, storeQueue: 5, readBatchRows: 1 })
      const result = yield* run(world, config, {}, { inMemMax: 4096 })
      assert.isTrue(Exit.isSuccess(result.exit))
      const bound = inFlightBound(config, 4096)
      assert.strictEqual(bound.objects, 3 + 5 + 2)
      assert.isAtMost(world.reader.peakLiveObjects, bound.objects)
      assert.isAtLeast(world.reader.peakLiveObjects, 5 + 2) // the queue and the upload slots really were full
      assert.isAtMost(world.reader.peakLiveMemoryBytes, bound.bytes)
      assert.strictEqual(result.recording.queues.get(queueNames.store)?.maxUsed, 5)
    }))

  it.live("when the store breaks, what was already uploaded is still committed before the run fails", () =>
    Effect.gen(function*() {
      const world = new World()
      for (let i = 0; i < 30; i++) world.insertContent(contentBytes({ size: 100 + i, seed: i + 1 }))
      let puts = 0
      world.listeners.push((op) => {
        if (op === "put" && ++puts === 8) world.faults.storeBroken = true
      })
      // a long linger and a big chunk: nothing would be committed before the failure on its own
      const config = testConfig({ storers: 1, commitChunk: 100, commitLinger: "1 hour", commitQueue: 50 })
      const result = yield* run(world, config)
      assert.isTrue(Exit.isFailure(result.exit))
      const error = Exit.isFailure(result.exit) ? Cause.squash(result.exit.cause) : undefined
      assert.strictEqual((error as { _tag?: string })._tag, "StorageError")
      const uploaded = world.puts.filter((p) => p.outcome === "Uploaded").map((p) => p.key).sort()
      assert.strictEqual(uploaded.length, 7)
      assert.deepStrictEqual(world.rows.filter((r) => r.sha2 !== null).map((r) => r.sha2).sort(), uploaded)
      assert.strictEqual(world.commits.length, 1)
    }))

  it.live("a commit failure while draining does not hide the error that stopped the upstream", () =>
    Effect.gen(function*() {
      const world = new World()
      for (let i = 0; i < 10; i++) world.insertContent(contentBytes({ size: 100 + i, seed: i + 1 }))
      let puts = 0
      world.listeners.push((op) => {
        if (op === "put" && ++puts === 4) {
          world.faults.storeBroken = true
          world.faults.commitFailures = 100
          world.faults.commitFailureRetryable = false
        }
      })
      const result = yield* run(world, testConfig({ storers: 1, commitChunk: 100, commitLinger: "1 hour" }))
      assert.isTrue(Exit.isFailure(result.exit))
      const cause = Exit.isFailure(result.exit) ? result.exit.cause : undefined
      assert.strictEqual((Cause.squash(cause!) as { _tag?: string })._tag, "StorageError")
      assert.include(Cause.pretty(cause!), "DatabaseError")
      assert.isTrue(world.rows.every((r) => r.sha2 === null))
    }))

  it.live("a stop that has already completed: nothing is read, the run returns at once, stopped", () =>
    Effect.gen(function*() {
      const world = new World()
      for (let i = 0; i < 10; i++) world.insertContent(contentBytes({ size: 100 + i, seed: i + 1 }))
      const result = yield* run(world, testConfig(), { stop: Effect.void })
      assert.deepStrictEqual(result.exit, Exit.succeed({
        migrated: 0,
        migratedBytes: 0,
        alreadyPresent: 0,
        failed: 0,
        vanished: 0,
        stopped: true
      }))
      assert.strictEqual(world.reader.objectsRead, 0)
      assert.strictEqual(world.puts.length, 0)
    }))

  it.live("a stop after the last row was read changes nothing: stopped is false", () =>
    Effect.gen(function*() {
      const world = new World()
      for (let i = 0; i < 10; i++) world.insertContent(contentBytes({ size: 100 + i, seed: i + 1 }))
      // every object read has been handed to the store stage once its put is logged
      const stop = Effect.sync(() => world.puts.length).pipe(
        Effect.repeat({ until: (n) => n === 10, schedule: Schedule.spaced("1 millis") })
      )
      world.faults.latency = (op) => (op === "commit" ? "20 millis" : undefined)
      const result = yield* run(world, testConfig({ commitChunk: 100 }), { stop: Effect.asVoid(stop) })
      assert.isTrue(Exit.isSuccess(result.exit))
      assert.isFalse(Exit.isSuccess(result.exit) && result.exit.value.stopped)
      assert.strictEqual(Exit.isSuccess(result.exit) ? result.exit.value.migrated : -1, 10)
    }))
})

describe("runMigration: an object corrupted in transit", () => {
  it.live("is reported (CorruptedInTransit) and never committed; the other rows are migrated", () =>
    Effect.gen(function*() {
      const world = new World()
      const contents = Array.from({ length: 12 }, (_, i) => contentBytes({ size: 500 + i, seed: i + 1 }))
      const rows = contents.map((bytes) => world.insertContent(bytes))
      const sha256Of = new Map(rows.map((r, i) => [r.hash, createHash("sha256").update(contents[i]!).digest("hex")]))
      const victim = rows[5]!
      const fake = makeObjectStore(world)
      // The store gives up on one object as corrupted in transit (after its own retries); the others go through.
      const store = Layer.succeed(
        ObjectStore,
        ObjectStore.of({
          ...fake,
          put: (request) =>
            request.key === sha256Of.get(victim.hash)
              ? Effect.fail(new TransferCorrupted({ operation: "PutObject", bucket: "b", key: request.key, attempts: 3, detail: "BadDigest" }))
              : fake.put(request)
        })
      )
      const failures: Array<RowFailed> = []
      const summary = yield* runMigration(testConfig(), { onRowFailed: (f) => Effect.sync(() => void failures.push(f)) }).pipe(
        Effect.provide(
          Layer.mergeAll(fakeLoSource(world), fakeLoReader(world), store, fakeHashCommitter(world)).pipe(
            Layer.provideMerge(Metrics.layer)
          )
        )
      )
      assert.strictEqual(summary.migrated, 11)
      assert.strictEqual(summary.failed, 1)
      assert.strictEqual(failures.length, 1)
      assert.strictEqual(failures[0]!.hash, victim.hash)
      assert.strictEqual(failures[0]!.reason._tag, "CorruptedInTransit")
      assert.include(failures[0]!.message, "corrupted in transit 3 times")
      for (const row of world.rows) {
        assert.strictEqual(row.sha2, row.hash === victim.hash ? null : sha256Of.get(row.hash))
      }
      assert.strictEqual(world.reader.liveObjects, 0)
    }))
})

import { assert, describe, it } from "@effect/vitest"
import {
  HashCommitter,
  type LoObject,
  LoReader,
  LoSource,
  ObjectStore,
  RetryPolicy,
  type Sha256Hex,
  type SourceRow
} from "@lo-migrate/core"
import { Cause, Effect, Exit, Option, Result, Stream } from "effect"
import * as Arbitrary from "effect/Arbitrary"
import { existsSync } from "node:fs"
import {
  arbTableSpec,
  commitOutcomes,
  buildWorld,
  contentBytes,
  FakeCrash,
  fakeLayer,
  type FakeOptions,
  type FakeServices,
  MetricsRecording,
  sha1Hex,
  sha256Hex,
  World
} from "../src/index.ts"

const enc = (s: string) => new TextEncoder().encode(s)
const srcRow = (r: { hash: string; oid: number | null; size: number; mimeType: string | null }): SourceRow => ({
  hash: r.hash,
  oid: r.oid,
  size: r.size,
  mimeType: r.mimeType
})
const withWorld = (world: World, options: FakeOptions = {}, recording?: MetricsRecording) =>
<A, E>(self: Effect.Effect<A, E, FakeServices>) => Effect.provide(self, fakeLayer(world, options, recording))

const put = (o: LoObject) =>
  ObjectStore.use((s) =>
    s.put({ key: o.sha256, contentType: o.row.mimeType, size: o.size, md5Base64: o.md5Base64, body: o.body })).pipe(
      Effect.catchTag("TransferCorrupted", Effect.die) // the fake never reports corruption in transit
    )

const read = (row: SourceRow) => LoReader.use((r) => r.read(row))

describe("fake LoSource", () => {
  it.effect("pages by (hash, id) over sha2 IS NULL; sees inserts ahead of the cursor and deletes", () =>
    Effect.gen(function*() {
      const world = new World()
      const rows = Array.from({ length: 10 }, (_, i) => world.insertContent(enc(`content ${i}`)))
      rows[3]!.sha2 = "x".repeat(64)
      const seen: Array<string> = []
      let first = true
      yield* Effect.gen(function*() {
        const source = yield* LoSource
        const counts = yield* source.count
        assert.strictEqual(counts.total, 10)
        assert.strictEqual(counts.remaining, 9)
        yield* source.rows.pipe(Stream.runForEach((r) =>
          Effect.sync(() => {
            seen.push(r.hash)
            if (first) {
              first = false
              const last = world.rows.filter((x) => x.sha2 === null).sort((a, b) => (a.hash < b.hash ? 1 : -1))[0]!
              world.deleteRows(last.hash)
              world.insertRow({ hash: "f".repeat(40), oid: null, size: 0, mimeType: null })
              world.insertRow({ hash: "0".repeat(40), oid: null, size: 0, mimeType: null })
            }
          })
        ))
      }).pipe(withWorld(world, { pageSize: 3 }))
      const expected = world.rows.filter((r) => r.sha2 === null && r.hash !== "0".repeat(40)).map((r) => r.hash).sort()
      assert.deepStrictEqual(seen, expected)
      assert.include(seen, "f".repeat(40))
      assert.notInclude(seen, "0".repeat(40))
      assert.isAbove(world.operations.page, 3)
    }))

  it.effect("a source failure knob fails the page query with a retryable DatabaseError", () =>
    Effect.gen(function*() {
      const world = new World()
      world.insertContent(enc("a"))
      world.faults.sourceFailures = 1
      const exit = yield* Effect.exit(
        LoSource.use((s) => Stream.runCollect(s.rows)).pipe(
          withWorld(world),
          // a policy without retries: the page's own failure surfaces
          Effect.provideService(RetryPolicy, { budget: 0, base: "1 millis", cap: "1 millis" })
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit)) : undefined
      assert.strictEqual(error?._tag, "DatabaseError")
      assert.isTrue(error?.retryable)
    }))

  it.live("a failed page is retried by itself from its cursor: every row once, one retry counted", () =>
    Effect.gen(function*() {
      const world = new World()
      const rows = Array.from({ length: 7 }, (_, i) => world.insertContent(enc(`row ${i}`)))
      // the second page fails once
      world.afterOperations(2, () => void (world.faults.sourceFailures = 1))
      const recording = new MetricsRecording()
      const seen = yield* LoSource.use((s) => Stream.runCollect(s.rows)).pipe(
        withWorld(world, { pageSize: 3 }, recording),
        Effect.provideService(RetryPolicy, { budget: "10 seconds", base: "1 millis", cap: "5 millis" })
      )
      assert.deepStrictEqual(seen.map((r) => r.hash), rows.map((r) => r.hash).sort())
      assert.deepStrictEqual(recording.retries, ["source"])
      assert.strictEqual(world.operations.page, 4, "3 pages, the second one twice")
    }))
})

describe("fake LoReader", () => {
  it.effect("verifies, keeps small bodies in memory, spills big ones to a temp file removed by release", () =>
    Effect.gen(function*() {
      const world = new World()
      const small = world.insertContent(contentBytes({ size: 100, seed: 1 }))
      const big = world.insertContent(contentBytes({ size: 5000, seed: 2 }))
      yield* Effect.gen(function*() {
        const a = yield* read(srcRow(small))
        const b = yield* read(srcRow(big))
        assert.strictEqual(a.body._tag, "InMemory")
        assert.strictEqual(b.body._tag, "Spilled")
        assert.strictEqual(a.sha256, sha256Hex(contentBytes({ size: 100, seed: 1 })))
        assert.strictEqual(world.reader.liveObjects, 2)
        assert.strictEqual(world.reader.liveMemoryBytes, 100)
        const path = b.body._tag === "Spilled" ? b.body.path : ""
        assert.isTrue(existsSync(path))
        yield* b.release
        yield* b.release // idempotent
        assert.isFalse(existsSync(path))
        yield* a.release
        assert.strictEqual(world.reader.liveObjects, 0)
        assert.strictEqual(world.reader.liveMemoryBytes, 0)
        assert.strictEqual(world.reader.peakLiveMemoryBytes, 100)
      }).pipe(withWorld(world, { inMemMax: 1000 }))
    }))

  it.effect("the layer's finalizer removes spilled files that were never released", () =>
    Effect.gen(function*() {
      const world = new World()
      const big = world.insertContent(contentBytes({ size: 5000, seed: 2 }))
      const path = yield* read(srcRow(big)).pipe(
        Effect.map((o) => (o.body._tag === "Spilled" ? o.body.path : "")),
        withWorld(world, { inMemMax: 10 })
      )
      assert.isFalse(existsSync(path))
      assert.strictEqual(world.reader.liveSpills.size, 0)
    }))

  it.effect("reports each bad row with its reason; readBatch gives one result per row", () =>
    Effect.gen(function*() {
      const { world, expectations } = buildWorld({
        rows: [
          { kind: "valid", content: { size: 10, seed: 1 }, mimeType: null },
          { kind: "malformedHash", content: { size: 10, seed: 2 }, mimeType: null, malformation: "upperNonHex" },
          { kind: "nullOid", content: { size: 10, seed: 3 }, mimeType: null },
          { kind: "missingObject", content: { size: 10, seed: 4 }, mimeType: null },
          { kind: "corrupt", content: { size: 10, seed: 5 }, mimeType: null },
          { kind: "corrupt", content: { size: 0, seed: 6 }, mimeType: null },
          { kind: "sizeMismatch", content: { size: 10, seed: 7 }, mimeType: null, delta: 3 },
          { kind: "sizeMismatch", content: { size: 10, seed: 8 }, mimeType: null, delta: -30 }
        ]
      })
      const results = yield* LoReader.use((r) => r.readBatch(world.rows.map(srcRow))).pipe(
        withWorld(world)
      )
      const tags = results.map((r) => (Result.isSuccess(r) ? "ok" : r.failure.reason._tag))
      assert.deepStrictEqual(tags, expectations.map((e) => (e._tag === "Fail" ? e.reason : "ok")))
      assert.deepStrictEqual(tags, [
        "ok",
        "MalformedHash",
        "NullOid",
        "MissingLargeObject",
        "Sha1Mismatch",
        "SizeMismatch",
        "SizeMismatch",
        "InvalidSize"
      ])
    }))
})

describe("world fault knobs", () => {
  it.effect("removeLargeObject / corruptLargeObject make the reader report the row", () =>
    Effect.gen(function*() {
      const world = new World()
      const a = world.insertContent(enc("alpha"))
      const b = world.insertContent(enc("beta"))
      const c = world.insertContent(new Uint8Array(0))
      world.removeLargeObject(a.oid!)
      world.corruptLargeObject(b.oid!, 3)
      world.corruptLargeObject(c.oid!)
      const results = yield* LoReader.use((r) => r.readBatch([a, b, c].map(srcRow))).pipe(withWorld(world))
      assert.deepStrictEqual(results.map((r) => (Result.isSuccess(r) ? "ok" : r.failure.reason._tag)), [
        "MissingLargeObject",
        "Sha1Mismatch",
        "SizeMismatch"
      ])
    }))
})

describe("fake ObjectStore", () => {
  it.effect("stores under the key with the content type; a second put is AlreadyPresent; faults fire", () =>
    Effect.gen(function*() {
      const world = new World()
      const row = world.insertContent(enc("hello"), "text/plain")
      yield* Effect.gen(function*() {
        const o = yield* read(srcRow(row))
        assert.strictEqual(yield* put(o), "Uploaded")
        assert.strictEqual(yield* put(o), "AlreadyPresent")
        world.faults.storeFailures = 1
        const e1 = yield* Effect.flip(put(o))
        assert.isTrue(e1.retryable)
        world.faults.storeBroken = true
        const e2 = yield* Effect.flip(put(o))
        assert.isFalse(e2.retryable)
        world.faults.storeBroken = false
        const head = yield* ObjectStore.use((s) => s.head(o.sha256))
        assert.deepStrictEqual(head, Option.some({ size: 5, contentType: "text/plain" }))
        // a body that does not match its Content-MD5 is rejected, not stored
        const e3 = yield* Effect.flip(ObjectStore.use((s) =>
          s.put({
            key: sha256Hex(enc("other")) as Sha256Hex,
            contentType: null,
            size: 5,
            md5Base64: o.md5Base64,
            body: { _tag: "InMemory", bytes: enc("other") }
          })).pipe(Effect.catchTag("TransferCorrupted", Effect.die)))
        assert.isFalse(e3.retryable)
      }).pipe(withWorld(world))
      assert.deepStrictEqual(world.puts.map((p) => p.outcome), ["Uploaded", "AlreadyPresent", "Failed", "Failed", "Failed"])
      assert.strictEqual(world.bucket.get(sha256Hex(enc("hello")))?.contentType, "text/plain")
      assert.isFalse(world.bucket.has(sha256Hex(enc("other"))))
    }))

  it.effect("a put of a released (deleted) spilled body is a pipeline bug: violation, the put dies", () =>
    Effect.gen(function*() {
      const world = new World()
      const big = world.insertContent(contentBytes({ size: 5000, seed: 9 }))
      const exit = yield* Effect.exit(Effect.gen(function*() {
        const o = yield* read(srcRow(big))
        yield* o.release
        return yield* put(o)
      }).pipe(withWorld(world, { inMemMax: 100 })))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      assert.strictEqual(world.violations.length, 1)
      assert.include(world.violations[0]!, "is gone")
      assert.strictEqual(world.bucket.size, 0)
    }))

  it.effect("crashAfterPuts: the N-th put is stored, then the fake dies", () =>
    Effect.gen(function*() {
      const world = new World()
      const a = world.insertContent(enc("a"))
      const b = world.insertContent(enc("b"))
      world.faults.crashAfterPuts = 2
      const exit = yield* Effect.exit(Effect.gen(function*() {
        yield* put(yield* read(srcRow(a)))
        yield* put(yield* read(srcRow(b)))
      }).pipe(withWorld(world)))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      assert.instanceOf(defect, FakeCrash)
      assert.strictEqual(world.bucket.size, 2)
    }))
})

describe("fake HashCommitter", () => {
  it.effect("classifies committed / alreadySet / vanished / conflicts", () =>
    Effect.gen(function*() {
      const world = new World()
      const rows = ["a", "b", "c"].map((s) => world.insertContent(enc(s)))
      const key = (s: string) => sha256Hex(enc(s)) as Sha256Hex
      for (const s of ["a", "b", "c", "d"]) {
        world.bucket.set(key(s), { bytes: enc(s), contentType: null, md5Base64: "" })
      }
      rows[1]!.sha2 = key("b")
      rows[2]!.sha2 = key("d")
      const entries = [
        { hash: rows[0]!.hash, oid: null, sha256: key("a") },
        { hash: rows[1]!.hash, oid: null, sha256: key("b") },
        { hash: sha1Hex(enc("gone")), oid: null, sha256: key("c") },
        { hash: rows[2]!.hash, oid: null, sha256: key("c") }
      ]
      const results = yield* HashCommitter.use((c) => c.commit(entries)).pipe(withWorld(world))
      assert.deepStrictEqual(commitOutcomes(entries, results), {
        committed: [rows[0]!.hash],
        alreadySet: [rows[1]!.hash],
        vanished: [sha1Hex(enc("gone"))],
        conflicts: [{ hash: rows[2]!.hash, existing: key("d"), computed: key("c") }]
      })
      assert.strictEqual(rows[0]!.sha2, key("a"))
      assert.strictEqual(rows[2]!.sha2, key("d"))
    }))

  it.effect("dies loudly, applying nothing, when a key is not in the bucket with the right bytes", () =>
    Effect.gen(function*() {
      const world = new World()
      const a = world.insertContent(enc("a"))
      const b = world.insertContent(enc("b"))
      const keyA = sha256Hex(enc("a")) as Sha256Hex
      const keyB = sha256Hex(enc("b")) as Sha256Hex
      world.bucket.set(keyA, { bytes: enc("a"), contentType: null, md5Base64: "" })
      world.bucket.set(keyB, { bytes: enc("not b"), contentType: null, md5Base64: "" })
      const commit = (entries: ReadonlyArray<{ hash: string; oid: null; sha256: Sha256Hex }>) =>
        Effect.exit(HashCommitter.use((c) => c.commit(entries)).pipe(withWorld(world)))
      const missing = yield* commit([{ hash: a.hash, oid: null, sha256: keyA }, { hash: a.hash, oid: null, sha256: sha256Hex(enc("x")) as Sha256Hex }])
      assert.isTrue(Exit.isFailure(missing) && Cause.hasDies(missing.cause))
      const wrongBytes = yield* commit([{ hash: b.hash, oid: null, sha256: keyB }])
      assert.isTrue(Exit.isFailure(wrongBytes) && Cause.hasDies(wrongBytes.cause))
      assert.strictEqual(world.violations.length, 2)
      assert.isNull(a.sha2)
      assert.isNull(b.sha2)
    }))

  it.effect("commit failure knobs: retryable or fatal, nothing applied", () =>
    Effect.gen(function*() {
      const world = new World()
      const a = world.insertContent(enc("a"))
      const keyA = sha256Hex(enc("a")) as Sha256Hex
      world.bucket.set(keyA, { bytes: enc("a"), contentType: null, md5Base64: "" })
      world.faults.commitFailures = 1
      world.faults.commitFailureRetryable = false
      const e = yield* Effect.flip(
        HashCommitter.use((c) => c.commit([{ hash: a.hash, oid: null, sha256: keyA }])).pipe(withWorld(world))
      )
      assert.strictEqual(e._tag, "DatabaseError")
      assert.isFalse(e.retryable)
      assert.isNull(a.sha2)
    }))
})

describe("arbitraries", () => {
  it.effect.prop(
    "buildWorld: distinct contents except duplicates; expectations match the rows",
    [arbTableSpec({ max: 4096, maxRows: 30 })],
    ([spec]) =>
      Effect.sync(() => {
        const { world, expectations } = buildWorld(spec)
        assert.strictEqual(expectations.length, world.rows.length)
        const byHash = new Map<string, Array<(typeof expectations)[number]>>()
        for (const e of expectations) {
          const row = world.rows.find((r) => r.id === e.rowId)!
          byHash.set(row.hash, [...(byHash.get(row.hash) ?? []), e])
          if (e._tag === "Migrate") {
            const bytes = world.largeObjects.get(row.oid!)!
            assert.strictEqual(sha1Hex(bytes), row.hash.toLowerCase())
            assert.strictEqual(sha256Hex(bytes), e.sha256)
          }
        }
        // rows sharing a hash are all meant to migrate, to the same key
        for (const group of byHash.values()) {
          if (group.length > 1) {
            assert.isTrue(group.every((e) => e._tag === "Migrate" || (e._tag === "Fail" && e.reason === "MalformedHash")))
          }
        }
      }),
    { arbitrary: { runs: 200 } }
  )

  it.effect("generates every kind of row, every malformation, empty/NULL/odd mime types, and sizes from 0 B to MiBs", () =>
    Effect.gen(function*() {
      const specs = yield* Arbitrary.sampleEffect(arbTableSpec({ maxRows: 40 }), { count: 300, seed: 42 })
      const rows = specs.flatMap((s) => s.rows)
      const kinds = new Set(rows.map((r) => r.kind))
      for (
        const kind of ["valid", "upperCaseHash", "duplicate", "migrated", "malformedHash", "nullOid", "missingObject", "corrupt", "sizeMismatch"]
      ) {
        assert.isTrue(kinds.has(kind as never), kind)
      }
      const malformations = new Set(rows.flatMap((r) => (r.kind === "malformedHash" ? [r.malformation] : [])))
      assert.strictEqual(malformations.size, 6)
      const mimes = rows.flatMap((r) => ("mimeType" in r ? [r.mimeType] : []))
      assert.include(mimes, null)
      assert.include(mimes, "")
      assert.isTrue(mimes.some((m) => m !== null && m.length >= 200))
      const sizes = rows.flatMap((r) => ("content" in r ? [r.content.size] : []))
      assert.include(sizes, 0)
      assert.isTrue(sizes.some((n) => n > 1024 * 1024))
      assert.isAbove(sizes.filter((n) => n <= 1024).length, sizes.length / 2) // mostly small
    }))
})

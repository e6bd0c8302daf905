import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import { BodyCut, digestBytes, type LoObject, LoReader, type RowFailed, type SourceRow } from "@lo-migrate/core"
import { Context, Effect, Exit, Fiber, Layer, Result, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import fc from "fast-check"
import { createHash } from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as NodeV8 from "node:v8"
import * as NodeVm from "node:vm"
import { PgLoReader } from "../src/index.ts"
import {
  createNiceBinaryTable,
  generateBytes,
  type InsertedBinary,
  insertBinary,
  inThrowawayDatabase,
  seedInvalidDataSet,
  seedOriginalDataSet,
  unusedOid
} from "../src/testing.ts"

const KiB = 1024
const MiB = 1024 * KiB

/** A fresh temp directory for one test, removed afterwards. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pg-lo-reader-test-"))),
  (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
)

/** Every regular file below `dir`. */
const filesIn = (dir: string): ReadonlyArray<string> =>
  NodeFs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => NodePath.join(e.parentPath, e.name))

/** Builds a reader on its own scope, so a test can release the layer and look at what is left. */
const buildReader = (options: PgLoReader.PgLoReaderOptions, partSizeFor?: (size: number) => number | undefined) =>
  Effect.gen(function*() {
    const cut = partSizeFor === undefined ? BodyCut.whole : Layer.succeed(BodyCut, BodyCut.of({ partSizeFor }))
    const context = yield* Layer.build(PgLoReader.layer(options).pipe(Layer.provide([NodeFileSystem.layer, cut])))
    return Context.get(context, LoReader)
  })

const withReader = <A, E, R>(
  options: Partial<PgLoReader.PgLoReaderOptions> & { readonly partSizeFor?: (size: number) => number | undefined },
  f: (reader: LoReader["Service"], dir: string) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const reader = yield* Effect.scoped(Effect.gen(function*() {
      const { partSizeFor, ...rest } = options
      const reader = yield* buildReader({ inMemMax: MiB, chunkSize: 256 * KiB, tempDir: dir, ...rest }, partSizeFor)
      return yield* f(reader, dir)
    }))
    assert.deepStrictEqual(filesIn(dir), [], "the layer's release removes every spill file")
    return reader
  })

const bodyBytes = (o: LoObject): Uint8Array =>
  o.body._tag === "InMemory" ? o.body.bytes : new Uint8Array(NodeFs.readFileSync(o.body.path))

const assertObject = (o: LoObject, expected: InsertedBinary) => {
  assert.strictEqual(o.row.hash, expected.hash)
  assert.strictEqual(o.sha1, expected.digests.sha1)
  assert.strictEqual(o.sha256, expected.digests.sha256)
  // a body digested part by part has no whole MD5 (its parts carry theirs)
  const byParts = o.body._tag === "Spilled" && o.body.parts !== undefined
  assert.strictEqual(o.md5Base64, byParts ? undefined : expected.digests.md5Base64)
  assert.strictEqual(o.size, expected.digests.size)
  const bytes = bodyBytes(o)
  assert.strictEqual(bytes.byteLength, expected.digests.size)
  assert.strictEqual(createHash("sha256").update(bytes).digest("hex"), expected.digests.sha256)
}

const assertRowFailed = (error: RowFailed | { readonly _tag: string }, expected: InsertedBinary, reason: string) => {
  assert.strictEqual(error._tag, "RowFailed")
  const failed = error as RowFailed
  assert.strictEqual(failed.reason._tag, reason)
  assert.strictEqual(failed.hash, expected.hash)
  assert.include(failed.message, JSON.stringify(expected.hash))
}

describe("PgLoReader.read", () => {
  it.live("reads the original data set: small in memory, 10 MiB spilled, 0 bytes", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const data = yield* seedOriginalDataSet
      yield* withReader({}, (reader, dir) =>
        Effect.gen(function*() {
          for (const expected of data.pending) {
            const o = yield* reader.read(expected.row)
            assertObject(o, expected)
            assert.strictEqual(o.body._tag, expected.size > MiB ? "Spilled" : "InMemory")
            if (o.body._tag === "Spilled") {
              assert.isTrue(NodeFs.existsSync(o.body.path))
              assert.isTrue(o.body.path.startsWith(dir))
              assert.strictEqual(NodeFs.statSync(o.body.path).mode & 0o777, 0o600)
            }
            yield* o.release
            yield* o.release // idempotent
            if (o.body._tag === "Spilled") assert.isFalse(NodeFs.existsSync(o.body.path))
          }
          const empty = yield* reader.read(data.empty.row)
          assert.strictEqual(empty.size, 0)
          assert.strictEqual(empty.sha256, digestBytes(new Uint8Array(0)).sha256)
        }))
    }).pipe(inThrowawayDatabase()))

  it.live("reports each invalid row as RowFailed with its hash and the right reason", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const data = yield* seedInvalidDataSet
      yield* withReader({}, (reader) =>
        Effect.gen(function*() {
          for (const bad of data.all) {
            const error = yield* Effect.flip(reader.read(bad.row))
            assertRowFailed(error, bad, bad.expected)
          }
          // the missing object names its oid, the size mismatch the real size
          const missing = yield* Effect.flip(reader.read(data.missingObject.row))
          assert.include(missing.message, String(data.missingObject.oid))
          const wrongSize = yield* Effect.flip(reader.read(data.wrongSize.row))
          assert.include(wrongSize.message, "299")
          assert.include(wrongSize.message, "300")
        }))
    }).pipe(inThrowawayDatabase()))

  it.live("spill threshold: exactly inMemMax stays in memory, one byte more is spilled and removed on release", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const inMemMax = 64 * KiB
      const atLimit = yield* insertBinary({ bytes: { size: inMemMax, seed: 5 }, mimeType: "a/b" })
      const above = yield* insertBinary({ bytes: { size: inMemMax + 1, seed: 6 }, mimeType: "a/b" })
      yield* withReader({ inMemMax, chunkSize: 16 * KiB }, (reader, dir) =>
        Effect.gen(function*() {
          const inMemory = yield* reader.read(atLimit.row)
          assert.strictEqual(inMemory.body._tag, "InMemory")
          assertObject(inMemory, atLimit)
          assert.deepStrictEqual(filesIn(dir), [])

          const spilled = yield* reader.read(above.row)
          assert.strictEqual(spilled.body._tag, "Spilled")
          assertObject(spilled, above)
          assert.deepStrictEqual(filesIn(dir), [spilled.body._tag === "Spilled" ? spilled.body.path : ""])
          yield* spilled.release
          assert.deepStrictEqual(filesIn(dir), [])
        }))
    }).pipe(inThrowawayDatabase()))

  it.live("with partSizeFor, a spilled body carries the digests of its parts, computed in the read pass, and no whole MD5", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const inMemMax = 64 * KiB
      // parts of 100 KiB, read in 16 KiB chunks: part boundaries fall inside chunks
      const partSize = 100 * KiB
      const partSizeFor = (size: number) => (size > partSize ? partSize : undefined)
      const multipart = yield* insertBinary({ bytes: { size: 3 * partSize + 777, seed: 11 }, mimeType: "a/b" })
      const whole = yield* insertBinary({ bytes: { size: partSize, seed: 12 }, mimeType: "a/b" })
      yield* withReader({ inMemMax, chunkSize: 16 * KiB, partSizeFor }, (reader) =>
        Effect.gen(function*() {
          const o = yield* reader.read(multipart.row)
          assertObject(o, multipart)
          assert.strictEqual(o.body._tag, "Spilled")
          const parts = o.body._tag === "Spilled" ? o.body.parts : undefined
          assert.isDefined(parts)
          const bytes = bodyBytes(o)
          const slices = [0, 1, 2, 3].map((i) => bytes.subarray(i * partSize, (i + 1) * partSize))
          assert.strictEqual(slices[3]!.byteLength, 777)
          assert.strictEqual(parts!.partSize, partSize)
          assert.deepStrictEqual(parts!.md5Base64, slices.map((b) => createHash("md5").update(b).digest("base64")))
          assert.deepStrictEqual(parts!.sha256Hex, slices.map((b) => createHash("sha256").update(b).digest("hex")))
          // its parts carry their MD5s: the whole object's, never sent, is not computed
          assert.isUndefined(o.md5Base64)
          yield* o.release
          // an object that goes up whole gets no part digests, and its whole MD5
          const w = yield* reader.read(whole.row)
          assert.strictEqual(w.body._tag, "Spilled")
          assert.isUndefined(w.body._tag === "Spilled" ? w.body.parts : "in memory")
          assert.strictEqual(w.md5Base64, createHash("md5").update(bodyBytes(w)).digest("base64"))
          yield* w.release
        }))
      // without partSizeFor, no part digests at all
      yield* withReader({ inMemMax, chunkSize: 16 * KiB }, (reader) =>
        Effect.gen(function*() {
          const o = yield* reader.read(multipart.row)
          assert.isUndefined(o.body._tag === "Spilled" ? o.body.parts : "in memory")
          assert.strictEqual(o.md5Base64, createHash("md5").update(bodyBytes(o)).digest("base64"))
          yield* o.release
        }))
    }).pipe(inThrowawayDatabase()))

  it.live("a failed spilled read leaves no file (wrong hash, object longer and shorter than the row)", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const wrongHash = yield* insertBinary({
        bytes: { size: 200 * KiB, seed: 1 },
        mimeType: "a/b",
        hash: "1".repeat(40)
      })
      const longer = yield* insertBinary({ bytes: { size: 300 * KiB, seed: 2 }, mimeType: "a/b", size: 100 * KiB })
      const shorter = yield* insertBinary({ bytes: { size: 100 * KiB, seed: 3 }, mimeType: "a/b", size: 250 * KiB })
      const tinyButLong = yield* insertBinary({ bytes: { size: 40 * KiB, seed: 4 }, mimeType: "a/b", size: 10 })
      yield* withReader({ inMemMax: 64 * KiB, chunkSize: 16 * KiB }, (reader, dir) =>
        Effect.gen(function*() {
          assertRowFailed(yield* Effect.flip(reader.read(wrongHash.row)), wrongHash, "Sha1Mismatch")
          assert.deepStrictEqual(filesIn(dir), [])
          const tooLong = yield* Effect.flip(reader.read(longer.row))
          assertRowFailed(tooLong, longer, "SizeMismatch")
          assert.include(tooLong.message, String(300 * KiB), "the real size is reported")
          assert.deepStrictEqual(filesIn(dir), [])
          const tooShort = yield* Effect.flip(reader.read(shorter.row))
          assertRowFailed(tooShort, shorter, "SizeMismatch")
          assert.include(tooShort.message, String(100 * KiB))
          assert.deepStrictEqual(filesIn(dir), [])
          const small = yield* Effect.flip(reader.read(tinyButLong.row))
          assertRowFailed(small, tinyButLong, "SizeMismatch")
          assert.include(small.message, String(40 * KiB))
        }))
    }).pipe(inThrowawayDatabase()))

  it.live("an interrupted spilled read removes its file at once", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const big = yield* insertBinary({ bytes: { size: 24 * MiB, seed: 11 }, mimeType: "a/b" })
      yield* withReader({ inMemMax: 64 * KiB, chunkSize: 64 * KiB }, (reader, dir) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(reader.read(big.row))
          // wait until the spill file exists and has some bytes
          let seen = false
          for (let i = 0; i < 500 && !seen; i++) {
            yield* Effect.sleep("10 millis")
            const files = filesIn(dir)
            seen = files.length === 1 && NodeFs.statSync(files[0]!).size > 0
          }
          assert.isTrue(seen, "the read started spilling")
          const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
          assert.isTrue(Exit.isFailure(exit))
          assert.deepStrictEqual(filesIn(dir), [], "removed by the read itself, before the layer is released")
        }))
    }).pipe(inThrowawayDatabase()))

  it.live("a connection killed mid-read is a retryable DatabaseError, the spill file is removed, the next read works", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      const big = yield* insertBinary({ bytes: { size: 24 * MiB, seed: 13 }, mimeType: "a/b" })
      yield* withReader({ inMemMax: 64 * KiB, chunkSize: 32 * KiB }, (reader, dir) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(Effect.flip(reader.read(big.row)))
          let killed = false
          for (let i = 0; i < 500 && !killed; i++) {
            yield* Effect.sleep("10 millis")
            const rows = yield* sql<{ readonly killed: boolean }>`
              SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'SELECT loread%'`
            killed = rows.some((r) => r.killed)
          }
          assert.isTrue(killed, "found the reading backend")
          const error = yield* Fiber.join(fiber)
          assert.strictEqual(error._tag, "DatabaseError")
          if (error._tag === "DatabaseError") assert.isTrue(error.retryable, error.message)
          assert.deepStrictEqual(filesIn(dir), [])
          const again = yield* reader.read(big.row)
          assertObject(again, big)
          yield* again.release
        }))
    }).pipe(inThrowawayDatabase()), 120_000)

  it.live("the layer's release removes spill files that were never released", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const a = yield* insertBinary({ bytes: { size: 100 * KiB, seed: 1 }, mimeType: "a/b" })
      const b = yield* insertBinary({ bytes: { size: 120 * KiB, seed: 2 }, mimeType: "a/b" })
      const dir = yield* tempDir
      const paths = yield* Effect.scoped(Effect.gen(function*() {
        const reader = yield* buildReader({ inMemMax: 64 * KiB, chunkSize: 32 * KiB, tempDir: dir })
        const oa = yield* reader.read(a.row)
        const ob = yield* reader.read(b.row)
        assert.strictEqual(filesIn(dir).length, 2)
        return [oa, ob].map((o) => (o.body._tag === "Spilled" ? o.body.path : ""))
      }))
      assert.deepStrictEqual(filesIn(dir), [])
      assert.deepStrictEqual(NodeFs.readdirSync(dir), [], "the private subdirectory is gone too")
      for (const p of paths) assert.isFalse(NodeFs.existsSync(p))
    }).pipe(inThrowawayDatabase()))

  it.live("an unusable temp directory fails the spilled read with a non-retryable error, small reads still work", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const small = yield* insertBinary({ bytes: { size: 100, seed: 1 }, mimeType: "a/b" })
      const big = yield* insertBinary({ bytes: { size: 200 * KiB, seed: 2 }, mimeType: "a/b" })
      const dir = yield* tempDir
      const notADirectory = NodePath.join(dir, "file")
      NodeFs.writeFileSync(notADirectory, "x")
      yield* Effect.scoped(Effect.gen(function*() {
        const reader = yield* buildReader({ inMemMax: 64 * KiB, chunkSize: 16 * KiB, tempDir: notADirectory })
        const error = yield* Effect.flip(reader.read(big.row))
        // a local file-system error, not a database one: it names the directory and the errno
        assert.strictEqual(error._tag, "LocalFileError")
        if (error._tag === "LocalFileError") {
          assert.isFalse(error.retryable)
          assert.strictEqual(error.directory, notADirectory)
          assert.strictEqual(error.code, "EEXIST") // mkdir of a path that is a file
          assert.include(error.message, "create a spill directory in")
          assert.notInclude(error.message, "database")
        }
        assertObject(yield* reader.read(small.row), small)
      }))
    }).pipe(inThrowawayDatabase()))

  it.live("a chunk size above the protocol's message limit is lowered, not fatal", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const big = yield* insertBinary({ bytes: { size: 20 * MiB, seed: 12 }, mimeType: "a/b" })
      yield* withReader({ chunkSize: 64 * MiB }, (reader) =>
        Effect.gen(function*() {
          const o = yield* reader.read(big.row)
          assertObject(o, big)
          yield* o.release
        }))
    }).pipe(inThrowawayDatabase()), 120_000)

  it.live("a 100 MiB object is spilled and read with bounded memory", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const huge = yield* insertBinary({ bytes: { size: 100 * MiB, seed: 99 }, mimeType: "video/mp4" })
      // Force full GCs while sampling, so the samples measure what is *retained* (a reader holding the object would
      // retain ~100 MiB), not garbage that has not been collected yet.
      NodeV8.setFlagsFromString("--expose-gc")
      const gc = NodeVm.runInNewContext("gc") as () => void
      const live = () => {
        gc()
        const m = process.memoryUsage()
        return m.heapUsed + m.arrayBuffers
      }
      const baseline = live()
      let peak = 0
      const timer = setInterval(() => {
        peak = Math.max(peak, live() - baseline)
      }, 25)
      const o = yield* withReader({ inMemMax: MiB, chunkSize: 512 * KiB }, (reader) =>
        Effect.gen(function*() {
          const o = yield* reader.read(huge.row).pipe(Effect.ensuring(Effect.sync(() => clearInterval(timer))))
          assert.strictEqual(o.body._tag, "Spilled")
          if (o.body._tag === "Spilled") assert.strictEqual(NodeFs.statSync(o.body.path).size, 100 * MiB)
          assert.strictEqual(o.sha256, huge.digests.sha256)
          assert.strictEqual(o.md5Base64, huge.digests.md5Base64)
          yield* o.release
          return o
        }))
      assert.isAbove(peak, 0, "memory was sampled during the read")
      assert.isBelow(peak, 24 * MiB, `retained memory grew by ${(peak / MiB).toFixed(1)} MiB during the read`)
      void o
    }).pipe(inThrowawayDatabase()), 300_000) // 100 MiB written, read and hashed: ~80 s on a loaded 2-core machine
})

describe("PgLoReader.readBatch", () => {
  it.live("reads many objects in one go; a missing object or bad row fails only its own entry", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const good = yield* seedOriginalDataSet
      const bad = yield* seedInvalidDataSet
      const longer = yield* insertBinary({ bytes: { size: 5000, seed: 3 }, mimeType: "a/b", size: 4000 })
      const rows: Array<InsertedBinary & { readonly expected?: string }> = []
      // interleave good and bad rows
      const goods = [...good.pending]
      const bads = [...bad.all, { ...longer, expected: "SizeMismatch" }]
      while (goods.length > 0 || bads.length > 0) {
        if (goods.length > 0) rows.push(goods.shift()!)
        if (bads.length > 0) rows.push(bads.shift()!)
      }
      yield* withReader({}, (reader) =>
        Effect.gen(function*() {
          const results = yield* reader.readBatch(rows.map((r) => r.row))
          assert.strictEqual(results.length, rows.length)
          for (let i = 0; i < rows.length; i++) {
            const expected = rows[i]!
            const result = results[i]!
            if (expected.expected === undefined) {
              assert.isTrue(Result.isSuccess(result), `row ${i} ${expected.hash}`)
              if (Result.isSuccess(result)) {
                assertObject(result.success, expected)
                yield* result.success.release
              }
            } else {
              assert.isTrue(Result.isFailure(result), `row ${i} ${expected.hash}`)
              if (Result.isFailure(result)) assertRowFailed(result.failure, expected, expected.expected)
            }
          }
          const wrongSize = results[rows.findIndex((r) => r.hash === longer.hash)]!
          if (Result.isFailure(wrongSize)) assert.include(wrongSize.failure.message, "5000")
          assert.deepStrictEqual(yield* reader.readBatch([]), [])
        }))
    }).pipe(inThrowawayDatabase()))

  it.live("bodies kept stay intact while the reader reads more and reuses the memory of released ones", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const inserted: Array<InsertedBinary> = []
      for (let i = 0; i < 24; i++) {
        inserted.push(yield* insertBinary({ bytes: generateBytes({ size: 1 + ((i * 7919) % (200 * KiB)), seed: 100 + i }), mimeType: "a/b" }))
      }
      const first = inserted.slice(0, 8)
      yield* withReader({}, (reader) =>
        Effect.gen(function*() {
          const kept = yield* reader.readBatch(first.map((r) => r.row))
          const objects = kept.map((result, i) => {
            assert.isTrue(Result.isSuccess(result), `row ${i}`)
            return (result as Result.Success<LoObject, RowFailed>).success
          })
          // every other body released: its memory may be reused, the others' must not be touched
          const released = objects.filter((_, i) => i % 2 === 1)
          for (const o of released) yield* o.release
          const releasedBuffers = new Set(released.map((o) => (o.body as { readonly bytes: Uint8Array }).bytes.buffer))
          let reused = 0
          // more batches and whole reads on the same pool after the first batch's bodies were handed out
          for (let round = 0; round < 3; round++) {
            const more = [...(yield* reader.readBatch(inserted.slice(8).map((r) => r.row)))]
            for (const r of inserted.slice(8, 12)) more.push(Result.succeed(yield* reader.read(r.row)))
            for (const result of more) {
              assert.isTrue(Result.isSuccess(result))
              if (Result.isFailure(result)) continue
              if (result.success.body._tag === "InMemory" && releasedBuffers.has(result.success.body.bytes.buffer)) reused++
              yield* result.success.release
            }
          }
          assert.isAbove(reused, 0, "later bodies were copied into the memory of released ones")
          objects.forEach((o, i) => {
            if (i % 2 === 0) assertObject(o, first[i]!)
          })
        }))
    }).pipe(inThrowawayDatabase(1)))

  it.live("a batch of only missing objects fails per row, not the statement", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      // rows that exist, pointing at objects that do not
      const a = yield* insertBinary({ bytes: generateBytes({ size: 1, seed: 1 }), mimeType: "a/b", oid: yield* unusedOid })
      const b = yield* insertBinary({ bytes: generateBytes({ size: 2, seed: 2 }), mimeType: "a/b", oid: yield* unusedOid })
      const rows: Array<SourceRow> = [a.row, b.row]
      yield* withReader({}, (reader) =>
        Effect.gen(function*() {
          const results = yield* reader.readBatch(rows)
          for (const r of results) {
            assert.isTrue(Result.isFailure(r))
            if (Result.isFailure(r)) assert.strictEqual(r.failure.reason._tag, "MissingLargeObject")
          }
        }))
    }).pipe(inThrowawayDatabase()))
})

describe("PgLoReader properties (real database)", () => {
  type Corruption = "none" | "longer" | "shorter" | "wrongHash" | "missing"
  const arbCase = fc.record({
    size: fc.oneof(
      fc.integer({ min: 0, max: 40 * KiB }),
      fc.constantFrom(0, 1, 16 * KiB - 1, 16 * KiB, 16 * KiB + 1, 32 * KiB, 32 * KiB + 1)
    ),
    seed: fc.integer(),
    corruption: fc.constantFrom<Corruption>("none", "none", "longer", "shorter", "wrongHash", "missing"),
    batch: fc.boolean()
  })

  it.live("read and readBatch succeed exactly for intact rows, with the content's digests", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const context = yield* Effect.context<SqlClient.SqlClient>()
      const dir = yield* tempDir
      yield* Effect.scoped(Effect.gen(function*() {
        // inMemMax 32 KiB and 16 KiB chunks put the thresholds inside the generated sizes
        const reader = yield* buildReader({ inMemMax: 32 * KiB, chunkSize: 16 * KiB, tempDir: dir })
        let n = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(arbCase, { minLength: 1, maxLength: 6 }), (cases) =>
              Effect.runPromise(Effect.provideContext(
                Effect.gen(function*() {
                  const inserted: Array<InsertedBinary> = []
                  for (const c of cases) {
                    // unique content per row (the hash is the primary key): the first 4 bytes count up
                    const body = generateBytes({ size: c.size === 0 ? 0 : Math.max(4, c.size), seed: c.seed })
                    if (body.byteLength >= 4) new DataView(body.buffer).setUint32(0, n)
                    n++
                    const size = c.corruption === "longer" ? body.byteLength - 1 : c.corruption === "shorter"
                      ? body.byteLength + 1
                      : undefined
                    const row = yield* insertBinary({
                      bytes: body,
                      mimeType: "a/b",
                      ...(c.size === 0 ? { hash: `${n.toString(16).padStart(8, "0")}${"0".repeat(32)}` } : {}),
                      ...(size !== undefined && size >= 0 ? { size } : {}),
                      ...(c.corruption === "wrongHash" ? { hash: createHash("sha1").update(`x${n}`).digest("hex") } : {}),
                      ...(c.corruption === "missing" ? { oid: yield* unusedOid } : {})
                    })
                    inserted.push(row)
                  }
                  const intact = (r: InsertedBinary) =>
                    r.oid !== null && r.size === r.digests.size && r.hash === r.digests.sha1 &&
                    cases[inserted.indexOf(r)]!.corruption !== "missing"
                  const results = cases[0]!.batch
                    ? yield* reader.readBatch(inserted.map((r) => r.row))
                    : yield* Effect.forEach(inserted, (r) => Effect.result(reader.read(r.row)))
                  for (let i = 0; i < inserted.length; i++) {
                    const r = inserted[i]!
                    const result = results[i]!
                    if (intact(r)) {
                      if (!Result.isSuccess(result)) return false
                      if (result.success.sha256 !== r.digests.sha256) return false
                      if (bodyBytes(result.success).byteLength !== r.digests.size) return false
                      yield* result.success.release
                    } else {
                      if (!Result.isFailure(result)) return false
                      if (result.failure._tag !== "RowFailed" || result.failure.hash !== r.hash) return false
                    }
                  }
                  return filesIn(dir).length === 0
                }),
                context
              ))),
            { numRuns: 12 }
          )
        )
      }))
    }).pipe(inThrowawayDatabase()), 120_000)
})

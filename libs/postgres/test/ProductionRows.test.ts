/**
 * Rows as production databases have them, against the real PostgreSQL: large-object ids above 2^31 in every read
 * path, upper-case hashes, rows deleted by the application (the `lo_manage` trigger unlinks their objects), and a
 * role without the right to read some large objects.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import { BodyCut, type CommitEntry, type DatabaseError, digestBytes, HashCommitter, type LocalFileError, Oid, type LoObject, LoReader, LoSource, Metrics, type RowFailed, type SourceRow } from "@lo-migrate/core"
import { commitOutcomes } from "@lo-migrate/testing"
import { Context, Effect, Layer, Result, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { PgDatabase, PgHashCommitter, PgLoReader, PgLoSource } from "../src/index.ts"
import {
  createNiceBinaryTable,
  generateBytes,
  type InsertedBinary,
  insertBinary,
  installLoManageTrigger,
  inThrowawayDatabase,
  throwawayRole,
  unusedOidAt
} from "../src/testing.ts"

const KiB = 1024

const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pg-production-rows-"))),
  (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
)

/** inMemMax 64 KiB and 16 KiB chunks: small rows go in batches, bigger ones through lo_open/loread to a spill file. */
const readerOptions = (dir: string): PgLoReader.PgLoReaderOptions => ({ inMemMax: 64 * KiB, chunkSize: 16 * KiB, tempDir: dir })

const makeReader = Effect.gen(function*() {
  const dir = yield* tempDir
  const context = yield* Layer.build(PgLoReader.layer(readerOptions(dir)).pipe(Layer.provide([NodeFileSystem.layer, BodyCut.whole])))
  return Context.get(context, LoReader)
})

const assertRead = (o: LoObject, expected: InsertedBinary) => {
  assert.strictEqual(o.row.hash, expected.hash)
  assert.strictEqual(o.row.oid, expected.oid)
  assert.strictEqual(o.sha256, expected.digests.sha256)
  assert.strictEqual(o.size, expected.digests.size)
}

const reasonOf = (r: Result.Result<LoObject, RowFailed | DatabaseError | LocalFileError>): string =>
  Result.isSuccess(r) ? "ok" : r.failure._tag === "RowFailed" ? r.failure.reason._tag : r.failure.message

/** Rows with oids around and above 2^31, and at the top of the range, created with lo_create(id) / lo_from_bytea. */
const seedHighOids = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows: Array<InsertedBinary> = []
  // small ones (batch reads) at chosen ids, mixed with ids the server picks (small, 16384 and up)
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 100, seed: 1 }), mimeType: "a/b", createAt: 3000000000 }))
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 200, seed: 2 }), mimeType: "a/b" }))
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 300, seed: 3 }), mimeType: "a/b", createAt: 4294967295 }))
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 400, seed: 4 }), mimeType: "a/b", createAt: 2147483648 }))
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 500, seed: 5 }), mimeType: "a/b", createAt: 2147483647 }))
  // lo_from_bytea with an explicit id
  const bytes = generateBytes({ size: 600, seed: 6 })
  yield* sql`SELECT lo_from_bytea(3500000000::oid, ${bytes})`
  rows.push(yield* insertBinary({ bytes, mimeType: "a/b", oid: 3500000000 }))
  // spilled, read in many chunks through lo_open/loread
  rows.push(yield* insertBinary({ bytes: { size: 200 * KiB, seed: 7 }, mimeType: "a/b", createAt: 4000000000 }))
  rows.push(yield* insertBinary({ bytes: { size: 150 * KiB, seed: 8 }, mimeType: "a/b" }))
  // a row pointing at a missing id above 2^31
  const missingOid = yield* unusedOidAt(3900000000)
  const missing = yield* insertBinary({ bytes: generateBytes({ size: 10, seed: 9 }), mimeType: "a/b", oid: missingOid })
  return { good: rows, missing }
})

describe("large-object ids above 2^31", () => {
  it.live("the source yields them as numbers, batch and single reads of every kind read them, a missing one is reported", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const { good, missing } = yield* seedHighOids
      assert.deepStrictEqual(good.map((r) => r.oid).filter((o) => o !== null && o > 2147483647).length, 5)
      assert.strictEqual(missing.oid, 3900000000)
      const all = [...good, missing]

      const source = Context.get(yield* Layer.build(PgLoSource.layer({ pageSize: 3 }).pipe(Layer.provide(Metrics.layer))), LoSource)
      const streamed = yield* Stream.runCollect(source.rows)
      const byHash = new Map(streamed.map((r) => [r.hash, r]))
      for (const r of all) {
        assert.strictEqual(byHash.get(r.hash)?.oid, r.oid, `oid of ${r.hash}`)
        assert.isTrue(Schema.is(Oid)(r.oid), `the domain's Oid accepts ${r.oid}`)
      }

      const reader = yield* makeReader
      // one batch mixing ids below and above 2^31 (this failed the whole run before: int4 and int8 in one array)
      const results = yield* reader.readBatch(all.map((r) => r.row))
      for (let i = 0; i < good.length; i++) {
        const r = results[i]!
        assert.isTrue(Result.isSuccess(r), `batch row ${good[i]!.oid}: ${reasonOf(r)}`)
        if (Result.isSuccess(r)) {
          assertRead(r.success, good[i]!)
          yield* r.success.release
        }
      }
      const batchMissing = results[good.length]!
      assert.strictEqual(reasonOf(batchMissing), "MissingLargeObject")
      if (Result.isFailure(batchMissing)) assert.include(batchMissing.failure.message, "large object 3900000000 does not exist")

      // the same rows one by one (lo_get for in-memory ones, lo_open/loread for spilled ones)
      for (const r of good) {
        const o = yield* reader.read(r.row)
        assertRead(o, r)
        assert.strictEqual(o.body._tag, r.size > 64 * KiB ? "Spilled" : "InMemory")
        yield* o.release
      }
      const single = yield* Effect.flip(reader.read(missing.row))
      assert.strictEqual(single._tag, "RowFailed")
      if (single._tag === "RowFailed") {
        assert.strictEqual(single.reason._tag, "MissingLargeObject")
        assert.strictEqual(single.oid, 3900000000)
      }
      // and the spilled path's missing-object check: a big row pointing at a missing high id
      const bigMissing = yield* insertBinary({ bytes: { size: 100 * KiB, seed: 10 }, mimeType: "a/b", oid: yield* unusedOidAt(4294967294) })
      const bigError = yield* Effect.flip(reader.read(bigMissing.row))
      assert.strictEqual(bigError._tag === "RowFailed" ? bigError.reason._tag : bigError._tag, "MissingLargeObject")
    }).pipe(Effect.scoped, inThrowawayDatabase()), 60_000)
})

describe("upper-case hashes", () => {
  it.live("are verified case-insensitively and committed against the stored spelling", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      const small = generateBytes({ size: 123, seed: 21 })
      const upperHash = digestBytes(small).sha1.toUpperCase()
      const upper = yield* insertBinary({ bytes: small, mimeType: "a/b", hash: upperHash })
      const bigBytes = generateBytes({ size: 100 * KiB, seed: 22 })
      const bigSha1 = digestBytes(bigBytes).sha1
      const mixedHash = bigSha1.slice(0, 20).toUpperCase() + bigSha1.slice(20)
      const big = yield* insertBinary({ bytes: bigBytes, mimeType: "a/b", hash: mixedHash })
      assert.strictEqual(upper.hash, upperHash, "stored as given")
      const rows: Array<SourceRow> = [upper.row, big.row]

      const reader = yield* makeReader
      const batch = yield* reader.readBatch(rows)
      assert.deepStrictEqual(batch.map(reasonOf), ["ok", "ok"])
      const objects: Array<LoObject> = []
      for (const r of batch) if (Result.isSuccess(r)) objects.push(r.success)
      assert.strictEqual(objects[0]!.row.hash, upperHash, "the row keeps its stored spelling")
      assert.strictEqual(objects[0]!.sha1, upper.digests.sha1, "the verified SHA-1 is lower case")
      assert.strictEqual(objects[1]!.sha256, big.digests.sha256)
      for (const o of objects) yield* o.release
      // a wrong upper-case hash is still a mismatch, not a malformed hash
      const wrong = yield* insertBinary({ bytes: generateBytes({ size: 5, seed: 23 }), mimeType: "a/b", hash: "ABCDEF".padEnd(40, "0") })
      const wrongError = yield* Effect.flip(reader.read(wrong.row))
      assert.strictEqual(wrongError._tag === "RowFailed" ? wrongError.reason._tag : wrongError._tag, "Sha1Mismatch")

      const committer = Context.get(yield* Layer.build(PgHashCommitter.layer), HashCommitter)
      // the lower-case spelling is not the stored value: no row has it
      const commit = (entries: ReadonlyArray<CommitEntry>) =>
        Effect.map(committer.commit(entries), (results) => commitOutcomes(entries, results))
      const lower = yield* commit([{ hash: upper.digests.sha1, oid: null, sha256: upper.digests.sha256 }])
      assert.deepStrictEqual(lower.vanished, [upper.digests.sha1])
      const result = yield* commit(objects.map((o) => ({ hash: o.row.hash, oid: o.row.oid, sha256: o.sha256 })))
      assert.deepStrictEqual([...result.committed].sort(), [upperHash, mixedHash].sort())
      const stored = yield* sql<{ readonly hash: string; readonly sha2: string }>`
        SELECT hash, sha2 FROM _nice_binary WHERE sha2 IS NOT NULL ORDER BY hash`
      assert.deepStrictEqual(stored.map((r) => [r.hash, r.sha2]).sort(), [
        [upperHash, upper.digests.sha256],
        [mixedHash, big.digests.sha256]
      ].sort())
    }).pipe(Effect.scoped, inThrowawayDatabase()), 60_000)
})

describe("rows the application deletes during the run (lo_manage trigger)", () => {
  it.live("a deleted row whose object is gone is RowVanished; a row still there with a missing object stays a failure", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* installLoManageTrigger
      const deletedSmall = yield* insertBinary({ bytes: generateBytes({ size: 50, seed: 31 }), mimeType: "a/b", createAt: 3100000000 })
      const deletedBig = yield* insertBinary({ bytes: { size: 100 * KiB, seed: 32 }, mimeType: "a/b" })
      const unlinked = yield* insertBinary({ bytes: generateBytes({ size: 60, seed: 33 }), mimeType: "a/b", createAt: 3200000000 })
      const unlinkedBig = yield* insertBinary({ bytes: { size: 90 * KiB, seed: 34 }, mimeType: "a/b" })
      const intact = yield* insertBinary({ bytes: generateBytes({ size: 70, seed: 35 }), mimeType: "a/b" })
      // re-pointed: the application gave the row a new object (the trigger unlinked the old one)
      const repointed = yield* insertBinary({ bytes: generateBytes({ size: 80, seed: 36 }), mimeType: "a/b" })
      // the application deletes two rows: lo_manage unlinks their objects in the same transaction
      yield* sql`DELETE FROM _nice_binary WHERE hash IN (${deletedSmall.hash}, ${deletedBig.hash})`
      // two objects unlinked under rows that stay
      yield* sql`SELECT lo_unlink(data) FROM _nice_binary WHERE hash IN (${unlinked.hash}, ${unlinkedBig.hash})`
      yield* sql`UPDATE _nice_binary SET data = lo_from_bytea(0, lo_get(data)) WHERE hash = ${repointed.hash}`
      const [left] = yield* sql<{ readonly n: bigint }>`
        SELECT count(*) AS n FROM pg_largeobject_metadata WHERE oid IN (3100000000::oid, ${String(deletedBig.oid)}::oid)`
      assert.strictEqual(Number(left!.n), 0, "the trigger unlinked the deleted rows' objects")

      const reader = yield* makeReader
      const rows = [deletedSmall, unlinked, intact, repointed, deletedBig, unlinkedBig]
      const batch = yield* reader.readBatch(rows.map((r) => r.row))
      assert.deepStrictEqual(batch.map(reasonOf), ["RowVanished", "MissingLargeObject", "ok", "RowVanished", "RowVanished", "MissingLargeObject"])
      for (const r of batch) if (Result.isSuccess(r)) yield* r.success.release
      const reasons: Array<string> = []
      for (const r of rows) reasons.push(reasonOf(yield* Effect.result(reader.read(r.row))))
      assert.deepStrictEqual(reasons, ["RowVanished", "MissingLargeObject", "ok", "RowVanished", "RowVanished", "MissingLargeObject"])
      const vanished = yield* Effect.flip(reader.read(deletedBig.row))
      if (vanished._tag === "RowFailed") assert.include(vanished.message, "no longer exists")
    }).pipe(Effect.scoped, inThrowawayDatabase()), 60_000)
})

describe("a role without the right to read a large object", () => {
  it.live("gets a per-row failure naming the hash and the GRANT; the objects it may read are read", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const allowed = yield* insertBinary({ bytes: generateBytes({ size: 40, seed: 41 }), mimeType: "a/b", createAt: 3300000000 })
      const denied = yield* insertBinary({ bytes: generateBytes({ size: 41, seed: 42 }), mimeType: "a/b", createAt: 3300000001 })
      const deniedBig = yield* insertBinary({ bytes: { size: 100 * KiB, seed: 43 }, mimeType: "a/b" })
      const role = yield* throwawayRole((r) => [
        `GRANT SELECT ON _nice_binary TO ${r}`,
        `GRANT SELECT ON LARGE OBJECT ${allowed.oid} TO ${r}`
      ])
      yield* Effect.gen(function*() {
        const reader = yield* makeReader
        const batch = yield* reader.readBatch([allowed.row, denied.row])
        assert.deepStrictEqual(batch.map(reasonOf), ["ok", "LargeObjectNotPermitted"])
        for (const r of batch) if (Result.isSuccess(r)) assertRead(r.success, allowed)
        for (const row of [denied, deniedBig]) {
          const error = yield* Effect.flip(reader.read(row.row))
          assert.strictEqual(error._tag, "RowFailed", error.message)
          assert.include(error.message, row.hash)
          assert.include(error.message, `GRANT SELECT ON LARGE OBJECT ${row.oid} TO ${role.name}`)
          assert.include(error.message, "lo_compat_privileges")
        }
      }).pipe(Effect.scoped, Effect.provide(PgDatabase.layer({ url: role.url, maxConnections: 2 })))
    }).pipe(Effect.scoped, inThrowawayDatabase()), 60_000)
})

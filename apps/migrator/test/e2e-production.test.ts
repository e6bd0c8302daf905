/**
 * End-to-end runs of the CLI on tables as production has them (real PostgreSQL + the real Ceph RADOS Gateway):
 * large-object ids above 2^31 mixed with small ones in every read path, an upper-case hash, a role that owns nothing
 * and has exactly the grants the README lists, and rows the application deletes (with the `lo_manage` trigger)
 * while the run is in progress; each on its own, then all of them at once in one table, with odd mime types,
 * invalid rows and a kill -9 during multipart uploads, until the table is migrated completely.
 */
import { assert, describe, it } from "@effect/vitest"
import { digestBytes } from "@lo-migrate/core"
import { AddSha2ColumnStatement, PendingIndex, PendingIndexStatement } from "@lo-migrate/postgres"
import {
  generateBytes,
  insertBinary,
  installLoManageTrigger,
  minimalGrants,
  seedOriginalDataSet,
  throwawayRole
} from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  assertInvariant,
  assertInvariantExcept,
  assertMigrated,
  committedCount,
  dropSha2Column,
  Env,
  indexCount,
  runCli,
  seedMany,
  settings,
  setUpSchema,
  waitUntil,
  withPassword
} from "./cli.ts"
import {
  deleteRow,
  occurrences,
  oddMimeTypes,
  plainMimeTypes,
  recordedUploadInFlight,
  reportFile,
  seedHighOids,
  seedMultipart,
  spills,
  stateKeys,
  uploads
} from "./production-rows.ts"

const KiB = 1024

/** The application deletes up to `n` of `among` that are not migrated yet (lo_manage unlinks their objects). */
const deletePending = (among: ReadonlyArray<string>, n: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const gone = yield* sql<{ readonly hash: string }>`
      DELETE FROM _nice_binary WHERE hash IN (
        SELECT hash FROM _nice_binary WHERE sha2 IS NULL AND hash = ANY(${among}::text[]) ORDER BY hash DESC LIMIT ${n})
      RETURNING hash`
    return gone.map((r) => r.hash)
  })

describe("lo-migrate CLI on production-like tables (PostgreSQL + Ceph RGW)", () => {
  it.live("oids above 2^31 and an upper-case hash migrate; a missing high oid is reported; fixed, the rerun ends with 0", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const { good, missing } = yield* seedHighOids
      const { env } = yield* settings
      const report = yield* reportFile
      const args = ["--in-mem-max", "64", "--upload-chunk-size", "5120", "--report", report.path]
      const first = yield* runCli(args, env)
      assert.strictEqual(first.code, 1, first.stderr)
      assert.notInclude(first.stderr, "same inferred OID")
      assert.deepStrictEqual(report.lines().map((l) => [l.hash, l.oid, l.reason]), [[missing.hash, 3900000000, "MissingLargeObject"]])
      yield* assertMigrated(good)
      assert.isTrue(good.some((r) => r.hash !== r.hash.toLowerCase()), "an upper-case hash is among the migrated rows")
      // the invalid row fixed (removed), the rerun completes
      yield* deleteRow(missing.hash)
      const second = yield* runCli(args, env)
      assert.strictEqual(second.code, 0, second.stderr)
      assert.deepStrictEqual(report.lines(), [])
      assert.strictEqual((yield* assertInvariant).left, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("a role that owns nothing, with exactly the README's grants: dry run and full migration, exit 0", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const data = yield* seedOriginalDataSet
      const high = yield* insertBinary({ bytes: { size: 200 * KiB, seed: 77 }, mimeType: "a/b", createAt: 3000000001 })
      const role = yield* throwawayRole(minimalGrants)
      const { env } = yield* settings
      const asRole = { ...env, PG_URL: withPassword(Redacted.value(role.url)) }
      const dry = yield* runCli(["--dry-run"], asRole)
      assert.strictEqual(dry.code, 0, dry.stderr)
      assert.match(dry.stdout, /rows left to migrate/)
      const run = yield* runCli(["--in-mem-max", "64", "-i", "1"], asRole)
      assert.strictEqual(run.code, 0, run.stderr)
      assert.include(run.stdout, "migration completed")
      // the optional index: one warning with its cost and the exact statement a DBA can run
      assert.strictEqual(occurrences(run.stderr, PendingIndexStatement), 1, run.stderr)
      assert.include(run.stderr, `role ${role.name} may not create it`)
      assert.include(run.stderr, "first page 1.6 s instead of 4 ms")
      assert.strictEqual(yield* indexCount(PendingIndex), 0)
      yield* assertMigrated([...data.pending, high])
      // (the row seeded as "migrated by an earlier run" has no object in this fresh bucket: not this run's doing)
      assert.strictEqual((yield* assertInvariantExcept([data.migrated.hash])).left, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("least privilege refused before any write: no sha2 column (exit 2, the ALTER TABLE); no right on the objects (per row, the GRANT)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      const rows = [
        yield* insertBinary({ bytes: generateBytes({ size: 10, seed: 1 }), mimeType: "a/b", createAt: 3000000002 }),
        yield* insertBinary({ bytes: { size: 100 * KiB, seed: 2 }, mimeType: "a/b" })
      ]
      yield* dropSha2Column
      const { env } = yield* settings
      const report = yield* reportFile
      // no sha2 column, and the role may not add it
      const noColumn = yield* throwawayRole((r) => [`GRANT SELECT ON _nice_binary, nice_batch_job TO ${r}`])
      const dry = yield* runCli(["--dry-run"], { ...env, PG_URL: withPassword(Redacted.value(noColumn.url)) })
      assert.strictEqual(dry.code, 2, dry.stderr)
      assert.include(dry.stderr, AddSha2ColumnStatement)
      const refused = yield* runCli([], { ...env, PG_URL: withPassword(Redacted.value(noColumn.url)) })
      assert.strictEqual(refused.code, 2, refused.stderr)
      assert.include(refused.stderr, AddSha2ColumnStatement)
      assert.include(refused.stderr, `role ${noColumn.name} may not add it`)
      yield* sql.unsafe(AddSha2ColumnStatement)
      // the column is there, but no UPDATE (sha2): refused as well, with the GRANT
      const noUpdate = yield* runCli([], { ...env, PG_URL: withPassword(Redacted.value(noColumn.url)) })
      assert.strictEqual(noUpdate.code, 2, noUpdate.stderr)
      assert.include(noUpdate.stderr, `GRANT UPDATE (sha2) ON _nice_binary TO ${noColumn.name}`)
      // every right but SELECT on the large objects: each row fails with its hash and the GRANT to run
      const noObjects = yield* throwawayRole((r) => minimalGrants(r).slice(0, 2))
      const denied = yield* runCli(["--in-mem-max", "64", "--report", report.path], {
        ...env,
        PG_URL: withPassword(Redacted.value(noObjects.url))
      })
      assert.strictEqual(denied.code, 1, denied.stderr)
      const lines = report.lines()
      assert.deepStrictEqual(lines.map((l) => l.reason), ["LargeObjectNotPermitted", "LargeObjectNotPermitted"])
      for (const row of rows) {
        const line = lines.find((l) => l.hash === row.hash)
        assert.isDefined(line, row.hash)
        assert.include(line!.detail, `GRANT SELECT ON LARGE OBJECT ${row.oid} TO ${noObjects.name}`)
        assert.include(denied.stderr, row.hash)
      }
      assert.strictEqual(yield* committedCount, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("rows deleted by the application during the run (lo_manage unlinks their objects) vanish: exit 0, counted, not reported", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      yield* installLoManageTrigger
      const rows = yield* seedMany(240)
      const { env } = yield* settings
      const report = yield* reportFile
      let deleted: ReadonlyArray<string> = []
      const args = ["--storer-threads", "1", "--receiver-threads", "1", "--commit-chunk", "5", "--report", report.path]
      const run = yield* runCli(args, env, () =>
        waitUntil("the first commits", Effect.map(committedCount, (n) => n >= 10)).pipe(
          // the whole table is in the run's first page (1000 rows): every row still pending is in flight
          Effect.andThen(sql<{ readonly hash: string }>`
            DELETE FROM _nice_binary WHERE hash IN (
              SELECT hash FROM _nice_binary WHERE sha2 IS NULL ORDER BY hash DESC LIMIT 40)
            RETURNING hash`),
          Effect.tap((gone) => Effect.sync(() => void (deleted = gone.map((r) => r.hash))))
        ))
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(deleted.length, 40, "rows were deleted while they were in flight")
      assert.include(run.stdout, `40 vanished (deleted by the application during the run)`)
      assert.include(run.stdout, "Vanished: 40 rows deleted by the application during the run")
      assert.deepStrictEqual(report.lines(), [])
      const [objects] = yield* sql<{ readonly n: bigint }>`
        SELECT count(*) AS n FROM pg_largeobject_metadata m WHERE NOT EXISTS (SELECT 1 FROM _nice_binary b WHERE b.data = m.oid)`
      assert.strictEqual(Number(objects!.n), 0, "lo_manage unlinked the deleted rows' objects")
      yield* assertMigrated(rows.filter((r) => !deleted.includes(r.hash)))
      assert.strictEqual((yield* assertInvariant).left, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("one production-like table with every case at once, as a least-privilege role, deletions and a kill -9 during it: fixed, exit 0, verify clean", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      // the application's table: primary key on hash, the lo extension's lo_manage trigger; a mime_type column that
      // holds anything (NULL and 10,000 characters among it)
      yield* setUpSchema
      yield* sql`ALTER TABLE _nice_binary ALTER COLUMN mime_type TYPE varchar, ALTER COLUMN mime_type DROP NOT NULL`
      yield* installLoManageTrigger
      // ids above 2^31 in the batch, single, spilled and multipart reads, an upper-case hash, a missing high id
      const high = yield* seedHighOids
      // every odd mime type, the plain ones, NULL; every other one at an id above 2^31; one of them spilled
      const mimes = yield* Effect.forEach([...oddMimeTypes, ...plainMimeTypes, null], (mimeType, i) =>
        insertBinary({ bytes: { size: 100 + i, seed: 700 + i }, mimeType, ...(i % 2 === 0 ? { createAt: 3100000000 + i } : {}) }))
      const oddSpilled = yield* insertBinary({
        bytes: { size: 200 * KiB, seed: 790 },
        mimeType: "application/x-ünïcode\r\n",
        createAt: 4100000000
      })
      // multipart uploads to be killed during (half of them at high ids)
      const big = yield* seedMultipart(6, 900, (i) => (i % 2 === 0 ? 4200000000 + i : undefined))
      // invalid rows: a size that is not the object's, a hash that is not the bytes' SHA-1
      const badSize = yield* insertBinary({ bytes: { size: 3000, seed: 801 }, mimeType: "x/y", size: 2999, createAt: 4290000000 })
      const badSha1Bytes = generateBytes({ size: 500, seed: 802 })
      const badSha1 = yield* insertBinary({
        bytes: badSha1Bytes,
        mimeType: "x/y",
        hash: "0000000042b415eaf546865acf6287fc8ac1f0e5",
        createAt: 2147483649
      })
      // rows the application deletes while the runs are in progress
      const filler = yield* seedMany(120)
      const fillerHashes = filler.map((r) => r.hash)

      const role = yield* throwawayRole(minimalGrants)
      const { env } = yield* settings
      const asRole = { ...env, PG_URL: withPassword(Redacted.value(role.url)) }
      const bucket = yield* TestBucket
      const temp = mkdtempSync(join(tmpdir(), "lo-migrate-e2e-all-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(temp, { recursive: true, force: true })))
      const report = yield* reportFile
      const args = [
        "--in-mem-max", "64", "--upload-chunk-size", "5120", "--storer-threads", "1", "--commit-chunk", "5",
        "--temp-dir", temp, "--report", report.path, "-i", "1"
      ]
      const deleted: Array<string> = []

      // 1. rows deleted during the run, then kill -9 while a recorded multipart upload is in flight
      const killed = yield* runCli(args, asRole, (child) =>
        Effect.gen(function*() {
          yield* waitUntil("the first commits", Effect.map(committedCount, (n) => n >= 5))
          deleted.push(...(yield* deletePending(fillerHashes, 15)))
          yield* waitUntil("a recorded multipart upload in flight and spill files on disk", recordedUploadInFlight(bucket, temp))
          child.kill("SIGKILL")
        }))
      assert.strictEqual(killed.signal, "SIGKILL", killed.stderr)
      assert.isAbove((yield* uploads(bucket.client, bucket.name)).length, 0, "the kill left an incomplete multipart upload")

      // 2. the rerun cleans up, migrates every valid row (more deleted meanwhile) and reports exactly the invalid ones
      const before = yield* committedCount
      let deletedNow: ReadonlyArray<string> = []
      const rerun = yield* runCli(args, asRole, () =>
        waitUntil("the rerun's first commits", Effect.map(committedCount, (n) => n >= before + 2)).pipe(
          Effect.andThen(deletePending(fillerHashes, 15)),
          Effect.tap((gone) => Effect.sync(() => void (deletedNow = gone)))
        ))
      deleted.push(...deletedNow)
      assert.strictEqual(rerun.code, 1, rerun.stderr)
      assert.isAbove(deletedNow.length, 0, "rows were deleted during the rerun")
      assert.include(rerun.stdout, `${deletedNow.length} vanished (deleted by the application during the run)`)
      assert.match(rerun.stderr, /aborted incomplete multipart upload/)
      assert.match(rerun.stderr, /removed 1 spill directory of ended runs/)
      assert.notInclude(rerun.stderr, "SignatureDoesNotMatch")
      assert.notInclude(rerun.stderr, "same inferred OID")
      assert.strictEqual(occurrences(rerun.stderr, PendingIndexStatement), 1, "one warning about the index the role may not build")
      assert.sameDeepMembers(report.lines().map((l) => [l.hash, l.reason]), [
        [high.missing.hash, "MissingLargeObject"],
        [badSize.hash, "SizeMismatch"],
        [badSha1.hash, "Sha1Mismatch"]
      ])

      // 3. the operator fixes them: the lost object restored from a backup (and granted), the size and the hash
      //    corrected; the last run completes
      const missingBytes = generateBytes({ size: high.missing.size, seed: 10 })
      yield* sql`SELECT lo_from_bytea(${String(high.missing.oid)}::oid, ${missingBytes})`
      yield* sql.unsafe(`GRANT SELECT ON LARGE OBJECT ${high.missing.oid} TO ${role.name}`)
      yield* sql`UPDATE _nice_binary SET size = ${badSize.digests.size} WHERE hash = ${badSize.hash}`
      const fixedSha1 = digestBytes(badSha1Bytes).sha1
      yield* sql`UPDATE _nice_binary SET hash = ${fixedSha1} WHERE hash = ${badSha1.hash}`
      const last = yield* runCli(args, asRole)
      assert.strictEqual(last.code, 0, last.stderr)
      assert.include(last.stdout, "migration completed")
      assert.deepStrictEqual(report.lines(), [])

      // every row left has its object: bytes, SHA-256, Content-Type or the metadata holding its mime type
      const remaining = [
        ...high.good, high.missing, ...mimes, oddSpilled, ...big, badSize, { ...badSha1, hash: fixedSha1 },
        ...filler.filter((r) => !deleted.includes(r.hash))
      ]
      yield* assertMigrated(remaining)
      assert.strictEqual((yield* assertInvariant).left, 0)
      const [rows] = yield* sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM _nice_binary`
      assert.strictEqual(Number(rows!.n), remaining.length, "the table holds exactly the rows checked")
      const [orphans] = yield* sql<{ readonly n: bigint }>`
        SELECT count(*) AS n FROM pg_largeobject_metadata m WHERE NOT EXISTS (SELECT 1 FROM _nice_binary b WHERE b.data = m.oid)`
      assert.strictEqual(Number(orphans!.n), 0, "lo_manage unlinked the deleted rows' objects")
      // nothing left behind: no incomplete upload, no ledger object, an empty --temp-dir
      assert.deepStrictEqual(yield* uploads(bucket.client, bucket.name), [])
      assert.deepStrictEqual(yield* stateKeys(bucket.client, bucket.name), [])
      assert.deepStrictEqual(spills(temp), { dirs: 0, files: 0 })
      assert.deepStrictEqual(readdirSync(temp), [])
      // and verify, as the same role, with the bytes and the mime types: clean
      const verified = yield* runCli(["verify", "--deep", "--content-type"], asRole)
      assert.strictEqual(verified.code, 0, verified.stdout + verified.stderr)
      assert.include(verified.stdout, `${remaining.length} rows checked`)
      assert.include(verified.stdout, "every row checked is good")
    }).pipe(Effect.scoped, Effect.provide(Env)), 480_000)
})

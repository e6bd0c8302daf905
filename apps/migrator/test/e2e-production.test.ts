/**
 * End-to-end runs of the CLI on tables as production has them (real PostgreSQL + the real Ceph RADOS Gateway):
 * large-object ids above 2^31 mixed with small ones in every read path, an upper-case hash, a role that owns nothing
 * and has exactly the grants the README lists, and rows the application deletes (with the `lo_manage` trigger)
 * while the run is in progress.
 */
import { assert, describe, it } from "@effect/vitest"
import { AddSha2ColumnStatement, PendingIndex, PendingIndexStatement } from "@lo-migrate/postgres"
import {
  generateBytes,
  type InsertedBinary,
  insertBinary,
  installLoManageTrigger,
  minimalGrants,
  seedOriginalDataSet,
  throwawayRole,
  unusedOidAt
} from "@lo-migrate/postgres/testing"
import { digestBytes } from "@lo-migrate/core"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
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

const KiB = 1024
const MiB = 1024 * KiB

/** A report file in a temp directory removed with the scope; `lines` reads it as JSON lines. */
const reportFile = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "lo-migrate-e2e-prod-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const path = join(dir, "failed.jsonl")
  const lines = () => {
    const text = readFileSync(path, "utf8").trim()
    return text.length === 0 ? [] : text.split("\n").map((l) => JSON.parse(l) as { hash: string; oid: number; reason: string; detail: string })
  }
  return { path, lines }
})

const occurrences = (text: string, part: string) => text.split(part).length - 1

/** Small (batched), in-memory single, spilled and multipart objects at ids above 2^31, mixed with server-picked ones. */
const seedHighOids = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows: Array<InsertedBinary> = []
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 100, seed: 1 }), mimeType: "text/plain", createAt: 3000000000 }))
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 2000, seed: 2 }), mimeType: "text/plain" }))
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 3000, seed: 3 }), mimeType: "image/png", createAt: 2147483648 }))
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 50, seed: 4 }), mimeType: "image/png", createAt: 2147483647 }))
  const fromBytea = generateBytes({ size: 700, seed: 5 })
  yield* sql`SELECT lo_from_bytea(3500000000::oid, ${fromBytea})`
  rows.push(yield* insertBinary({ bytes: fromBytea, mimeType: "a/b", oid: 3500000000 }))
  // above --in-mem-max 64 KiB: spilled; above --upload-chunk-size 5 MiB: multipart
  rows.push(yield* insertBinary({ bytes: { size: 300 * KiB, seed: 6 }, mimeType: "application/pdf", createAt: 4000000000 }))
  rows.push(yield* insertBinary({ bytes: { size: 6 * MiB + 123, seed: 7 }, mimeType: "video/mp4", createAt: 4294967295 }))
  rows.push(yield* insertBinary({ bytes: { size: 40 * KiB, seed: 8 }, mimeType: "a/b", createAt: 3999999999 }))
  // an upper-case hash (40 hex digits): valid, committed under its stored spelling
  const upperBytes = generateBytes({ size: 900, seed: 9 })
  rows.push(yield* insertBinary({ bytes: upperBytes, mimeType: "text/plain", hash: digestBytes(upperBytes).sha1.toUpperCase(), createAt: 3300000000 }))
  const missing = yield* insertBinary({
    bytes: generateBytes({ size: 10, seed: 10 }),
    mimeType: "a/b",
    oid: yield* unusedOidAt(3900000000)
  })
  return { good: rows, missing }
})

const deleteRow = (hash: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`DELETE FROM _nice_binary WHERE hash = ${hash}`
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
})


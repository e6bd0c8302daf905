/**
 * End-to-end: a `SQL_ASCII` database, as legacy applications have them, where `mime_type` or `hash` may hold bytes
 * that are not UTF-8 (Latin-1, say). PostgreSQL refuses to send such a value as UTF-8 text, so one of them used to
 * fail its whole page, at every retry, and stop the run. Now it is that row's failure: reported (naming the row and the bytes) and
 * skipped; every other row is migrated and verifies clean. The CLI runs as a child process against a real
 * PostgreSQL and the real Ceph RADOS Gateway.
 */
import { assert, describe, it } from "@effect/vitest"
import { insertBinary, setMimeTypeBytes, ThrowawayDatabase } from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { assertMigrated, runCli, settings, setUpSchema } from "./cli.ts"
import { reportFile } from "./production-rows.ts"

const SqlAsciiEnv = Layer.mergeAll(ThrowawayDatabase.layerWithClient(4, { encoding: "SQL_ASCII" }), TestBucket.layer)

/** "text/x" and a Latin-1 "ä": not UTF-8. */
const latin1MimeType = Uint8Array.of(0x74, 0x65, 0x78, 0x74, 0x2f, 0x78, 0xe4)

describe("a SQL_ASCII database end to end (PostgreSQL + Ceph RGW)", () => {
  it.live("a mime_type that is not UTF-8: that row reported and skipped, the others migrated; verify names it", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [encoding] = yield* sql<{ readonly e: string }>`SELECT current_setting('server_encoding') AS e`
      assert.strictEqual(encoding!.e, "SQL_ASCII")
      yield* setUpSchema
      // the application's column: any length, NULL allowed
      yield* sql`ALTER TABLE _nice_binary ALTER COLUMN mime_type TYPE varchar, ALTER COLUMN mime_type DROP NOT NULL`
      const mimeTypes = ["text/plain", "text/x-ünïcode", "x/latin1", "\uFEFFtext/plain", "image/png", null, "a/b"]
      const rows = yield* Effect.forEach(
        mimeTypes,
        (mimeType, i) => insertBinary({ bytes: new TextEncoder().encode(`body ${i} `.repeat(1 + i * 50)), mimeType })
      )
      const latin1 = rows[2]!
      yield* setMimeTypeBytes(latin1.hash, latin1MimeType)
      const { env } = yield* settings
      const report = yield* reportFile

      // the bad row's page (here: all rows) reads on
      const run = yield* runCli(["--report", report.path], env)
      assert.strictEqual(run.code, 1, run.stdout + run.stderr)
      assert.include(run.stderr, `row hash="${latin1.hash}"`)
      assert.include(run.stderr, "mime_type is not valid UTF-8 (bytes 746578742f78e4, hex)")
      assert.deepStrictEqual(report.lines().map((l) => [l.hash, l.reason]), [[latin1.hash, "MimeTypeNotUtf8"]])
      const good = rows.filter((r) => r !== latin1)
      yield* assertMigrated(good)
      // the bad row is left as it was: no sha2, its bytes, its large object
      const [left] = yield* sql<{ readonly sha2: string | null; readonly m: Uint8Array; readonly lo: boolean }>`
        SELECT sha2, convert_to(mime_type, 'SQL_ASCII') AS m,
               EXISTS (SELECT 1 FROM pg_largeobject_metadata WHERE oid = data) AS lo
        FROM _nice_binary WHERE hash = ${latin1.hash}`
      assert.deepStrictEqual([left!.sha2, [...left!.m], left!.lo], [null, [...latin1MimeType], true])

      const typed = yield* runCli(["verify", "--content-type"], env)
      assert.strictEqual(typed.code, 0, typed.stdout + typed.stderr)
      assert.include(typed.stdout, "every row checked is good")
      // a migrated row whose mime_type is later rewritten as Latin-1: verify --content-type names it, and reads on
      yield* setMimeTypeBytes(good[0]!.hash, latin1MimeType)
      const changed = yield* runCli(["verify", "--content-type"], env)
      assert.strictEqual(changed.code, 1, changed.stdout + changed.stderr)
      const output = changed.stdout + changed.stderr
      assert.include(output, good[0]!.hash)
      assert.include(output, "mime_type is not valid UTF-8 (bytes 746578742f78e4, hex)")
      assert.include(output, `${good.length} rows checked`)
    }).pipe(Effect.provide(SqlAsciiEnv)), 120_000)

  it.live("a hash that is not UTF-8: that row reported and skipped, the rows after it migrated; verify is clean", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      const rows = yield* Effect.forEach(
        Array.from({ length: 5 }, (_, i) => i),
        (i) => insertBinary({ bytes: new TextEncoder().encode(`body ${i} `.repeat(1 + i * 50)), mimeType: "a/b" })
      )
      // "ab" and a Latin-1 "ä": sorts before the hex hashes of the other rows, so they all come after it
      const bad = rows[3]!
      yield* sql`UPDATE _nice_binary SET hash = convert_from(${Uint8Array.of(0x41, 0x42, 0xe4)}, 'SQL_ASCII')
                 WHERE hash = ${bad.hash}`
      const { env } = yield* settings
      const report = yield* reportFile
      const run = yield* runCli(["--report", report.path], env)
      assert.strictEqual(run.code, 1, run.stdout + run.stderr)
      assert.include(run.stderr, `hash is not valid UTF-8 (bytes 4142e4${"20".repeat(37)}, hex)`)
      assert.deepStrictEqual(report.lines().map((l) => [l.hash.trimEnd(), l.oid, l.reason]), [["AB\uFFFD", bad.oid, "HashNotUtf8"]])
      const [left] = yield* sql<{ readonly sha2: string | null; readonly lo: boolean }>`
        SELECT sha2, EXISTS (SELECT 1 FROM pg_largeobject_metadata WHERE oid = data) AS lo
        FROM _nice_binary WHERE data = ${bad.oid}`
      assert.deepStrictEqual([left!.sha2, left!.lo], [null, true], "the bad row is left as it was")
      const verify = yield* runCli(["verify"], env)
      assert.strictEqual(verify.code, 0, verify.stdout + verify.stderr)
      assert.include(verify.stdout, `${rows.length - 1} rows checked`)
      // the DBA corrects the row: the next run migrates it, and nothing else
      yield* sql`UPDATE _nice_binary SET hash = ${bad.hash} WHERE data = ${bad.oid}`
      const rerun = yield* runCli([], env)
      assert.strictEqual(rerun.code, 0, rerun.stdout + rerun.stderr)
      assert.include(rerun.stdout, "1 objects migrated")
      yield* assertMigrated(rows)
    }).pipe(Effect.provide(SqlAsciiEnv)), 120_000)
})

/**
 * End-to-end: the server settings a production database carries. A DBA's default `statement_timeout` (here 5 ms, on
 * the migrator's role) protects production from slow application queries; it used to cancel the start-up count and
 * stop every run before the first row. lo-migrate's sessions run without one (as pg_dump's do) and bound their short
 * statements themselves (`--pg-statement-timeout`). A DBA's `idle_session_timeout` and
 * `idle_in_transaction_session_timeout` end the pool's connections whenever they wait: the pool opens new ones. The CLI
 * runs as a child process against a real PostgreSQL and the real Ceph RADOS Gateway.
 */
import { DeleteBucketPolicyCommand, ListObjectsV2Command, PutBucketPolicyCommand } from "@aws-sdk/client-s3"
import { BatchJobId, PendingIndex, PgUrl } from "@lo-migrate/postgres"
import { assert, describe, it } from "@effect/vitest"
import {
  createBatchJobTable,
  createNiceBinaryTable,
  generateBytes,
  insertBinary,
  type InsertedBinary,
  lockRowFor,
  minimalGrants,
  openApplicationTransaction,
  PgBouncer,
  ReplicatedCluster,
  serverSocket,
  StandbyServer,
  ThrowawayDatabase,
  throwawayRole
} from "@lo-migrate/postgres/testing"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Redacted, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import {
  assertInvariant,
  assertMigrated,
  dropSha2Column,
  Env,
  hostClockOff,
  indexCount,
  listOpenUploads,
  runCli,
  setBucketQuota,
  settings,
  setUpSchema,
  withPassword
} from "./cli.ts"
import { occurrences } from "./production-rows.ts"

/**
 * `count` rows of `a/b`: first 2 objects above the CLI's 1 MiB in-memory limit (read in a transaction, spilled), then
 * small ones of `smallSize(i)` bytes; contents seeded from `seed`.
 */
const seedWithSpilled = (count: number, smallSize: (i: number) => number, seed: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    (i) =>
      insertBinary({
        bytes: generateBytes({ size: i < 2 ? 3 * 1024 * 1024 + i : smallSize(i), seed: seed + i }),
        mimeType: "a/b"
      })
  )

/**
 * 60 rows (2 of them spilled, read in a transaction) and a PgBouncer in transaction mode in front of their database:
 * enough statements of each kind (reads, spilled reads, commits, pages) to be sent again on another server connection.
 */
const behindPgBouncer = (options: PgBouncer.PgBouncerOptions) =>
  Effect.gen(function*() {
    yield* setUpSchema
    const rows = yield* seedWithSpilled(60, (i) => 500 + i * 211, 700)
    const bouncer = yield* PgBouncer.makeWith(options)
    const { env } = yield* settings
    return { rows, viaBouncer: { ...env, PG_URL: bouncer.url(new URL(env.PG_URL!).pathname.slice(1)) } }
  })

/** `status` and `verify` with `args` exit 0 on the `rows` (60) migrated rows. */
const statusAndVerifyClean = (env: Record<string, string>, args: ReadonlyArray<string>, rows = 60) =>
  Effect.gen(function*() {
    const status = yield* runCli(["status", ...args], env)
    assert.strictEqual(status.code, 0, status.stdout + status.stderr)
    const verify = yield* runCli(["verify", ...args], env)
    assert.strictEqual(verify.code, 0, verify.stdout + verify.stderr)
    assert.include(verify.stdout, `${rows} rows checked`)
  })

/** The dry run and the migration with `env` both refuse with exit 2, saying each of `says`; the bucket stays empty. */
const refusedBeforeUpload = (env: Record<string, string>, says: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { bucket } = yield* settings
    for (const args of [["--dry-run"], []]) {
      const run = yield* runCli(args, env)
      assert.strictEqual(run.code, 2, run.stdout + run.stderr)
      for (const text of says) assert.include(run.stderr, text)
    }
    const listed = yield* Effect.promise(() => bucket.client.send(new ListObjectsV2Command({ Bucket: bucket.name })))
    assert.strictEqual(listed.KeyCount ?? 0, 0, "nothing was uploaded")
  })

describe("server settings end to end (PostgreSQL + Ceph RGW)", () => {
  it.live("on the database host, over its Unix socket in libpq's forms (user@/db?host=DIR, PGHOST, no host at all): migration, status and verify", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedWithSpilled(60, (i) => 500 + i * 211, 900)
      const { directory, path } = yield* serverSocket
      const { env } = yield* settings
      const url = new URL(env.PG_URL!)
      const [user, db] = [url.username, url.pathname.slice(1)]
      // the form psql takes and the URL parser refuses; sslmode=require, which libpq ignores over a socket
      const run = yield* runCli(["--in-mem-max", "1024", "-i", "1"], {
        ...env,
        PG_URL: `postgresql://${user}@/${db}?host=${directory}&sslmode=require`
      })
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      assert.include(run.stdout, `PostgreSQL server:   Unix socket ${path}`)
      assert.include(run.stdout, "plaintext over a Unix socket")
      yield* assertMigrated(rows)
      yield* assertInvariant
      // a host from PGHOST
      const status = yield* runCli(["status"], { ...env, PG_URL: `postgres:///${db}`, PGHOST: directory, PGUSER: user })
      assert.strictEqual(status.code, 0, status.stdout + status.stderr)
      assert.include(status.stdout, "nothing left to migrate")
      // no host at all: libpq's default socket directory (Debian's /var/run/postgresql, or /tmp)
      assert.include(
        PgUrl.defaultSocketDirectories,
        directory,
        `the test server's socket is in ${directory}, where libpq does not look by default`
      )
      const verify = yield* runCli(["verify"], { ...env, PG_URL: `postgresql://${user}@/${db}` })
      assert.strictEqual(verify.code, 0, verify.stdout + verify.stderr)
      assert.include(verify.stdout, "60 rows checked")
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("the application's tables in a schema of their own, found through PGOPTIONS' search_path: migration, status and verify", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      const rows = yield* seedWithSpilled(30, (i) => 300 + i * 577, 2500)
      yield* sql.unsafe("CREATE SCHEMA app")
      yield* sql.unsafe("ALTER TABLE _nice_binary SET SCHEMA app")
      yield* sql.unsafe("ALTER TABLE nice_batch_job SET SCHEMA app")
      const { env } = yield* settings
      // without the search path the table is not found: refused before anything is read
      const lost = yield* runCli(["--report", "/dev/null"], env)
      assert.strictEqual(lost.code, 2, lost.stdout + lost.stderr)
      assert.include(lost.stderr, "nice_batch_job does not exist in the session's search path")
      assert.include(lost.stderr, "PGOPTIONS='-c search_path=SCHEMA'")
      const inApp = { ...env, PGOPTIONS: "-c search_path=app" }
      const run = yield* runCli(["--report", "/dev/null"], inApp)
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      assert.include(run.stdout, "30 objects migrated")
      yield* statusAndVerifyClean(inApp, [], 30)
      const [index] = yield* sql<{ readonly schema: string }>`
        SELECT schemaname AS schema FROM pg_indexes WHERE indexname = ${PendingIndex}`
      assert.strictEqual(index?.schema, "app")
      yield* sql.unsafe("ALTER TABLE app._nice_binary SET SCHEMA public")
      yield* assertMigrated(rows)
      yield* assertInvariant
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("a role whose default statement_timeout is 5 ms: dry run, migration, status and verify all work", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      const rows = yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i),
        (i) => insertBinary({ bytes: generateBytes({ size: 100 + i * 997, seed: 300 + i }), mimeType: "a/b" })
      )
      // 20,000 rows without objects: the start-up count takes longer than 5 ms (they are reported as NULL oid)
      yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data)
                 SELECT md5(i::text) || lpad(to_hex(i), 8, '0'), 1, 'a/b', NULL FROM generate_series(1, 20000) i`
      const role = yield* throwawayRole(minimalGrants)
      yield* sql.unsafe(`ALTER ROLE ${role.name} SET statement_timeout = '5ms'`)
      const { env } = yield* settings
      const asRole = { ...env, PG_URL: withPassword(Redacted.value(role.url)) }

      const dry = yield* runCli(["--dry-run"], asRole)
      assert.strictEqual(dry.code, 0, dry.stdout + dry.stderr)
      assert.include(dry.stdout, "20040 of 20040 rows left to migrate")
      const run = yield* runCli(["--report", "/dev/null"], asRole)
      assert.strictEqual(run.code, 1, run.stdout + run.stderr) // the 20,000 rows without an object
      assert.notInclude(run.stderr, "statement timeout")
      assert.include(run.stdout, "40 objects migrated")
      yield* assertMigrated(rows)
      const status = yield* runCli(["status"], asRole)
      assert.strictEqual(status.code, 1, status.stdout + status.stderr) // rows are left
      assert.include(status.stdout, "20000 rows left to migrate")
      const verify = yield* runCli(["verify"], asRole)
      assert.strictEqual(verify.code, 0, verify.stdout + verify.stderr)
      assert.include(verify.stdout, "40 rows checked")
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("behind PgBouncer (which refuses the startup parameter), a database default statement_timeout of 500 ms and an application's open transaction: the index build is cancelled and said, the run, status and verify work", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const db = yield* ThrowawayDatabase
      yield* setUpSchema
      const rows = yield* seedWithSpilled(40, (i) => 100 + i * 997, 1900)
      yield* sql.unsafe(`ALTER DATABASE ${db.name} SET statement_timeout = '500ms'`)
      // the application keeps a transaction open on the table: CREATE INDEX CONCURRENTLY waits for it until the
      // default cancels it (the count and the other statements do not wait for it)
      yield* openApplicationTransaction
      const bouncer = yield* PgBouncer.make
      const { env } = yield* settings
      const viaBouncer = { ...env, PG_URL: bouncer.url(db.name) }
      const run = yield* runCli(["--report", "/dev/null"], viaBouncer)
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      // cancelled after 500 ms, while the run, or its wait of up to 10 s for the build, goes on
      assert.match(
        run.stderr,
        /going on without the index of rows still to migrate: the server cancelled the build of index _nice_binary_sha2_pending_idx \(.*\[57014\]; the session's statement_timeout is 500ms\)/
      )
      assert.include(run.stdout, "40 objects migrated")
      yield* assertMigrated(rows)
      yield* statusAndVerifyClean(viaBouncer, [], 40)
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("behind PgBouncer with a database default statement_timeout of 500 ms, an application holding a row lock for 3 s: the cancelled commit is retried, exit 0", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const db = yield* ThrowawayDatabase
      yield* setUpSchema
      const rows = yield* seedWithSpilled(40, (i) => 100 + i * 997, 2300)
      yield* sql.unsafe(`ALTER DATABASE ${db.name} SET statement_timeout = '500ms'`)
      const bouncer = yield* PgBouncer.make
      const { env } = yield* settings
      // the application locks one pending row (an UPDATE of its own, say) and keeps the lock for 3 s: the commit
      // batch that records it waits, and the default cancels it (57014) before the lock goes
      yield* lockRowFor(rows[17]!.hash, "3 seconds")
      const run = yield* runCli(["--report", "/dev/null", "--log-format", "line", "-i", "1"], {
        ...env,
        PG_URL: bouncer.url(db.name)
      })
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      const retries = [...run.stdout.matchAll(/retries (\d+)/g)].map((m) => Number(m[1]))
      assert.isAtLeast(Math.max(0, ...retries), 1, run.stdout)
      yield* assertMigrated(rows)
      yield* assertInvariant
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("an application's transaction open on the database: the run does not wait for the index build, which waits for it; the next run builds the index", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedWithSpilled(30, (i) => 100 + i * 997, 2100)
      const { env } = yield* settings
      const blocked = yield* Effect.scoped(Effect.gen(function*() {
        // CREATE INDEX CONCURRENTLY waits for every older transaction of the database: this one stays open
        yield* openApplicationTransaction
        return yield* runCli(["--report", "/dev/null"], env)
      }))
      assert.strictEqual(blocked.code, 0, blocked.stdout + blocked.stderr)
      assert.include(blocked.stdout, "30 objects migrated")
      assert.include(blocked.stderr, "the index of rows still to migrate was not built when the run ended: its build was given up")
      assert.include(blocked.stderr, `DROP INDEX CONCURRENTLY IF EXISTS ${PendingIndex};`)
      assert.notInclude(blocked.stderr, "built the index")
      yield* assertMigrated(rows)
      // status says what the cancelled build left, and how to drop it
      const left = yield* runCli(["status"], env)
      assert.strictEqual(left.code, 0, left.stdout + left.stderr)
      assert.include(left.stdout, `index of pending rows (${PendingIndex}): INVALID, the leftover of a cancelled or killed build`)
      assert.include(left.stdout, `DROP INDEX CONCURRENTLY IF EXISTS ${PendingIndex};`)
      // the application's transaction has ended: the next run builds it (nothing is left to migrate)
      const next = yield* runCli(["--report", "/dev/null"], env)
      assert.strictEqual(next.code, 0, next.stdout + next.stderr)
      assert.include(next.stderr, "built the index of rows still to migrate")
      assert.strictEqual(yield* indexCount(PendingIndex), 1)
      assert.include((yield* runCli(["status"], env)).stdout, `index of pending rows (${PendingIndex}): valid`)
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("a role whose idle sessions are ended after 200 ms (idle_session_timeout, idle_in_transaction_session_timeout): a slow migration completes", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      // 24 small objects and 2 spilled ones
      const rows = yield* seedWithSpilled(26, (i) => 1000 + i * 313, 500)
      const role = yield* throwawayRole(minimalGrants)
      yield* sql.unsafe(`ALTER ROLE ${role.name} SET idle_session_timeout = '200ms'`)
      yield* sql.unsafe(`ALTER ROLE ${role.name} SET idle_in_transaction_session_timeout = '50ms'`)
      const ended = sql<{ readonly n: number }>`
        SELECT coalesce(sessions_fatal, 0)::int AS n FROM pg_stat_database WHERE datname = current_database()`
      const before = (yield* ended)[0]!.n
      const { env } = yield* settings
      const asRole = { ...env, PG_URL: withPassword(Redacted.value(role.url)) }
      // 8 rows a second: the run lasts ~3 s, and the pool's connections wait longer than 200 ms between statements
      const run = yield* runCli(["--max-objects-per-second", "8", "--report", "/dev/null"], asRole)
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      assert.include(run.stdout, "26 objects migrated")
      yield* assertMigrated(rows)
      // the server did end the role's idle sessions meanwhile (its FATAL "terminating connection due to idle-session
      // timeout" counts in sessions_fatal; statistics reach the view within a second or so)
      yield* Effect.sleep("1500 millis")
      yield* sql`SELECT pg_stat_clear_snapshot()`
      const after = (yield* ended)[0]!.n
      assert.isAbove(after, before, "no session was ended by the timeouts: the test proves nothing")
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("a bucket policy that denies PutObject: exit 3 naming the request and both possible rules, fix then rerun; nothing recorded; without it a rerun completes", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedWithSpilled(10, (i) => 700 + i * 401, 1500)
      const { env, bucket } = yield* settings
      // what a bucket's owner sets to keep the bucket read-only: HEAD and GET still pass (the start-up check does)
      const policy = JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:PutObject", Resource: `arn:aws:s3:::${bucket.name}/*` }]
      })
      yield* Effect.promise(() => bucket.client.send(new PutBucketPolicyCommand({ Bucket: bucket.name, Policy: policy })))
      const stopped = yield* runCli(["--report", "/dev/null"], env)
      assert.strictEqual(stopped.code, 3, stopped.stdout + stopped.stderr)
      assert.match(
        stopped.stderr,
        /fatal: S3 PutObject on \S+ failed: AccessDenied \(HTTP 403\): access denied: these credentials may not send this request to this bucket or key, by their user's permissions or by the bucket's policy/
      )
      assert.include(stopped.stderr, "Retrying does not cure this error (it was not retried): fix what it names, then run again")
      assert.notInclude(stopped.stderr, "check the credentials")
      const { committed } = yield* assertInvariant
      assert.strictEqual(committed, 0)
      yield* Effect.promise(() => bucket.client.send(new DeleteBucketPolicyCommand({ Bucket: bucket.name })))
      const rerun = yield* runCli(["--report", "/dev/null"], env)
      assert.strictEqual(rerun.code, 0, rerun.stdout + rerun.stderr)
      yield* assertMigrated(rows)
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("a bucket quota reached mid-run (Ceph's QuotaExceeded): exit 3 naming the quota, nothing lost; once it is raised, a rerun completes", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedWithSpilled(30, (i) => 700 + i * 401, 1300)
      const { env, bucket } = yield* settings
      yield* setBucketQuota(bucket.name, { maxObjects: 10 })
      const stopped = yield* runCli(["--report", "/dev/null", "--commit-chunk", "4"], env)
      assert.strictEqual(stopped.code, 3, stopped.stdout + stopped.stderr)
      assert.match(stopped.stderr, /QuotaExceeded \(HTTP 403\): the bucket's or its owner's quota/)
      // Every recorded row has its object; the gateway checks its quota against counts it updates after each write, so
      // with 32 PUTs in flight more than 10 may get in, but not all
      const { committed, left } = yield* assertInvariant
      assert.strictEqual(committed + left, 30)
      assert.isAtLeast(left, 1)
      yield* setBucketQuota(bucket.name, undefined)
      const rerun = yield* runCli(["--report", "/dev/null"], env)
      assert.strictEqual(rerun.code, 0, rerun.stdout + rerun.stderr)
      yield* assertMigrated(rows)
      yield* statusAndVerifyClean(env, [], 30)
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("a byte quota reached by multipart uploads: exit 3, every refused upload aborted, nothing lost; raised, a rerun completes", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      // 4 objects of 12 MiB, sent in parts of 5 MiB, against a quota of 30 MiB
      const rows = yield* Effect.forEach(
        [0, 1, 2, 3],
        (i) => insertBinary({ bytes: generateBytes({ size: 12 * 1024 * 1024 + i, seed: 1700 + i }), mimeType: "a/b" })
      )
      const { env, bucket } = yield* settings
      yield* setBucketQuota(bucket.name, { maxBytes: 30 * 1024 * 1024 })
      const args = ["--report", "/dev/null", "--upload-chunk-size", "5120"]
      const stopped = yield* runCli(args, env)
      assert.strictEqual(stopped.code, 3, stopped.stdout + stopped.stderr)
      assert.match(stopped.stderr, /QuotaExceeded \(HTTP 403\): the bucket's or its owner's quota/)
      assert.deepStrictEqual(yield* listOpenUploads(bucket.client, bucket.name), [])
      const { committed, left } = yield* assertInvariant
      assert.strictEqual(committed + left, 4)
      assert.isAtLeast(left, 1)
      yield* setBucketQuota(bucket.name, undefined)
      const rerun = yield* runCli(args, env)
      assert.strictEqual(rerun.code, 0, rerun.stdout + rerun.stderr)
      yield* assertMigrated(rows)
      assert.deepStrictEqual(yield* listOpenUploads(bucket.client, bucket.name), [])
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("this host's clock 20 minutes behind the gateway's: the refused first request is retried with the server's time, and the run, status and verify work", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedWithSpilled(12, (i) => 700 + i * 401, 900)
      const { env } = yield* settings
      const skewed = { ...env, ...(yield* hostClockOff(-20)) }
      const run = yield* runCli(["--report", "/dev/null"], skewed)
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      // the start-up check's first request (HeadBucket, a 403 without a body) was refused for its time, and said so
      assert.match(run.stderr, /HeadBucket .*Forbidden \(HTTP 403\): the request was signed at \d{8}T\d{6}Z .* 20 minutes apart/)
      assert.notInclude(run.stderr, "check the credentials")
      assert.include(run.stdout, "12 objects migrated")
      yield* assertMigrated(rows)
      yield* statusAndVerifyClean(skewed, [], 12)
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("behind PgBouncer in transaction mode that accepts statement_timeout: the hint to declare it, then --pg-transaction-pooler works", () =>
    Effect.gen(function*() {
      // a DBA's configuration: the parameter is dropped, so nothing tells lo-migrate that a pooler is there
      const { rows, viaBouncer } = yield* behindPgBouncer({ ignoreStartupParameters: ["extra_float_digits", "statement_timeout"] })
      const undeclared = yield* runCli(["--report", "/dev/null", "--commit-chunk", "5"], viaBouncer)
      assert.strictEqual(undeclared.code, 3, undeclared.stdout + undeclared.stderr)
      assert.include(undeclared.stderr, "does not exist [26000]")
      assert.include(undeclared.stderr, "run again with --pg-transaction-pooler")
      assert.notInclude(undeclared.stderr, "refused the startup parameter")
      yield* assertInvariant // what was committed before it stopped has its object
      const declared = { ...viaBouncer, LO_MIGRATE_PG_TRANSACTION_POOLER: "true" }
      const run = yield* runCli(["--report", "/dev/null", "--commit-chunk", "5"], declared)
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      assert.include(run.stdout, "PostgreSQL pooler:   transaction mode (statements unnamed)")
      yield* assertMigrated(rows)
      yield* statusAndVerifyClean(viaBouncer, ["--pg-transaction-pooler"])
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("behind PgBouncer in transaction mode, where a prepared statement does not outlive its transaction: migration, status and verify work", () =>
    Effect.gen(function*() {
      const { rows, viaBouncer } = yield* behindPgBouncer({})
      const run = yield* runCli(["--report", "/dev/null", "--commit-chunk", "5"], viaBouncer)
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      assert.notInclude(run.stderr, "does not exist")
      // PgBouncer refused statement_timeout: detected, and said once (the run has two pools)
      assert.strictEqual(occurrences(run.stderr, "statements are sent unnamed"), 1, run.stderr)
      assert.include(run.stdout, "60 objects migrated")
      yield* assertMigrated(rows)
      yield* statusAndVerifyClean(viaBouncer, [])
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("a read-only session (the role's default_transaction_read_only): refused with exit 2, nothing uploaded", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      yield* Effect.forEach(
        Array.from({ length: 5 }, (_, i) => i),
        (i) => insertBinary({ bytes: generateBytes({ size: 1000 + i, seed: 400 + i }), mimeType: "a/b" })
      )
      const role = yield* throwawayRole(minimalGrants)
      yield* sql.unsafe(`ALTER ROLE ${role.name} SET default_transaction_read_only = on`)
      const { env } = yield* settings
      yield* refusedBeforeUpload({ ...env, PG_URL: withPassword(Redacted.value(role.url)) }, [
        "the session is read-only (transaction_read_only is on",
        `ALTER ROLE ${role.name} SET default_transaction_read_only = off;`
      ])
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("a publication of every table's UPDATEs, and _nice_binary without a primary key: refused with exit 2, nothing uploaded", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable({ primaryKey: false })
      yield* createBatchJobTable([{ id: BatchJobId, active: false }])
      yield* Effect.forEach(
        Array.from({ length: 5 }, (_, i) => i),
        (i) => insertBinary({ bytes: generateBytes({ size: 1000 + i, seed: 2300 + i }), mimeType: "a/b" })
      )
      // what a change-data-capture tool sets up
      yield* sql.unsafe(`CREATE PUBLICATION cdc FOR ALL TABLES`)
      const { env } = yield* settings
      yield* refusedBeforeUpload(env, [
        "_nice_binary is in publication(s) cdc, which publish UPDATEs, and has no replica identity",
        "ALTER TABLE _nice_binary REPLICA IDENTITY FULL;"
      ])
      yield* sql.unsafe(`ALTER TABLE _nice_binary REPLICA IDENTITY FULL`)
      const run = yield* runCli(["--report", "/dev/null"], env)
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      assert.include(run.stdout, "5 objects migrated")
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("row-level security hiding rows from the migrator's role: refused with exit 2, nothing uploaded; with the policy it names, every row is migrated", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      const rows = yield* seedWithSpilled(8, (i) => 400 + i * 500, 2900)
      const role = yield* throwawayRole(minimalGrants)
      // a multi-tenant application's policy: this role would see the small rows only
      yield* sql.unsafe("ALTER TABLE _nice_binary ENABLE ROW LEVEL SECURITY")
      yield* sql.unsafe(`CREATE POLICY tenant ON _nice_binary TO ${role.name} USING (size < 2000)`)
      const { env } = yield* settings
      const asRole = { ...env, PG_URL: withPassword(Redacted.value(role.url)) }
      const policy = `CREATE POLICY lo_migrate_all_rows ON _nice_binary FOR ALL TO ${role.name} USING (true) WITH CHECK (true);`
      yield* refusedBeforeUpload(asRole, [`row-level security is active on _nice_binary for role ${role.name}`, policy])
      yield* sql.unsafe(policy)
      const run = yield* runCli(["--report", "/dev/null"], asRole)
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      assert.include(run.stdout, "8 objects migrated")
      yield* assertMigrated(rows)
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("row-level security hiding rows from a read-only role: status and verify refuse with exit 2 instead of counting or proving part of the table; with the SELECT policy they name, they see every row", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      const rows = yield* seedWithSpilled(8, (i) => 400 + i * 500, 3100)
      const { env } = yield* settings
      const run = yield* runCli(["--report", "/dev/null"], env)
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      yield* assertMigrated(rows)
      const role = yield* throwawayRole(minimalGrants)
      yield* sql.unsafe("ALTER TABLE _nice_binary ENABLE ROW LEVEL SECURITY")
      yield* sql.unsafe(`CREATE POLICY tenant ON _nice_binary TO ${role.name} USING (size < 2000)`)
      const asRole = { ...env, PG_URL: withPassword(Redacted.value(role.url)) }
      const policy = `CREATE POLICY lo_migrate_read_all_rows ON _nice_binary FOR SELECT TO ${role.name} USING (true);`
      for (const [command, nothing] of [["status", "Nothing was counted."], ["verify", "Nothing was checked."]] as const) {
        const refused = yield* runCli([command], asRole)
        assert.strictEqual(refused.code, 2, refused.stdout + refused.stderr)
        assert.include(refused.stderr, `row-level security is active on _nice_binary for role ${role.name}`)
        assert.include(refused.stderr, policy)
        assert.include(refused.stderr, nothing)
        // no count of the rows the policy shows, not even in a status block
        assert.notMatch(refused.stdout, /rows checked/)
      }
      yield* sql.unsafe(policy)
      const status = yield* runCli(["status"], asRole)
      assert.strictEqual(status.code, 0, status.stdout + status.stderr)
      assert.match(status.stdout, /all\s+8\s+8\s+0/)
      const verify = yield* runCli(["verify"], asRole)
      assert.strictEqual(verify.code, 0, verify.stdout + verify.stderr)
      assert.include(verify.stdout, "8 rows checked")
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("a copy without the large objects (a logical replica, a dump restored without them): refused with exit 2, nothing uploaded or recorded", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      yield* seedWithSpilled(6, (i) => 900 + i * 313, 2700)
      yield* sql`SELECT lo_unlink(oid) FROM pg_largeobject_metadata`
      const { env } = yield* settings
      yield* refusedBeforeUpload(env, [
        "_nice_binary has rows still to migrate that point at large objects, but this database holds no large object at all",
        "Point PG_URL at the database that holds the large objects",
        "Refusing to start: nothing was uploaded"
      ])
      const { committed, left } = yield* assertInvariant
      assert.deepStrictEqual([committed, left], [0, 6])
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("an HA application's URL, a host list (a refused port, a standby, the primary) with target_session_attrs=read-write: migration, status and verify run on the primary", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedWithSpilled(6, (i) => 700 + i * 97, 3300)
      const standby = yield* StandbyServer.make(Effect.void)
      const { env } = yield* settings
      const primary = new URL(env.PG_URL)
      const standbyAt = `127.0.0.1:${new URL(standby.url("postgres")).port}`
      const hosts = ["127.0.0.1:1", standbyAt, primary.host]
      const ha = {
        ...env,
        PG_URL: `postgresql://${primary.username}:${primary.password}@${hosts.join(",")}${primary.pathname}?target_session_attrs=read-write`
      }
      const run = yield* runCli(["--report", "/dev/null"], ha)
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      assert.include(run.stdout, `the first that will do of ${hosts.join(", ")} (target_session_attrs=read-write)`)
      assert.include(run.stdout, "6 objects migrated")
      yield* assertMigrated(rows)
      yield* statusAndVerifyClean(ha, [], 6)
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("a failover during a run, with a host list and target_session_attrs=read-write: the primary goes, the standby is promoted, the old primary comes back read-only; the run goes on on the new primary and ends with exit 0", () =>
    Effect.gen(function*() {
      let rows: ReadonlyArray<InsertedBinary> = []
      const cluster = yield* ReplicatedCluster.make(Effect.gen(function*() {
        yield* setUpSchema
        rows = yield* seedWithSpilled(240, (i) => 700 + i * 97, 5100)
      }))
      const { env } = yield* settings
      const ha = { ...env, PG_URL: `${withPassword(cluster.url(cluster.primaryPort, "postgres")).replace(`:${cluster.primaryPort}/`, `:${cluster.primaryPort},127.0.0.1:${cluster.standbyPort}/`)}?target_session_attrs=read-write` }
      const onServer = (port: number) => PgClient.layer({ url: Redacted.make(cluster.url(port, "postgres")), applicationName: "lo-migrate-tests" })
      const migratedOnPrimary = Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ readonly n: number }>`SELECT count(sha2)::int AS n FROM _nice_binary`).pipe(
          Effect.map(([row]) => row!.n),
          Effect.provide(onServer(cluster.primaryPort)),
          Effect.orDie
        )
      let before = 0
      const run = yield* runCli(["--report", "/dev/null", "--max-objects-per-second", "40"], ha, () =>
        Effect.gen(function*() {
          // a part of the rows recorded on the primary, then Patroni's failover
          before = yield* migratedOnPrimary.pipe(
            Effect.repeat({ until: (n) => n >= 30, schedule: Schedule.spaced("100 millis") }),
            Effect.timeout("60 seconds")
          )
          yield* cluster.failover
          yield* cluster.demoteOldPrimary
        }))
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      assert.isAtLeast(before, 30)
      assert.isBelow(before, 240, "the failover came during the run")
      assert.include(
        run.stdout + run.stderr,
        `127.0.0.1:${cluster.primaryPort} is no longer the host to use (target_session_attrs=read-write); new statements go to 127.0.0.1:${cluster.standbyPort}`
      )
      // everything is on the promoted standby, and in the bucket; status and verify through the same URL agree
      yield* assertMigrated(rows).pipe(Effect.provide(onServer(cluster.standbyPort)))
      yield* statusAndVerifyClean(ha, [], 240)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("PG_URL pointing at a standby: the dry run and the migration refuse with exit 2, nothing uploaded; status reads it", () =>
    Effect.gen(function*() {
      // a replica of a database that was never migrated (no sha2 column) and of one half migrated: 5 rows, 2 recorded
      for (const halfMigrated of [false, true]) {
        const standby = yield* StandbyServer.make(Effect.gen(function*() {
          yield* setUpSchema
          yield* Effect.forEach(
            Array.from({ length: 5 }, (_, i) => i),
            (i) => insertBinary({ bytes: generateBytes({ size: 1000 + i, seed: 450 + i }), mimeType: "a/b" })
          )
          if (halfMigrated) {
            const sql = yield* SqlClient.SqlClient
            yield* sql`UPDATE _nice_binary SET sha2 = repeat('0', 64) WHERE hash IN (SELECT hash FROM _nice_binary ORDER BY hash LIMIT 2)`
          } else {
            yield* dropSha2Column
          }
        }))
        const { env } = yield* settings
        const onStandby = { ...env, PG_URL: withPassword(standby.url("postgres")) }
        yield* refusedBeforeUpload(onStandby, [
          "the server is a standby (pg_is_in_recovery() is true) and cannot record sha2",
          "point PG_URL at the primary"
        ])
        // reading it is fine: status counts the rows on the replica
        const status = yield* runCli(["status"], onStandby)
        assert.strictEqual(status.code, 1, status.stdout + status.stderr)
        assert.include(status.stdout, halfMigrated ? "3 rows left to migrate" : "5 rows left to migrate")
        // an HA application's URL: target_session_attrs=read-write names the standby at once, before any check;
        // status with target_session_attrs=standby reads it
        const port = new URL(standby.url("postgres")).port
        const readWrite = yield* runCli(["--report", "/dev/null"], { ...onStandby, PGTARGETSESSIONATTRS: "read-write" })
        assert.strictEqual(readWrite.code, 2, readWrite.stdout + readWrite.stderr)
        assert.include(
          readWrite.stderr,
          `target_session_attrs=read-write: the server at 127.0.0.1:${port} is a standby (in recovery); point the URL at the primary`
        )
        assert.include(readWrite.stderr, "Refusing to start")
        const onlyStandby = yield* runCli(["status"], { ...onStandby, PG_URL: `${onStandby.PG_URL}?target_session_attrs=standby` })
        assert.strictEqual(onlyStandby.code, 1, onlyStandby.stdout + onlyStandby.stderr)
      }
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)
})

/**
 * The stall guard (`StalledSockets`, --pg-statement-timeout) under TLS, against a real PostgreSQL 15 that accepts TLS
 * only (`TlsServer`: a throwaway cluster of the test's own, self-signed certificate, verified with `sslmode=verify-full`),
 * the fault proxy (tcp) between the pool and it. The pool is built exactly as the readers' and committers' pool
 * (`PgDatabase` with `stallTimeout`); the transaction goes through `withTransaction` and is retried with core's
 * `retrySchedule`, as the committer's is.
 *
 * - A connection frozen mid-transaction, before its `COMMIT` (which cannot be interrupted by a timeout around the
 *   statement): cut by the guard, the transaction retried on a fresh TLS connection, every row updated once.
 * - The same with the `BEGIN` frozen.
 * - A TLS connection kept busy for longer than the stall timeout is not cut (the guard counts the bytes of the
 *   socket that carries them).
 * - `sslmode=require` encrypts without verifying, as in libpq (`PgUrl`); `verify-full` against the system's CAs
 *   (`sslrootcert=system`, without the server's CA) fails the connect, not retryable.
 * - The CLI as operators run it over TLS (`sslmode=verify-full&sslrootcert=system`, the server's CA in
 *   `NODE_EXTRA_CA_CERTS`), against
 *   Ceph RGW, every connection frozen mid-run: exit 0, every row migrated with the right object.
 *
 * The proxy gives up on a frozen connection only after 15 s (the CLI test: 120 s, its time limit): a stall the guard
 * did not cut fails the test, by the error that ended the attempt or by the limit.
 */
import { assert, describe, it } from "@effect/vitest"
import { DatabaseError, retrySchedule } from "@lo-migrate/core"
import { FaultProxy } from "@lo-migrate/faults"
import { mapSqlError, PgDatabase, PgUrl, withTransaction } from "@lo-migrate/postgres"
import { TlsServer } from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Context, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { assertInvariant, assertMigrated, committedCount, runCli, seedMany, setUpSchema, waitUntil, withPassword } from "./cli.ts"

const stallMillis = 1_000
/**
 * How long the proxy holds a frozen connection before it destroys it: far longer than the guard's timeout, short
 * enough that a guard that does not cut (a COMMIT cannot be interrupted otherwise) ends the attempt with the proxy's
 * close, which the test tells from the guard's ETIMEDOUT by its message, instead of hanging the test.
 */
const proxyHoldMillis = 15_000
const rows = 50

/** The rows' sum after `n` committed increments of every row. */
const sumAfter = (n: number) => n * rows

interface Attempt {
  readonly pid: number
  readonly ssl: boolean
}

/** A pool straight to the server (no proxy, no guard), trusting its certificate. */
const adminPool = (server: TlsServer.TlsServerInfo, maxConnections: number) =>
  Layer.build(PgDatabase.layer({
    url: Redacted.make(server.url("postgres", "verify-full")),
    maxConnections,
    tls: { ca: server.ca }
  })).pipe(Effect.map(Context.get(SqlClient.SqlClient)))

/** The server, its table (`id`, `v`), an unguarded admin pool, the proxy, and the guarded pool through the proxy. */
const setUp = Effect.gen(function*() {
  const server = yield* TlsServer.make
  const admin = yield* adminPool(server, 1)
  yield* admin`CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)`
  yield* admin`INSERT INTO t SELECT g, 0 FROM generate_series(1, ${rows}) g`
  const proxy = yield* FaultProxy.make({ targetPort: server.port, protocol: "tcp", maxStallMillis: proxyHoldMillis })
  const url = new URL(server.url("postgres", "verify-full"))
  url.port = String(proxy.port)
  const guarded = yield* Layer.build(PgDatabase.layer({
    url: Redacted.make(url.toString()),
    maxConnections: 1,
    stallTimeout: { millis: stallMillis, describe: "--pg-statement-timeout" },
    tls: { ca: server.ca }
  })).pipe(Effect.map(Context.get(SqlClient.SqlClient)))
  return { admin, guarded, proxy }
})

/** This session's backend pid and whether it is encrypted (`pg_stat_ssl`). */
const session = (sql: SqlClient.SqlClient) =>
  sql<Attempt>`SELECT pid, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`.pipe(
    Effect.map((r) => r[0]!),
    mapSqlError("session")
  )

/**
 * Increments every row in one transaction, retried as the committer's: the attempts' sessions and the errors that
 * made them retry are recorded. `inside` runs after the UPDATE, before the COMMIT.
 */
const incrementAll = (sql: SqlClient.SqlClient, inside: (attempt: number) => Effect.Effect<unknown>) => {
  const attempts: Array<Attempt> = []
  const errors: Array<DatabaseError> = []
  const once = withTransaction(
    sql,
    Effect.gen(function*() {
      attempts.push(yield* session(sql))
      yield* sql`UPDATE t SET v = v + 1`
      yield* inside(attempts.length)
    })
  ).pipe(
    mapSqlError("increment"),
    Effect.tapError((e) => Effect.sync(() => void errors.push(e)))
  )
  return Effect.retry(once, retrySchedule({ budget: "30 seconds", base: "100 millis", cap: "1 second" })).pipe(
    Effect.map(() => ({ attempts, errors }))
  )
}

const sumOf = (sql: SqlClient.SqlClient) =>
  sql<{ readonly s: number }>`SELECT sum(v)::int AS s FROM t`.pipe(
    Effect.map((r) => Number(r[0]!.s))
  )

const guardMessage = /no byte from or to PostgreSQL for \d+ s \(--pg-statement-timeout\)/
const notCut = `the stall guard did not cut the frozen TLS connection within the proxy's ${proxyHoldMillis / 1000} s hold ` +
  "(the attempt ended otherwise)"

describe("the PostgreSQL stall guard under TLS (a PostgreSQL 15 of the test's own, TLS only, behind the fault proxy)", () => {
  it.live("a TLS connection frozen before its COMMIT is cut; the transaction is retried on a fresh TLS connection", () =>
    Effect.gen(function*() {
      const { admin, guarded, proxy } = yield* setUp
      const { attempts, errors } = yield* incrementAll(
        guarded,
        (attempt) => attempt === 1 ? proxy.stallConnections : Effect.void
      )
      assert.strictEqual(errors.length, 1, "one attempt failed")
      assert.instanceOf(errors[0], DatabaseError)
      assert.isTrue(errors[0]!.retryable)
      assert.match(`${errors[0]!.detail} ${String(errors[0]!.cause)}`, guardMessage, notCut)
      assert.strictEqual(attempts.length, 2)
      assert.isTrue(attempts.every((a) => a.ssl), "both attempts ran over TLS")
      assert.notStrictEqual(attempts[0]!.pid, attempts[1]!.pid, "the retry ran on a fresh connection")
      assert.strictEqual((yield* proxy.stats).stalled, 1)
      // the frozen COMMIT never arrived: its transaction rolled back, the retry's committed, every row once
      assert.strictEqual(yield* sumOf(admin), sumAfter(1))
      const [off] = yield* admin<{ readonly n: number }>`SELECT count(*)::int AS n FROM t WHERE v <> 1`
      assert.strictEqual(off!.n, 0)
    }).pipe(Effect.scoped), 60_000)

  it.live("a used TLS connection frozen while idle: the next transaction's BEGIN is cut and retried", () =>
    Effect.gen(function*() {
      const { admin, guarded, proxy } = yield* setUp
      const first = yield* session(guarded)
      assert.isTrue(first.ssl)
      assert.strictEqual(yield* proxy.stallConnections, 1)
      const { attempts, errors } = yield* incrementAll(guarded, () => Effect.void)
      assert.strictEqual(errors.length, 1, "the attempt on the frozen connection failed")
      assert.match(`${errors[0]!.detail} ${String(errors[0]!.cause)}`, guardMessage, notCut)
      assert.strictEqual(attempts.length, 1, "the failed attempt never got past BEGIN")
      assert.isTrue(attempts[0]!.ssl)
      assert.notStrictEqual(attempts[0]!.pid, first.pid)
      assert.strictEqual(yield* sumOf(admin), sumAfter(1))
    }).pipe(Effect.scoped), 60_000)

  it.live("a TLS connection that keeps moving bytes for 3x the stall timeout is not cut", () =>
    Effect.gen(function*() {
      const { admin, guarded } = yield* setUp
      // one transaction of short statements spread over 3 s, one connection: a cut fails it (no retry here)
      const pids = yield* withTransaction(
        guarded,
        Effect.gen(function*() {
          const seen = new Set<number>()
          for (let i = 0; i < 15; i++) {
            seen.add((yield* session(guarded)).pid)
            yield* guarded`UPDATE t SET v = v + 1 WHERE id = ${(i % rows) + 1}`
            yield* Effect.sleep("200 millis")
          }
          return seen
        })
      ).pipe(mapSqlError("busy"))
      assert.strictEqual(pids.size, 1)
      const [sum] = yield* admin<{ readonly s: number }>`SELECT sum(v)::int AS s FROM t`
      assert.strictEqual(sum!.s, 15)
    }).pipe(Effect.scoped), 60_000)
})

describe("PostgreSQL URLs and TLS (libpq's reading of sslmode, through PgUrl as the CLI does)", () => {
  it.live("sslmode=require encrypts without verifying; verify-full without the CA fails at once, not retryable", () =>
    Effect.gen(function*() {
      const server = yield* TlsServer.make
      const pool = (sslmode: "require" | "verify-full") =>
        Effect.gen(function*() {
          // verify-full with the system's CAs (sslrootcert=system), which do not include the self-signed certificate
          const url = Redacted.make(
            sslmode === "require" ? server.url("postgres", sslmode) : `${server.url("postgres", sslmode)}&sslrootcert=system`
          )
          const options = yield* Effect.orDie(PgUrl.resolve(url, PgUrl.environmentOf({ HOME: "/nonexistent" })))
          return yield* Layer.build(PgDatabase.layer({ url, options, maxConnections: 1, connectTimeout: "3 seconds" }))
        })
      const required = Context.get(yield* pool("require"), SqlClient.SqlClient)
      const rows = yield* Effect.orDie(required<{ readonly ssl: boolean }>`
        SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`)
      assert.isTrue(rows[0]?.ssl)
      const error = yield* Effect.flip(pool("verify-full"))
      assert.instanceOf(error, DatabaseError)
      assert.include(error.detail, "self-signed certificate")
      assert.include(error.detail, "DEPTH_ZERO_SELF_SIGNED_CERT")
      assert.include(error.detail, "certificate chain checked against Node's trusted CAs and NODE_EXTRA_CA_CERTS")
      // a certificate that is not trusted is a configuration error, refused at once, not waited out
      assert.isFalse(error.retryable)
    }).pipe(Effect.scoped), 60_000)
})

describe("the CLI over TLS (sslmode=verify-full, sslrootcert=system, NODE_EXTRA_CA_CERTS; PostgreSQL of the test's own + Ceph RGW)", () => {
  it.live("every connection frozen mid-run, --pg-statement-timeout 2: cut, retried on fresh TLS connections, exit 0", () =>
    Effect.gen(function*() {
      const server = yield* TlsServer.make
      const admin = yield* adminPool(server, 4)
      const rows = yield* Effect.andThen(setUpSchema, seedMany(100)).pipe(Effect.provideService(SqlClient.SqlClient, admin))
      const proxy = yield* FaultProxy.make({ targetPort: server.port, protocol: "tcp", maxStallMillis: 120_000 })
      const url = new URL(withPassword(server.url("postgres", "verify-full")))
      url.port = String(proxy.port)
      // the system's CAs (Node's, plus NODE_EXTRA_CA_CERTS); without sslrootcert verify-full wants ~/.postgresql/root.crt
      url.searchParams.set("sslrootcert", "system")
      const bucket = yield* TestBucket
      const env = {
        PG_URL: url.toString(),
        NODE_EXTRA_CA_CERTS: server.caFile,
        S3_URL: bucket.config.endpoint!,
        S3_BUCKET: bucket.name,
        AWS_REGION: bucket.config.region,
        AWS_ACCESS_KEY_ID: Redacted.value(bucket.config.accessKeyId!),
        AWS_SECRET_ACCESS_KEY: Redacted.value(bucket.config.secretAccessKey!)
      }
      const args = ["--storer-threads", "2", "--receiver-threads", "2", "--commit-chunk", "3", "-i", "1", "--pg-statement-timeout", "2"]
      let frozen = 0
      const run = yield* runCli(args, env, () =>
        waitUntil("the first commits", Effect.map(committedCount, (n) => n >= 10)).pipe(
          Effect.andThen(proxy.stallConnections),
          Effect.tap((n) => Effect.sync(() => void (frozen = n))),
          Effect.provideService(SqlClient.SqlClient, admin)
        ))
      assert.strictEqual(run.code, 0, run.stderr)
      assert.isAtLeast(frozen, 2, "open TLS connections (statements in flight among them) were frozen")
      assert.match(run.stdout, /Retries: [1-9]/)
      // (the server's pg_hba.conf rejects every connection without TLS: the run's sessions were all encrypted)
      yield* Effect.all([assertMigrated(rows), Effect.map(assertInvariant, (inv) => assert.strictEqual(inv.left, 0))]).pipe(
        Effect.provideService(SqlClient.SqlClient, admin)
      )
    }).pipe(Effect.scoped, Effect.provide(TestBucket.layer)), 120_000)
})

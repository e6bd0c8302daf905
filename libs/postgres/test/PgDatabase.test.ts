import { assert, describe, it } from "@effect/vitest"
import { DatabaseError } from "@lo-migrate/core"
import { FaultProxy } from "@lo-migrate/faults"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Cause, Context, Effect, Fiber, Layer, Logger, Random, Redacted, Result, Schedule } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "effect/sql"
import {
  AuthenticationError,
  ConnectionError,
  SqlError,
  SqlSyntaxError,
  UnknownError
} from "effect/sql/SqlError"
import { scrubSecrets } from "@lo-migrate/core"
import { describeSqlError, isRetryableSqlError, isTransientSqlState, PgDatabase, PgUrl, toDatabaseError } from "../src/index.ts"
import {
  inThrowawayDatabase,
  PgBouncer,
  ReplicatedCluster,
  serverSocket,
  SilentDrop,
  StandbyServer,
  testAdminUrl,
  ThrowawayDatabase
} from "../src/testing.ts"

const password = "Sup3r-S3cret_pw"

const withPassword = (url: string, pw: string): string => {
  const u = new URL(url)
  u.password = pw
  return u.toString()
}

/** Every rendering of an error a log line or a crash report could contain. */
const renderings = (error: DatabaseError): ReadonlyArray<string> => [
  error.message,
  error.detail,
  String(error),
  JSON.stringify(error),
  Cause.pretty(Cause.fail(error)),
  error.stack ?? "",
  String(error.cause ?? ""),
  JSON.stringify(error.cause ?? null)
]

const connectFailure = (url: string) =>
  Effect.flip(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return yield* Effect.orDie(sql`SELECT 1`)
    }).pipe(Effect.provide(PgDatabase.layer({ url: Redacted.make(url), maxConnections: 2, connectTimeout: "3 seconds" })))
  )

/** A primary and a streaming standby of it with a table `t`, and the host list of both with `target_session_attrs`. */
const clusterWithTable = (attrs: string) =>
  Effect.gen(function*() {
    const cluster = yield* ReplicatedCluster.make(
      Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.asVoid(sql`CREATE TABLE t (n int)`))
    )
    const url = Redacted.make(cluster.hostListUrl("postgres", `sslmode=disable&target_session_attrs=${attrs}`))
    const options = yield* Effect.orDie(PgUrl.resolve(url, PgUrl.environmentOf({ HOME: "/nonexistent" })))
    return { cluster, url, options }
  })

/** Inserts `n` into `t`: the port of the server that took it. */
const insertInto = (sql: SqlClient.SqlClient, n: number) =>
  sql<{ readonly port: number }>`INSERT INTO t VALUES (${n}) RETURNING inet_server_port() AS port`.pipe(
    Effect.map(([row]) => row!.port),
    Effect.mapError((e) => toDatabaseError("insert", e))
  )

describe("PgDatabase", () => {
  it.live("connects, and sizes the pool as asked", () =>
    Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ readonly db: string; readonly app: string }>`
        SELECT current_database() AS db, current_setting('application_name') AS app`
      assert.strictEqual(rows[0]?.db, db.name)
      assert.strictEqual(rows[0]?.app, "lo-migrate")
      // 3 connections in parallel are possible with maxConnections 3, a 4th statement waits
      const busy = yield* Effect.all(
        Array.from({ length: 3 }, () => sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid, pg_sleep(0.2)`),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(new Set(busy.map((r) => r[0]?.pid)).size, 3)
    }).pipe(inThrowawayDatabase(3)))

  it.live("a refused connection is a retryable DatabaseError without the password", () =>
    Effect.gen(function*() {
      const error = yield* connectFailure(withPassword("postgres://postgres@127.0.0.1:1/postgres", password))
      assert.instanceOf(error, DatabaseError)
      assert.isTrue(error.retryable)
      assert.include(error.detail, "ECONNREFUSED")
      for (const text of renderings(error)) assert.notInclude(text, password)
    }))

  it.live("a missing database is not retryable, and the password is absent", () =>
    Effect.gen(function*() {
      const url = withPassword(testAdminUrl(), password).replace(/\/[^/?]*(\?|$)/, "/lo_migrate_no_such_db$1")
      const error = yield* connectFailure(url)
      assert.isFalse(error.retryable)
      assert.include(error.detail, "3D000")
      for (const text of renderings(error)) assert.notInclude(text, password)
    }))

  it.live("a malformed URL does not echo the URL or the password", () =>
    Effect.gen(function*() {
      const error = yield* connectFailure(`postgres://postgres:${password}@[bad-host/db`)
      assert.isFalse(error.retryable)
      for (const text of renderings(error)) assert.notInclude(text, password)
    }))

  it.live("an unknown host is not retryable and the password is absent", () =>
    Effect.gen(function*() {
      const error = yield* connectFailure(`postgres://postgres:${password}@no-such-host.invalid:5432/db`)
      assert.isFalse(error.retryable)
      for (const text of renderings(error)) assert.notInclude(text, password)
    }))

  it.live("over the server's Unix socket (postgresql://user@/db?host=DIR, sslmode=require): no TLS, the stall guard on it", () =>
    Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      const { directory } = yield* serverSocket
      const user = new URL(testAdminUrl()).username
      // libpq's form with an empty host, which the URL parser refuses; sslmode=require, which libpq ignores there
      const url = Redacted.make(`postgresql://${user}@/${db.name}?host=${directory}&sslmode=require`)
      const options = yield* Effect.orDie(PgUrl.resolve(url, PgUrl.environmentOf({ HOME: "/nonexistent" })))
      const viaSocket = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* Effect.orDie(sql<{ readonly addr: string | null; readonly ssl: boolean; readonly db: string }>`
          SELECT inet_client_addr() AS addr, current_database() AS db,
                 coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS ssl`)
        // a statement that sends nothing back for longer than the stall timeout is cut: the guard is on this socket
        const cut = yield* Effect.flip(sql`SELECT pg_sleep(2)`)
        return { row, cut }
      }).pipe(Effect.provide(PgDatabase.layer({
        url,
        options,
        maxConnections: 1,
        stallTimeout: { millis: 500, describe: "stall test" }
      })))
      assert.deepStrictEqual(viaSocket.row, { addr: null, ssl: false, db: db.name })
      assert.isTrue(isRetryableSqlError(viaSocket.cut), String(viaSocket.cut))
      assert.match(describeSqlError(viaSocket.cut), /no byte from or to PostgreSQL for \d s \(stall test\)/)
    }).pipe(inThrowawayDatabase(1)))

  it.live("TCP keepalive on the pool's connections, with or without the stall guard, at the URL's keepalives_idle (60 s by default); keepalives=0: none (read off the kernel with ss)", () =>
    Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      const base = new URL(testAdminUrl())
      base.pathname = `/${db.name}`
      /** The kernel's timer on the pool's one connection: `keepalive,<seconds left>`, or none. */
      const timerOf = (query: string, guarded: boolean) =>
        Effect.gen(function*() {
          const url = Redacted.make(`${base.toString()}${base.search === "" ? "?" : "&"}${query}`)
          const options = yield* Effect.orDie(PgUrl.resolve(url, PgUrl.environmentOf({ HOME: "/nonexistent" })))
          return yield* Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const [row] = yield* Effect.orDie(sql<{ readonly port: number }>`SELECT inet_client_port() AS port`)
            const line = yield* Effect.sync(() =>
              execFileSync("ss", ["-tnoH", "state", "established", `( sport = :${row!.port} )`]).toString()
            )
            assert.include(line, `:${row!.port}`, "ss lists the pool's connection")
            const timer = /timer:\((\w+),([\d.]+)(ms|sec|min)/.exec(line)
            return timer === null ? undefined : {
              kind: timer[1],
              seconds: Number(timer[2]) * (timer[3] === "ms" ? 0.001 : timer[3] === "min" ? 60 : 1)
            }
          }).pipe(Effect.provide(PgDatabase.layer({
            url,
            options,
            maxConnections: 1,
            ...(guarded ? { stallTimeout: { millis: 10_000, describe: "keepalive test" } } : {})
          })))
        })
      for (const guarded of [false, true]) {
        const byDefault = yield* timerOf("sslmode=disable", guarded)
        assert.strictEqual(byDefault?.kind, "keepalive", `guarded: ${guarded}`)
        assert.isTrue(byDefault!.seconds > 45 && byDefault!.seconds <= 60, `default idle 60 s: ${byDefault!.seconds} s left`)
        const idle15 = yield* timerOf("sslmode=disable&keepalives_idle=15", guarded)
        assert.strictEqual(idle15?.kind, "keepalive")
        assert.isTrue(idle15!.seconds > 5 && idle15!.seconds <= 15, `keepalives_idle=15: ${idle15!.seconds} s left`)
        assert.isUndefined(yield* timerOf("sslmode=disable&keepalives=0", guarded), `keepalives=0, guarded: ${guarded}`)
      }
    }).pipe(inThrowawayDatabase(1)))

  it.live("a flow dropped silently under a long statement (a load balancer that forgot it): keepalive ends the connection within seconds, retryable; with keepalives=0 the statement waits on", () =>
    Effect.gen(function*() {
      const shared = new URL(testAdminUrl())
      const serverPort = shared.port === "" ? 5432 : Number(shared.port)
      /** A pool through a forwarder of its own, waiting on a 40 s statement: the forwarder's port, and the wait. */
      const waiting = (query: string) =>
        Effect.gen(function*() {
          const { port } = yield* FaultProxy.make({ targetPort: serverPort, targetHost: shared.hostname, protocol: "tcp" })
          const url = Redacted.make(`postgresql://${shared.username}@127.0.0.1:${port}/postgres?sslmode=disable&${query}`)
          const options = yield* Effect.orDie(PgUrl.resolve(url, PgUrl.environmentOf({ HOME: "/nonexistent" })))
          const context = yield* Layer.build(PgDatabase.layer({ url, options, maxConnections: 1, connectTimeout: "2 seconds" }))
          const sql = Context.get(context, SqlClient.SqlClient)
          yield* Effect.orDie(sql`SELECT 1`)
          const wait = yield* Effect.forkScoped(
            sql`SELECT pg_sleep(40)`.pipe(Effect.mapError((e) => toDatabaseError("read", e)), Effect.flip)
          )
          return { port, wait }
        })
      const probed = yield* waiting("keepalives_idle=1")
      const unprobed = yield* waiting("keepalives=0")
      yield* Effect.sleep("300 millis")
      yield* SilentDrop.dropFlows(probed.port)
      yield* SilentDrop.dropFlows(unprobed.port)
      // idle 1 s, then libuv's 10 probes 1 s apart, unanswered: the kernel gives up on the connection
      const error = yield* Fiber.join(probed.wait).pipe(Effect.timeout("30 seconds"), Effect.orDie)
      assert.isTrue(error.retryable, error.message)
      assert.include(error.message, "ETIMEDOUT")
      assert.isUndefined(unprobed.wait.pollUnsafe(), "without keepalive nothing notices: the statement still waits")
    }).pipe(Effect.scoped), 60_000)

  it.live("target_session_attrs is a condition on the one server: a standby refused for read-write and primary, accepted for standby and read-only; the primary the other way round", () =>
    Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      const standby = yield* StandbyServer.make(Effect.void)
      /** Connects with `attrs` (in the URL, or as PGTARGETSESSIONATTRS) and runs one query. */
      const attempt = (url: string, attrs: string, viaEnv = false) =>
        Effect.gen(function*() {
          const full = Redacted.make(viaEnv ? url : `${url}${url.includes("?") ? "&" : "?"}target_session_attrs=${attrs}`)
          const env = { HOME: "/nonexistent", ...(viaEnv ? { PGTARGETSESSIONATTRS: attrs } : {}) }
          const options = yield* Effect.orDie(PgUrl.resolve(full, PgUrl.environmentOf(env)))
          return yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1`).pipe(
            Effect.provide(PgDatabase.layer({ url: full, options, maxConnections: 1 })),
            Effect.result
          )
        })
      const onStandby = standby.url("postgres")
      const standbyPort = new URL(onStandby).port
      for (const attrs of ["read-write", "primary"]) {
        const refused = yield* attempt(onStandby, attrs)
        assert.isTrue(Result.isFailure(refused), attrs)
        const error = (refused as Result.Failure<unknown, DatabaseError>).failure
        assert.instanceOf(error, DatabaseError)
        assert.isFalse(error.retryable, "the URL names the wrong server")
        assert.include(error.message, `target_session_attrs=${attrs}: the server at 127.0.0.1:${standbyPort} is a standby (in recovery); point the URL at the primary`)
      }
      assert.isTrue(Result.isFailure(yield* attempt(onStandby, "primary", true)), "PGTARGETSESSIONATTRS is read")
      for (const attrs of ["standby", "read-only", "any", "prefer-standby"]) {
        assert.isTrue(Result.isSuccess(yield* attempt(onStandby, attrs)), attrs)
      }
      const onPrimary = Redacted.value(db.url)
      for (const attrs of ["read-write", "primary", "any", "prefer-standby"]) {
        assert.isTrue(Result.isSuccess(yield* attempt(onPrimary, attrs)), attrs)
      }
      const notStandby = yield* attempt(onPrimary, "standby")
      assert.isTrue(Result.isFailure(notStandby))
      assert.include(
        (notStandby as Result.Failure<unknown, DatabaseError>).failure.message,
        "is a primary that accepts writes; point the URL at a standby"
      )
    }).pipe(inThrowawayDatabase(1)), 120_000)

  it.live("a host list: the first host that accepts the connection and meets target_session_attrs, as libpq chooses; when none does, one error naming each", () =>
    Effect.gen(function*() {
      const standby = yield* StandbyServer.make(Effect.void)
      const standbyAt = `127.0.0.1:${new URL(standby.url("postgres")).port}`
      const shared = new URL(testAdminUrl())
      const primaryAt = `${shared.hostname}:${shared.port === "" ? "5432" : shared.port}`
      const nothingAt = "127.0.0.1:1" // a refused port
      /** The port of the server a pool of `hosts` with `attrs` reached, or its error. */
      const reached = (hosts: ReadonlyArray<string>, attrs: string) =>
        Effect.gen(function*() {
          const url = Redacted.make(`postgresql://${shared.username}@${hosts.join(",")}/postgres?sslmode=disable&target_session_attrs=${attrs}`)
          const options = yield* Effect.orDie(PgUrl.resolve(url, PgUrl.environmentOf({ HOME: "/nonexistent" })))
          return yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
            Effect.orDie(sql<{ readonly port: number }>`SELECT inet_server_port() AS port`)).pipe(
            Effect.map(([row]) => `127.0.0.1:${row!.port}`),
            Effect.provide(PgDatabase.layer({ url, options, maxConnections: 1 })),
            Effect.result
          )
        })
      const at = (result: Result.Result<string, DatabaseError>) => Result.isSuccess(result) ? result.success : result.failure.message
      assert.strictEqual(at(yield* reached([standbyAt, primaryAt], "read-write")), primaryAt, "past the standby")
      assert.strictEqual(at(yield* reached([standbyAt, primaryAt], "primary")), primaryAt)
      assert.strictEqual(at(yield* reached([standbyAt, primaryAt], "any")), standbyAt, "any: the first that answers")
      assert.strictEqual(at(yield* reached([primaryAt, standbyAt], "standby")), standbyAt)
      assert.strictEqual(at(yield* reached([nothingAt, primaryAt], "any")), primaryAt, "past a refused port")
      assert.strictEqual(at(yield* reached([primaryAt, standbyAt], "prefer-standby")), standbyAt, "a standby first")
      assert.strictEqual(at(yield* reached([nothingAt, primaryAt], "prefer-standby")), primaryAt, "else any")
      const none = yield* reached([standbyAt, nothingAt], "read-write")
      assert.isTrue(Result.isFailure(none))
      const error = (none as Result.Failure<string, DatabaseError>).failure
      assert.include(error.message, "none of the 2 hosts would do (target_session_attrs=read-write)")
      assert.include(error.message, `${standbyAt}: target_session_attrs=read-write: the server at ${standbyAt} is a standby (in recovery)`)
      assert.include(error.message, `${nothingAt}: `)
      assert.isTrue(error.retryable, "a refused host may come back or be promoted: retried within the budget")
      // the standby's pool, which connected but failed the check, is let go at once, not kept for the run
      const sessionsOnStandby = Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'lo-migrate'`).pipe(
          Effect.map(([row]) => row!.n),
          Effect.provide(PgClient.layer({ url: Redacted.make(standby.url("postgres")), applicationName: "lo-migrate-tests" })),
          Effect.orDie
        )
      const haUrl = Redacted.make(`postgresql://${shared.username}@${standbyAt},${primaryAt}/postgres?sslmode=disable&target_session_attrs=read-write`)
      const haOptions = yield* Effect.orDie(PgUrl.resolve(haUrl, PgUrl.environmentOf({ HOME: "/nonexistent" })))
      const left = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.andThen(
          Effect.orDie(sql`SELECT 1`),
          sessionsOnStandby.pipe(Effect.repeat({ until: (n) => n === 0, schedule: Schedule.spaced("100 millis"), times: 30 }))
        )).pipe(Effect.provide(PgDatabase.layer({ url: haUrl, options: haOptions, maxConnections: 1 })))
      assert.strictEqual(left, 0, "no session of lo-migrate's left on the standby while the pool of the primary is in use")
      const onlyStandby = yield* reached([standbyAt], "read-write")
      assert.isFalse(Result.isFailure(onlyStandby) && onlyStandby.failure.retryable, "one host that is the wrong kind is not waited for")
    }), 120_000)

  it.live("load_balance_hosts=random: each pool tries the hosts in a random order, so pools of one URL spread over them; without it, the first host always", () =>
    Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      const { directory, port } = yield* serverSocket
      const user = new URL(testAdminUrl()).username
      // one server reached two ways, told apart by the server: over TCP (inet_client_addr set) and its Unix socket
      const hostList = `host=127.0.0.1,${directory}&port=${port}&sslmode=disable`
      /** How many of 24 pools of `query` reached the first host (TCP). */
      const firstOf24 = (query: string) =>
        Effect.gen(function*() {
          const url = Redacted.make(`postgresql://${user}@/${db.name}?${hostList}${query}`)
          const options = yield* Effect.orDie(PgUrl.resolve(url, PgUrl.environmentOf({ HOME: "/nonexistent" })))
          let tcp = 0
          for (let i = 0; i < 24; i++) {
            const [row] = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
              Effect.orDie(sql<{ readonly tcp: boolean }>`SELECT inet_client_addr() IS NOT NULL AS tcp`)).pipe(
              Effect.provide(PgDatabase.layer({ url, options, maxConnections: 1 }))
            )
            if (row!.tcp) tcp++
          }
          return tcp
        })
      assert.strictEqual(yield* firstOf24(""), 24, "in the URL's order")
      assert.strictEqual(yield* firstOf24("&load_balance_hosts=disable"), 24)
      // a fixed seed: the same orders on every run (with a fair shuffle, all 24 alike would be 1 in 8 million)
      const spread = yield* firstOf24("&load_balance_hosts=random").pipe(Random.withSeed(16))
      assert.isAbove(spread, 0)
      assert.isBelow(spread, 24)
    }).pipe(inThrowawayDatabase(1)), 60_000)

  it.live("a host list follows a failover: with the old primary back as a standby, the next choice skips it for the promoted standby", () =>
    Effect.gen(function*() {
      const { cluster, url, options } = yield* clusterWithTable("read-write")
      const warnings: Array<string> = []
      const collect = Logger.make((options) => void warnings.push(String(options.message)))
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const insert = (n: number) => insertInto(sql, n)
        assert.strictEqual(yield* insert(1), cluster.primaryPort, "the primary, the first host")
        // Patroni's failover: the primary goes, the standby is promoted, the old primary comes back read-only
        yield* cluster.failover
        yield* cluster.demoteOldPrimary
        // the pool's connection died with the old primary: that try fails, retryable
        const lost = yield* Effect.flip(insert(2))
        assert.isTrue(lost.retryable, lost.message)
        assert.strictEqual(yield* insert(2), cluster.standbyPort, "the next try chose again: the promoted standby")
        assert.strictEqual(yield* insert(3), cluster.standbyPort)
        const [count] = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM t`.pipe(Effect.orDie)
        assert.strictEqual(count!.n, 3, "the row committed before the failover reached the standby")
      }).pipe(
        Effect.provide(PgDatabase.layer({ url, options, maxConnections: 2 })),
        Effect.provide(Logger.layer([collect]))
      )
      assert.isTrue(
        warnings.some((w) =>
          w.includes(`127.0.0.1:${cluster.primaryPort} is no longer the host to use`) &&
          w.includes(`new statements go to 127.0.0.1:${cluster.standbyPort}`)
        ),
        warnings.join("\n")
      )
    }), 180_000)

  it.live("a host list rides out a failover: a statement held across it fails retryably; while no host will do, a retryable error naming each; then the promoted standby", () =>
    Effect.gen(function*() {
      const { cluster, url, options } = yield* clusterWithTable("primary")
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const insert = (n: number) => insertInto(sql, n)
        assert.strictEqual(yield* insert(1), cluster.primaryPort)
        // a long read holds one of the pool's connections across the failover
        const held = yield* Effect.forkChild(Effect.result(sql`SELECT pg_sleep(60)`))
        yield* Effect.sleep("300 millis")
        yield* cluster.stopPrimary
        const lost = yield* Fiber.await(held)
        assert.isTrue(lost._tag === "Success" && Result.isFailure(lost.value), "the held statement died with the primary")
        // the old primary is gone, the standby not yet promoted: no host will do, for now
        const none = yield* Effect.flip(insert(2))
        assert.isTrue(none.retryable, none.message)
        assert.include(none.message, "none of the 2 hosts would do (target_session_attrs=primary)")
        assert.include(none.message, `127.0.0.1:${cluster.primaryPort}: `)
        assert.include(none.message, `127.0.0.1:${cluster.standbyPort}: target_session_attrs=primary: the server at 127.0.0.1:${cluster.standbyPort} is a standby (in recovery)`)
        yield* cluster.promoteStandby
        assert.strictEqual(yield* insert(3), cluster.standbyPort)
        const [count] = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM t`.pipe(Effect.orDie)
        assert.strictEqual(count!.n, 2, "row 1 from before the failover, and row 3")
      }).pipe(Effect.provide(PgDatabase.layer({ url, options, maxConnections: 2 })))
    }), 180_000)

  it.live("a socket directory where no server listens: a retryable DatabaseError naming the socket", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "lo-migrate-nosock-"))
      const error = yield* connectFailure(`postgres://postgres:${password}@/postgres?host=${dir}`).pipe(
        Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      )
      assert.instanceOf(error, DatabaseError)
      assert.isTrue(error.retryable, error.detail)
      assert.include(error.detail, "ENOENT")
      assert.include(error.detail, join(dir, ".s.PGSQL.5432"))
      for (const text of renderings(error)) assert.notInclude(text, password)
    }))

  it.live("a connection terminated by the server (57P01) surfaces as retryable", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* sql.reserve
        const [me] = yield* conn.execute("SELECT pg_backend_pid() AS pid", [], undefined)
        const pid = (me as { readonly pid: number }).pid
        yield* sql`SELECT pg_terminate_backend(${pid})`
        return yield* Effect.exit(conn.execute("SELECT 1", [], undefined))
      }))
      assert.isTrue(exit._tag === "Failure")
      const error = Cause.squash(exit._tag === "Failure" ? exit.cause : Cause.empty)
      const mapped = toDatabaseError("query", error)
      assert.isTrue(mapped.retryable, mapped.detail)
      // and the pool recovers with a fresh connection
      const rows = yield* sql<{ readonly x: number }>`SELECT 1 AS x`
      assert.strictEqual(rows[0]?.x, 1)
    }).pipe(inThrowawayDatabase(2)))
})

describe("retry classification", () => {
  const server = (code: string, message = `server ${code}`) =>
    new SqlError({
      reason: new UnknownError({ cause: Object.assign(new Error(message), { code }), message: "x", operation: "q" })
    })

  it("transient SQLSTATEs are retryable, others are not", () => {
    const transient = ["08006", "08001", "08P01", "57P01", "57P02", "57P03", "40001", "40P01", "53300", "55P03"]
    // the DBA's session timeouts: idle_in_transaction_session_timeout, idle_session_timeout; a statement cancelled by
    // the server's statement_timeout or a DBA
    for (const code of [...transient, "25P03", "57P05", "57014"]) {
      assert.isTrue(isTransientSqlState(code), code)
      assert.isTrue(isRetryableSqlError(server(code)), code)
    }
    for (const code of ["42P01", "42703", "23505", "22P02", "3D000", "28P01", "XX000", "53100", "25P02", "57P04"]) {
      assert.isFalse(isTransientSqlState(code), code)
      assert.isFalse(isRetryableSqlError(server(code)), code)
    }
    // not even "tuple concurrently updated" (two sessions changing the same catalog row): the schema steps that raced
    // on it run under the schema lock now (SchemaLock.test.ts), so it is an internal error like any other
    assert.isFalse(isRetryableSqlError(server("XX000", "tuple concurrently updated")))
  })

  it("socket errors: refused/reset/timeout are retryable, unknown host and config errors are not", () => {
    const socket = (code: string, operation = "connect") =>
      new SqlError({
        reason: new ConnectionError({ cause: Object.assign(new Error(code), { code }), message: "m", operation })
      })
    for (const code of ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "EAI_AGAIN"]) {
      assert.isTrue(isRetryableSqlError(socket(code)), code)
    }
    assert.isFalse(isRetryableSqlError(socket("ENOTFOUND")))
    const config = new SqlError({
      reason: new ConnectionError({
        cause: new Error("Invalid connection URL"),
        message: "PgConnection: Invalid connection URL",
        operation: "connect"
      })
    })
    assert.isFalse(isRetryableSqlError(config))
    const lost = new SqlError({
      reason: new ConnectionError({ cause: new Error("Connection closed"), message: "closed", operation: "query" })
    })
    assert.isTrue(isRetryableSqlError(lost))
    const auth = new SqlError({ reason: new AuthenticationError({ cause: new Error("no"), operation: "connect" }) })
    assert.isFalse(isRetryableSqlError(auth))
    const syntax = new SqlError({ reason: new SqlSyntaxError({ cause: new Error("no"), operation: "q" }) })
    assert.isFalse(isRetryableSqlError(syntax))
  })

  it("scrubSecrets removes raw and percent-encoded forms", () => {
    const text = "postgres://u:p%40ss@h/db failed for p@ss and p%40ss"
    const out = scrubSecrets(text, ["postgres://u:p%40ss@h/db", "p%40ss"])
    assert.notInclude(out, "p@ss")
    assert.notInclude(out, "p%40ss")
    assert.include(out, "failed for")
  })
})




describe("PgDatabase: the server's statement_timeout", () => {
  it("none for lo-migrate's sessions unless the URL's options set one", () => {
    assert.deepStrictEqual(PgDatabase.sessionParameters("postgres://u@h/db"), { statement_timeout: "0" })
    assert.deepStrictEqual(
      PgDatabase.sessionParameters("postgres://u@h/db?options=-c%20search_path%3Dapp"),
      { statement_timeout: "0" }
    )
    assert.deepStrictEqual(
      PgDatabase.sessionParameters("postgres://u@h/db?options=-c%20statement_timeout%3D5min"),
      {}
    )
  })

  it.live("PGOPTIONS (libpq's server options from the environment) reach the server; the URL's options win over it", () =>
    Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      const settings = (url: string, env: Record<string, string>) =>
        Effect.gen(function*() {
          const options = yield* Effect.orDie(PgUrl.resolve(Redacted.make(url), PgUrl.environmentOf({ HOME: "/nonexistent", ...env })))
          return yield* Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const [row] = yield* Effect.orDie(sql<{ readonly path: string; readonly timeout: string }>`
              SELECT current_setting('search_path') AS path, current_setting('statement_timeout') AS timeout`)
            return row
          }).pipe(Effect.provide(PgDatabase.layer({ url: Redacted.make(url), options, maxConnections: 1 })))
        })
      const url = Redacted.value(db.url)
      assert.deepStrictEqual(yield* settings(url, { PGOPTIONS: "-c search_path=app" }), { path: "app", timeout: "0" })
      assert.deepStrictEqual(
        yield* settings(url, { PGOPTIONS: "-c search_path=app -c statement_timeout=5min" }),
        { path: "app", timeout: "5min" }
      )
      const withOptions = `${url}${url.includes("?") ? "&" : "?"}options=-c%20search_path%3Durl`
      assert.deepStrictEqual(yield* settings(withOptions, { PGOPTIONS: "-c search_path=app" }), { path: "url", timeout: "0" })
    }).pipe(inThrowawayDatabase(1)))

  it.live("a database default of 100 ms does not cancel a long statement; the URL's own timeout does", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const db = yield* ThrowawayDatabase
      yield* sql.unsafe(`ALTER DATABASE ${db.name} SET statement_timeout = '100ms'`)
      // a new pool: its sessions start after the ALTER (the database default applies to them)
      const sleep = (url: string) =>
        Effect.gen(function*() {
          const pool = yield* SqlClient.SqlClient
          const [setting] = yield* pool<{ readonly statement_timeout: string }>`SHOW statement_timeout`
          const slept = yield* Effect.result(pool`SELECT pg_sleep(0.3)`)
          return { setting: setting!.statement_timeout, slept: slept._tag }
        }).pipe(Effect.provide(PgDatabase.layer({ url: Redacted.make(url), maxConnections: 1 })))
      const url = Redacted.value(db.url)
      assert.deepStrictEqual(yield* sleep(url), { setting: "0", slept: "Success" })
      const withOwn = `${url}?options=${encodeURIComponent("-c statement_timeout=50ms")}`
      assert.deepStrictEqual(yield* sleep(withOwn), { setting: "50ms", slept: "Failure" })
    }).pipe(inThrowawayDatabase()))

  it.live("behind PgBouncer, which refuses the startup parameter: connects without it and warns", () =>
    Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      const bouncer = yield* PgBouncer.make
      const warnings: Array<string> = []
      const collect = Logger.make((options) => void warnings.push(String(options.message)))
      const [row] = yield* Effect.gen(function*() {
        const pool = yield* SqlClient.SqlClient
        return yield* pool<{ readonly x: number }>`SELECT 1 AS x`
      }).pipe(
        Effect.provide(PgDatabase.layer({ url: Redacted.make(bouncer.url(db.name)), maxConnections: 1 })),
        Effect.provide(Logger.layer([collect]))
      )
      assert.strictEqual(row!.x, 1)
      assert.strictEqual(warnings.length, 1, warnings.join("\n"))
      assert.include(warnings[0], "refused the startup parameter statement_timeout=0")
      assert.include(warnings[0], "unsupported startup parameter: statement_timeout")
      // directly, without PgBouncer: no warning
      warnings.length = 0
      yield* Effect.gen(function*() {
        const pool = yield* SqlClient.SqlClient
        return yield* pool`SELECT 1`
      }).pipe(
        Effect.provide(PgDatabase.layer({ url: db.url, maxConnections: 1 })),
        Effect.provide(Logger.layer([collect]))
      )
      assert.deepStrictEqual(warnings, [])
    }).pipe(Effect.scoped, inThrowawayDatabase()))

  it.live("behind PgBouncer that drops statement_timeout (ignore_startup_parameters): the default that applies is named", () =>
    Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`ALTER DATABASE "${db.name}" SET statement_timeout = '250ms'`)
      const bouncer = yield* PgBouncer.makeWith({ ignoreStartupParameters: ["statement_timeout"] })
      const warnings: Array<string> = []
      const collect = Logger.make((options) => void warnings.push(String(options.message)))
      const setting = (url: string) =>
        Effect.gen(function*() {
          const pool = yield* SqlClient.SqlClient
          const [row] = yield* pool<{ readonly t: string }>`SELECT current_setting('statement_timeout') AS t`
          return row!.t
        }).pipe(
          Effect.provide(PgDatabase.layer({ url: Redacted.make(url), maxConnections: 1 })),
          Effect.provide(Logger.layer([collect]))
        )
      assert.strictEqual(yield* setting(bouncer.url(db.name)), "250ms")
      assert.strictEqual(warnings.length, 1, warnings.join("\n"))
      assert.include(warnings[0], "statement_timeout is 250ms in lo-migrate's sessions although they asked for 0")
      // directly: the startup parameter works, nothing to say
      warnings.length = 0
      assert.strictEqual(yield* setting(Redacted.value(db.url)), "0")
      assert.deepStrictEqual(warnings, [])
    }).pipe(Effect.scoped, inThrowawayDatabase()))
})

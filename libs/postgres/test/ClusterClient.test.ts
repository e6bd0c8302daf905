import { assert, describe, it } from "@effect/vitest"
import type { DatabaseError } from "@lo-migrate/core"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Logger, Redacted } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { SqlClient } from "effect/sql"
import { ClusterClient, toDatabaseError } from "../src/index.ts"
import { StandbyServer, ThrowawayDatabase } from "../src/testing.ts"

/**
 * `ClusterClient` with a choice of the test's own: the hosts a failover would give, in the order it gives them, so
 * each sign of a failover can be staged on a real server. (`PgDatabase.test.ts` fails over a real cluster.)
 */
const chooser = (servers: ReadonlyArray<{ readonly url: string; readonly server: string }>) => {
  const chosen: Array<string> = []
  const choose = Effect.gen(function*() {
    const next = servers[Math.min(chosen.length, servers.length - 1)]!
    chosen.push(next.server)
    const client = yield* PgClient.make({ url: Redacted.make(next.url), maxConnections: 2, applicationName: "lo-migrate-tests" })
    return { client, server: next.server }
  }).pipe(Effect.orDie)
  return { choose, chosen }
}

const writeTo = (sql: SqlClient.SqlClient) =>
  sql<{ readonly port: number }>`INSERT INTO t VALUES (1) RETURNING inet_server_port() AS port`.pipe(
    Effect.map(([row]) => row!.port),
    Effect.mapError((e) => toDatabaseError("insert", e))
  )

describe("ClusterClient", () => {
  it.live("a server chosen as the primary that refuses a write as read-only (25006): retryable, naming it, and the next statement chooses again", () =>
    Effect.gen(function*() {
      const standby = yield* StandbyServer.make(
        Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.asVoid(sql`CREATE TABLE t (n int)`))
      )
      const db = yield* ThrowawayDatabase
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE t (n int)`).pipe(
        Effect.provide(PgClient.layer({ url: db.url, applicationName: "lo-migrate-tests" })),
        Effect.orDie
      )
      const primaryPort = Number(new URL(Redacted.value(db.url)).port || "5432")
      const standbyPort = Number(new URL(standby.url("postgres")).port)
      // the first choice is the old primary, demoted meanwhile (the standby); the next, the new primary
      const { choose, chosen } = chooser([
        { url: standby.url("postgres"), server: "old-primary" },
        { url: Redacted.value(db.url), server: "new-primary" }
      ])
      const warnings: Array<string> = []
      yield* Effect.gen(function*() {
        const sql = yield* ClusterClient.make(choose, "read-write")
        // a read is fine on the demoted server: no sign of a failover
        const [read] = yield* Effect.orDie(sql<{ readonly port: number }>`SELECT inet_server_port() AS port`)
        assert.strictEqual(read!.port, standbyPort)
        const refused: DatabaseError = yield* Effect.flip(writeTo(sql))
        assert.isTrue(refused.retryable, refused.message)
        assert.include(
          refused.message,
          "the server at old-primary refused a write as read-only (25006) although it was chosen for " +
            "target_session_attrs=read-write: a failover demoted it"
        )
        assert.deepStrictEqual(chosen, ["old-primary"], "chosen again only when a statement needs a pool")
        assert.strictEqual(yield* writeTo(sql), primaryPort)
        assert.deepStrictEqual(chosen, ["old-primary", "new-primary"])
        // in a transaction too, and the pool stays
        const inTransaction = yield* sql.withTransaction(writeTo(sql))
        assert.strictEqual(inTransaction, primaryPort)
        assert.deepStrictEqual(chosen, ["old-primary", "new-primary"])
      }).pipe(
        Effect.scoped,
        Effect.provide(Reactivity.layer),
        Effect.provide(Logger.layer([Logger.make((o) => void warnings.push(String(o.message)))]))
      )
      assert.deepStrictEqual(warnings, [
        "PostgreSQL: old-primary is no longer the host to use (target_session_attrs=read-write); new statements go to new-primary"
      ])
    }).pipe(Effect.provide(ThrowawayDatabase.layer)), 120_000)

  it.live("under target_session_attrs=any a read-only refusal is an ordinary error, and the pool stays", () =>
    Effect.gen(function*() {
      const standby = yield* StandbyServer.make(
        Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.asVoid(sql`CREATE TABLE t (n int)`))
      )
      const { choose, chosen } = chooser([{ url: standby.url("postgres"), server: "standby" }])
      yield* Effect.gen(function*() {
        const sql = yield* ClusterClient.make(choose, "any")
        for (let i = 0; i < 2; i++) {
          const refused = yield* Effect.flip(writeTo(sql))
          assert.isFalse(refused.retryable, refused.message)
          assert.include(refused.message, "25006")
        }
        assert.deepStrictEqual(chosen, ["standby"])
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
    }), 120_000)

  it.live("a connection the server ends (57P01) is a sign: the next statement chooses again, and keeps the pool when the same server is chosen", () =>
    Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      const { choose, chosen } = chooser([{ url: Redacted.value(db.url), server: "primary" }])
      const warnings: Array<string> = []
      yield* Effect.gen(function*() {
        const sql = yield* ClusterClient.make(choose, "read-write")
        const [me] = yield* Effect.orDie(sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`)
        const ended = yield* Effect.flip(
          sql`SELECT pg_terminate_backend(pg_backend_pid())`.pipe(Effect.mapError((e) => toDatabaseError("read", e)))
        )
        assert.isTrue(ended.retryable, ended.message)
        const [again] = yield* Effect.orDie(sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`)
        assert.notStrictEqual(again!.pid, me!.pid)
        assert.deepStrictEqual(chosen, ["primary", "primary"], "chosen again after the sign")
        yield* Effect.orDie(sql`SELECT 1`)
        assert.deepStrictEqual(chosen, ["primary", "primary"], "once")
      }).pipe(
        Effect.scoped,
        Effect.provide(Reactivity.layer),
        Effect.provide(Logger.layer([Logger.make((o) => void warnings.push(String(o.message)))]))
      )
      assert.deepStrictEqual(warnings, [], "the same server: no switch")
    }).pipe(Effect.provide(ThrowawayDatabase.layer)), 60_000)
})

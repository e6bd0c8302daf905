/**
 * verify's count of the migrated rows under a database's default `statement_timeout` (a pooler refused or dropped
 * lo-migrate's startup parameter): it runs to the end (`LongStatement.ts` of @lo-migrate/postgres).
 */
import { assert, describe, it } from "@effect/vitest"
import { Metrics, RetryPolicy } from "@lo-migrate/core"
import { sqlStateOf } from "@lo-migrate/postgres"
import {
  createNiceBinaryTable,
  inThrowawayDatabase,
  ThrowawayDatabase,
  withSessionDefaults
} from "@lo-migrate/postgres/testing"
import { Effect, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { countMigrated, migratedRows } from "../src/index.ts"

describe("verify's count under a database's default statement_timeout", () => {
  it.live("counts and streams 200,000 migrated rows under a 1 ms default", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const db = yield* ThrowawayDatabase
      yield* createNiceBinaryTable()
      yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data, sha2)
                 SELECT md5(i::text) || lpad(to_hex(i), 8, '0'), 1, 'a/b', NULL, md5(i::text) || md5(i::text)
                 FROM generate_series(1, 200000) i`
      yield* sql.unsafe(`ALTER DATABASE ${db.name} SET statement_timeout = '1ms'`)
      yield* Effect.gen(function*() {
        const bare = yield* SqlClient.SqlClient
        const control = yield* Effect.flip(bare`SELECT count(*) FROM _nice_binary WHERE sha2 IS NOT NULL`)
        assert.strictEqual(sqlStateOf(control), "57014", "the count finished within 1 ms: the test proves nothing")
        assert.strictEqual(yield* countMigrated({}), 200_000)
        // and the stream of rows, read to its end (with a pause, as a merge waiting for the listing makes)
        const control2 = yield* Effect.flip(Stream.runCount(bare`SELECT hash FROM _nice_binary ORDER BY sha2`.stream))
        assert.strictEqual(sqlStateOf(control2), "57014", "the read finished within 1 ms: the test proves nothing")
        let seen = 0
        const streamed = yield* migratedRows({}).pipe(
          Stream.tap(() => (++seen === 1000 ? Effect.sleep("20 millis") : Effect.void)),
          Stream.runCount
        )
        assert.strictEqual(streamed, 200_000)
        // the connection went back to the pool outside any transaction (asked on a session without the default)
        const [state] = yield* sql<{ readonly open: number }>`
          SELECT count(*)::int AS open FROM pg_stat_activity
          WHERE datname = current_database() AND state LIKE 'idle in transaction%'`
        assert.strictEqual(state?.open, 0)
      }).pipe(withSessionDefaults)
    }).pipe(inThrowawayDatabase(), Effect.provide(Metrics.layer)))
})

describe("verify's rows when the connection is lost under the read", () => {
  /** 300,000 migrated rows, each sha2 shared by 3 of them (so a resumption can land inside a group). */
  const seed = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* createNiceBinaryTable()
    yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data, sha2)
               SELECT md5(i::text) || lpad(to_hex(i), 8, '0'), 1, 'a/b', NULL, md5((i / 3)::text) || md5((i / 3)::text)
               FROM generate_series(1, 300000) i`
  })
  /** Ends the backends that stream verify's rows, but those in `ended` (asked on another connection of the pool). */
  const terminateTheRead = (ended: ReadonlyArray<number>) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql<{ readonly pid: number; readonly ended: boolean }>`
        SELECT pid, pg_terminate_backend(pid) AS ended FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
          AND ltrim(query, E' \\n') LIKE 'SELECT hash, rtrim(sha2) AS sha2%' AND NOT (pid = ANY (${ended}::int[]))`).pipe(
        Effect.map((rows) => rows.filter((r) => r.ended).map((r) => r.pid))
      )
  /**
   * The rows of `migratedRows({})`; from the rows numbered in `at` on, the streaming backend is terminated, each time
   * one that was not terminated before (the driver reads ahead, so the read that gave a row may have ended already).
   */
  const readEndingAt = (
    at: ReadonlyArray<number>,
    beforeResumption: (seen: ReadonlyArray<string>, retry: number) => Effect.Effect<void, never, SqlClient.SqlClient> =
      () => Effect.void
  ) =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const ended: Array<number> = []
      const metrics = yield* Metrics
      let retries = 0
      const result = yield* migratedRows({}).pipe(
        Stream.tap((row) =>
          Effect.suspend(() => {
            seen.push(`${row.sha2}/${row.hash}`)
            const due = at[ended.length]
            return due !== undefined && seen.length >= due
              ? Effect.map(Effect.orDie(terminateTheRead(ended)), (pids) => void ended.push(...pids))
              : Effect.void
          })
        ),
        Stream.runDrain,
        Effect.result,
        // the application's writes between the loss and the resumption (the policy reports each retry first)
        Effect.provideService(Metrics, {
          ...metrics,
          retried: (operation, waiting) =>
            Effect.andThen(Effect.suspend(() => beforeResumption(seen, ++retries)), metrics.retried(operation, waiting))
        })
      )
      return { seen, ended: ended.length, result }
    })

  it.live("a terminated backend twice mid-stream: the read resumes where it stopped; every row once, in order", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* seed
      const { seen, ended, result } = yield* readEndingAt([20_000, 150_001])
      assert.strictEqual(result._tag, "Success", String(result))
      assert.strictEqual(ended, 2, "both reads were ended under the stream")
      const expected = (yield* sql<{ readonly k: string }>`
        SELECT rtrim(sha2) || '/' || hash AS k FROM _nice_binary ORDER BY sha2 COLLATE "C", hash`).map((r) => r.k)
      const differs = seen.findIndex((key, i) => key !== expected[i])
      assert.strictEqual(differs, -1, `row ${differs}: ${seen[differs]} given where ${expected[differs]} was due`)
      assert.strictEqual(seen.length, 300_000, "the same rows in the same order, none twice, none missing")
      const metrics = yield* Metrics
      assert.isAtLeast((yield* metrics.snapshot).retries, 2, "each resumption counted as a retry")
    }).pipe(inThrowawayDatabase(), Effect.provide(Metrics.layer)), 120_000)

  it.live("rows of the group it stopped in deleted or added before the resumption: no row skipped, none twice", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      // 3 groups of 100,000 rows sharing one sha2 each (a table without a primary key may hold such groups): every
      // resumption lands inside a group
      yield* createNiceBinaryTable()
      yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data, sha2)
                 SELECT md5(i::text) || lpad(to_hex(i), 8, '0'), 1, 'a/b', NULL, md5((i % 3)::text) || md5((i % 3)::text)
                 FROM generate_series(1, 300000) i`
      const sha2Of = (key: string) => key.slice(0, 64)
      const hashOf = (key: string) => key.slice(65)
      let deleted: string | undefined
      let added: string | undefined
      const { seen, ended, result } = yield* readEndingAt([20_000, 150_001], (seen, retry) =>
        Effect.orDie(Effect.gen(function*() {
          const last = seen[seen.length - 1]!
          if (retry === 1) {
            // the application deletes the first row of the group, already given
            deleted = seen.find((key) => sha2Of(key) === sha2Of(last))!
            yield* sql`DELETE FROM _nice_binary WHERE hash = ${hashOf(deleted)}`
          } else if (retry === 2) {
            // and inserts a row into the group behind the point the read had reached
            added = `${sha2Of(last)}/${"0".repeat(40)}`
            yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data, sha2)
                       VALUES (${hashOf(added)}, 1, 'a/b', NULL, ${sha2Of(added)})`
          }
        })))
      assert.strictEqual(result._tag, "Success", String(result))
      assert.strictEqual(ended, 2, "both reads were ended under the stream")
      assert.isDefined(deleted)
      assert.isDefined(added)
      const now = (yield* sql<{ readonly k: string }>`
        SELECT rtrim(sha2) || '/' || hash AS k FROM _nice_binary ORDER BY sha2 COLLATE "C", hash`).map((r) => r.k)
      assert.isTrue(now.includes(added!) && !now.includes(deleted!))
      // every row there was when the read passed it, once: the deleted row had been given, the added one came behind
      // (the deleted row was the first of its group)
      const rest = now.filter((key) => key !== added)
      const at = rest.findIndex((key) => sha2Of(key) === sha2Of(deleted!))
      const expected = [...rest.slice(0, at), deleted!, ...rest.slice(at)]
      // (compared here: a failing deepStrictEqual of 300,000 strings takes minutes to print its diff)
      const differs = seen.findIndex((key, i) => key !== expected[i])
      assert.strictEqual(differs, -1, `row ${differs}: ${seen[differs]} given where ${expected[differs]} was due`)
      assert.strictEqual(seen.length, expected.length, "no row of the group skipped, none given twice")
    }).pipe(inThrowawayDatabase(), Effect.provide(Metrics.layer)), 120_000)

  it.live("with no retry budget the same loss ends the read with a retryable DatabaseError (the resumption is what carries it)", () =>
    Effect.gen(function*() {
      yield* seed
      const { seen, ended, result } = yield* readEndingAt([20_000])
      assert.strictEqual(ended, 1)
      assert.strictEqual(result._tag, "Failure")
      const error = (result as { readonly failure: { readonly retryable: boolean; readonly message: string } }).failure
      assert.isTrue(error.retryable, error.message)
      assert.isBelow(seen.length, 300_000)
    }).pipe(
      inThrowawayDatabase(),
      Effect.provide(Metrics.layer),
      Effect.provideService(RetryPolicy, { budget: 0, base: "10 millis", cap: "10 millis" })
    ), 120_000)
})

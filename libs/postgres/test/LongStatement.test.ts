/**
 * A database's default `statement_timeout` in force, as when a pooler refused or dropped lo-migrate's startup
 * parameter: the long statements (the counts) run to the end anyway, and the optional index's build, which the server
 * cancels, is reported as such instead of failing the run. The sessions here are made without the startup parameter.
 */
import { assert, describe, it } from "@effect/vitest"
import { LoSource, Metrics } from "@lo-migrate/core"
import { Effect, Fiber, Layer } from "effect"
import { SqlClient } from "effect/sql"
import {
  countAll,
  countPending,
  ensurePendingIndex,
  IndexBuildCancelled,
  PendingIndex,
  PgLoSource,
  sqlStateOf,
  tableStatus
} from "../src/index.ts"
import {
  createNiceBinaryTable,
  inThrowawayDatabase,
  openApplicationTransaction,
  ThrowawayDatabase,
  withSessionDefaults
} from "../src/testing.ts"

const setDefault = (timeout: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const db = yield* ThrowawayDatabase
    yield* sql.unsafe(`ALTER DATABASE ${db.name} SET statement_timeout = '${timeout}'`)
  })

describe("long statements under a database's default statement_timeout", () => {
  it.live("the counts of every row (start-up, dry run, status) run to the end under a 1 ms default", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data)
                 SELECT md5(i::text) || lpad(to_hex(i), 8, '0'), 1, 'a/b', NULL FROM generate_series(1, 200000) i`
      yield* setDefault("1ms")
      yield* Effect.gen(function*() {
        const bare = yield* SqlClient.SqlClient
        assert.strictEqual(
          (yield* bare<{ readonly t: string }>`SELECT current_setting('statement_timeout') AS t`)[0]?.t,
          "1ms"
        )
        // the control: a count of the table outlasts the default
        const control = yield* Effect.flip(bare`SELECT count(*), sum(size) FROM _nice_binary`)
        assert.strictEqual(sqlStateOf(control), "57014", "the count finished within 1 ms: the test proves nothing")
        assert.strictEqual(yield* countPending, 200_000)
        assert.strictEqual((yield* countAll).total, 200_000)
        const source = yield* LoSource.pipe(Effect.provide(PgLoSource.layer({ pageSize: 10 }).pipe(Layer.provide(Metrics.layer))))
        assert.strictEqual((yield* source.count).remaining, 200_000)
        const status = yield* tableStatus(4, [])
        assert.strictEqual(status.shards.reduce((n, s) => n + s.left, 0), 200_000)
      }).pipe(withSessionDefaults)
    }).pipe(inThrowawayDatabase()))

  it.live("the index build the server cancels (its default, an application's open transaction): IndexBuildCancelled, then built once it can; status says which", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* setDefault("2s")
      const indexValid = sql<{ readonly valid: boolean }>`
        SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass(${PendingIndex})`
      // status, on a session of its own without the default
      const indexShown = Effect.map(tableStatus(1, []), (s) => s.pendingIndex)
      assert.strictEqual(yield* indexShown, "none")
      // an application's transaction that stays open: CREATE INDEX CONCURRENTLY waits for it, until the default
      // cancels the build; the DROP of its INVALID leftover waits for it too. It ends with the inner scope.
      const cancelled = yield* Effect.scoped(Effect.gen(function*() {
        yield* openApplicationTransaction
        const build = yield* Effect.forkScoped(Effect.flip(withSessionDefaults(ensurePendingIndex)))
        yield* Effect.sleep("500 millis")
        assert.strictEqual(yield* indexShown, "building")
        return yield* Fiber.join(build)
      }))
      assert.strictEqual(yield* indexShown, "invalid")
      assert.instanceOf(cancelled, IndexBuildCancelled)
      const error = cancelled as IndexBuildCancelled
      assert.strictEqual(error.statementTimeout, "2s")
      assert.include(error.detail, "[57014]")
      assert.isTrue(error.leftInvalid)
      assert.include(error.message, `DROP INDEX CONCURRENTLY IF EXISTS ${PendingIndex};`)
      assert.deepStrictEqual(yield* indexValid, [{ valid: false }])
      // once nothing holds it back, a run drops the leftover and builds the index within the default
      assert.isTrue(yield* withSessionDefaults(ensurePendingIndex))
      assert.deepStrictEqual(yield* indexValid, [{ valid: true }])
      assert.strictEqual(yield* indexShown, "valid")
    }).pipe(inThrowawayDatabase()))
})

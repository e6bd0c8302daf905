/**
 * verify's count of the migrated rows under a database's default `statement_timeout` (a pooler refused or dropped
 * lo-migrate's startup parameter): it runs to the end (`LongStatement.ts` of @lo-migrate/postgres).
 */
import { assert, describe, it } from "@effect/vitest"
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
    }).pipe(inThrowawayDatabase()))
})

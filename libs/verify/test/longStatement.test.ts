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
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { countMigrated } from "../src/index.ts"

describe("verify's count under a database's default statement_timeout", () => {
  it.live("counts 200,000 migrated rows under a 1 ms default", () =>
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
      }).pipe(withSessionDefaults)
    }).pipe(inThrowawayDatabase()))
})

/**
 * What `lo-migrate status` costs: one exact pass over `_nice_binary`, grouped by shard, against a plain `count(*)`,
 * on a throwaway table of ROWS rows (default 1,000,000; 90% migrated; no large objects: status never reads them).
 *
 *   cd tools/bench && npx node --conditions=development src/status-count.ts [ROWS]
 *
 * Uses the PostgreSQL of PG_TEST_URL (default postgres://postgres@127.0.0.1:5432/postgres); the database is dropped
 * at the end.
 */
import { tableStatus } from "@lo-migrate/postgres"
import { createNiceBinaryTable, ThrowawayDatabase } from "@lo-migrate/postgres/testing"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"

const rows = Number(process.argv[2] ?? 1_000_000)
const shardCounts = [1, 16, 64, 256, 1024]

const timed = Effect.fnUntraced(function*<A, E, R>(self: Effect.Effect<A, E, R>) {
  const start = yield* Clock.currentTimeMillis
  const result = yield* self
  return { result, millis: (yield* Clock.currentTimeMillis) - start }
})

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* createNiceBinaryTable()
  yield* sql`
    INSERT INTO _nice_binary (hash, size, mime_type, data, sha2)
    SELECT encode(sha256(i::text::bytea), 'hex')::char(40), i % 100000, 'image/png', 4242,
           CASE WHEN i % 10 <> 0 THEN encode(sha256(('x' || i)::bytea), 'hex') END
    FROM generate_series(1, ${rows}) i`
  yield* sql`VACUUM ANALYZE _nice_binary`
  yield* Console.log(`${rows} rows, 90% migrated`)
  for (let round = 1; round <= 2; round++) {
    const plain = yield* timed(sql`SELECT count(*) FROM _nice_binary`)
    yield* Console.log(`round ${round}: count(*)            ${String(plain.millis).padStart(7)} ms`)
    for (const n of shardCounts) {
      const { millis, result } = yield* timed(tableStatus(n, []))
      const total = result.shards.reduce((a, s) => a + s.total, 0)
      if (total !== rows) return yield* Effect.die(new Error(`status counted ${total} rows of ${rows}`))
      yield* Console.log(`round ${round}: status, ${String(n).padStart(4)} shards ${String(millis).padStart(7)} ms`)
    }
  }
}).pipe(Effect.provide(ThrowawayDatabase.layerWithClient(1)))

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exitCode = 1
})

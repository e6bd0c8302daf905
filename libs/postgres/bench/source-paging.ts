/**
 * Keyset paging of pending rows on a large table, with and without the partial index `(hash) WHERE sha2 IS NULL`,
 * for a fresh run and for a resumed run (90 % of the rows, the lowest hashes, already migrated); plus what the
 * partial index costs the commits (an UPDATE of sha2 cannot be HOT while an index depends on sha2).
 *
 * Run: cd libs/postgres && npx node bench/source-paging.ts   (BENCH_ROWS, default 1000000)
 */
import { LoSource, Metrics } from "@lo-migrate/core"
import { Effect, Layer, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { ensurePendingIndex } from "../src/Schema.ts"
import * as PgLoSource from "../src/PgLoSource.ts"
import { createNiceBinaryTable, ThrowawayDatabase } from "../src/testing.ts"

const rows = Number(process.env["BENCH_ROWS"] ?? 1_000_000)
const pageSize = Number(process.env["BENCH_PAGE"] ?? 1000)

const ms = (t0: number) => `${(performance.now() - t0).toFixed(0).padStart(6)} ms`

const measure = (label: string) =>
  Effect.gen(function*() {
    const source = yield* LoSource
    let t0 = performance.now()
    const first = yield* source.rows.pipe(Stream.take(1), Stream.runCollect)
    const firstMs = ms(t0)
    t0 = performance.now()
    const n = yield* source.rows.pipe(Stream.runCount)
    console.log(`${label.padEnd(50)} first row ${firstMs}   all ${String(n).padStart(8)} rows ${ms(t0)}`)
    void first
  }).pipe(Effect.provide(PgLoSource.layer({ pageSize }).pipe(Layer.provide(Metrics.layer))))

const commitCost = (label: string, count: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const hashes = yield* sql<{ readonly hash: string }>`
      SELECT hash FROM _nice_binary WHERE sha2 IS NULL ORDER BY hash LIMIT ${count}`
    const t0 = performance.now()
    for (let i = 0; i < hashes.length; i += 500) {
      const part = hashes.slice(i, i + 500).map((h) => h.hash)
      yield* sql`UPDATE _nice_binary b SET sha2 = encode(sha256(convert_to(b.hash, 'UTF8')), 'hex')
                 FROM unnest(${part}::text[]) AS u(hash) WHERE b.hash = u.hash AND b.sha2 IS NULL`
    }
    const [hot] = yield* sql<{ readonly upd: bigint; readonly hot: bigint }>`
      SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relname = '_nice_binary'`
    console.log(`${label.padEnd(50)} ${count} updates in batches of 500 ${ms(t0)}  (cumulative upd ${hot?.upd}, hot ${hot?.hot})`)
  })

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* createNiceBinaryTable()
  // fillfactor as the application's table would have it: default 100
  console.log(`seeding ${rows} rows ...`)
  yield* sql`
    INSERT INTO _nice_binary (hash, size, mime_type, data)
    SELECT md5(i::text) || left(md5('x' || i), 8), (i % 100000) + 1, 'application/pdf', 100000 + i
    FROM generate_series(1, ${rows}) AS i`
  yield* sql`VACUUM ANALYZE _nice_binary`
  yield* measure("fresh run, pkey only")
  // resumed: the lowest 90 % of hashes migrated
  const [cut] = yield* sql<{ readonly hash: string }>`
    SELECT hash FROM _nice_binary ORDER BY hash OFFSET ${Math.floor(rows * 0.9)} LIMIT 1`
  yield* sql`UPDATE _nice_binary SET sha2 = encode(sha256(convert_to(hash, 'UTF8')), 'hex') WHERE hash < ${cut!.hash}`
  yield* sql`VACUUM ANALYZE _nice_binary`
  yield* measure("resumed (90 % done), pkey only")
  yield* commitCost("commit cost, pkey only", 20000)
  let t0 = performance.now()
  yield* ensurePendingIndex
  console.log(`CREATE INDEX CONCURRENTLY (partial, pending rows)        ${ms(t0)}`)
  yield* sql`VACUUM ANALYZE _nice_binary`
  yield* measure("resumed (90 % done), + partial index")
  yield* commitCost("commit cost, + partial index", 20000)
  const plan = yield* sql.unsafe<{ readonly "QUERY PLAN": string }>(
    `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT hash, data, size, mime_type, ctid FROM _nice_binary
     WHERE sha2 IS NULL AND hash >= '8' AND (hash > '8' OR ctid > '(0,0)'::tid) ORDER BY hash, ctid LIMIT ${pageSize}`
  )
  console.log(plan.map((r) => r["QUERY PLAN"]).join("\n"))
  t0 = performance.now()
  yield* sql`DROP INDEX _nice_binary_sha2_pending_idx`
  void t0
})

Effect.runPromise(program.pipe(Effect.provide(ThrowawayDatabase.layerWithClient(2)))).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
void Layer

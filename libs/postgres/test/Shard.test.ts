/**
 * `--shard I/N` against the real PostgreSQL: every row, whatever the case of its hash, is taken by exactly one of the N
 * shard sources, for random N, under the byte-order collation "C" and under a linguistic one (ICU); each shard's first
 * page is an index range scan of the primary key (EXPLAIN).
 */
import { assert, describe, it } from "@effect/vitest"
import { LoSource, Metrics, shardOfKey, shardRange } from "@lo-migrate/core"
import { Effect, Layer, Stream } from "effect"
import { SqlClient } from "effect/sql"
import fc from "fast-check"
import { randomBytes } from "node:crypto"
import { PgLoSource, shardPredicate, tableStatus } from "../src/index.ts"
import { createNiceBinaryTable, inThrowawayDatabase } from "../src/testing.ts"

const randomHash = () => randomBytes(20).toString("hex")

/** Lower-case hashes, their upper-case twins, mixed case, the bounds of 2, 3 and 8 shards, and odd strings. */
const seed = (sql: SqlClient.SqlClient, n: number) =>
  Effect.gen(function*() {
    const lower = Array.from({ length: n }, randomHash)
    const bounds = [2, 3, 8].flatMap((count) =>
      Array.from({ length: count - 1 }, (_, i) => shardRange({ index: i + 1, count }).low!)
    )
    const hashes = [
      ...lower,
      ...lower.slice(0, n / 4).map((h) => h.toUpperCase()),
      ...lower.slice(n / 4, n / 2).map((h) => h.slice(0, 1).toUpperCase() + h.slice(1, 20) + h.slice(20).toUpperCase()),
      ...bounds,
      ...bounds.map((b) => b.toUpperCase()),
      "0".repeat(40),
      "f".repeat(40),
      "F".repeat(40),
      "9".repeat(40),
      "a".repeat(40),
      "A".repeat(40),
      "zz not a hash",
      "   "
    ]
    const unique = [...new Set(hashes)]
    const records = unique.map((hash, i) => ({ hash, size: i, mime_type: "a/b", data: 4242, sha2: i % 5 === 0 ? "e".repeat(64) : null }))
    yield* sql`INSERT INTO _nice_binary ${sql.insert(records as [(typeof records)[number], ...typeof records])}`
    yield* sql`ANALYZE _nice_binary`
    const pending = unique.filter((_, i) => i % 5 !== 0)
    return pending
  })

const shardRows = (index: number, count: number, pageSize: number) =>
  Effect.gen(function*() {
    const source = yield* LoSource
    const rows = yield* Stream.runCollect(source.rows)
    const counts = yield* source.count
    return { hashes: rows.map((r) => r.hash), counts }
  }).pipe(Effect.provide(PgLoSource.layer({ pageSize, shard: shardRange({ index, count }) }).pipe(Layer.provide(Metrics.layer))))

/** Every pending row in exactly one shard for random N, and the per-shard counts add up to the table's. */
const exactlyOnce = (pending: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tableTotal = (yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM _nice_binary`)[0]?.n
    const counts = fc.sample(fc.integer({ min: 1, max: 40 }), { numRuns: 6, seed: 42 })
    for (const count of [1, 2, 4, 8, ...counts]) {
      const seen = new Map<string, number>()
      let remaining = 0
      let total = 0
      // status's one-pass count per shard agrees with what each shard's source counts and takes
      const reported = [...pending.slice(0, 30), "0123456789abcdef0123456789abcdef01234567"]
      const status = yield* tableStatus(count, reported)
      assert.strictEqual(status.shards.length, count)
      assert.strictEqual(status.reported.reduce((n, r) => n + r.found, 0), 30)
      assert.strictEqual(status.reported.reduce((n, r) => n + r.left, 0), 30)
      for (let index = 0; index < count; index++) {
        const shard = yield* shardRows(index, count, 7)
        assert.strictEqual(status.shards[index]!.left, shard.counts.remaining, `${count} shards: ${index} left`)
        assert.strictEqual(status.shards[index]!.left, shard.hashes.length, `${count} shards: ${index} rows`)
        assert.strictEqual(status.shards[index]!.total, shard.counts.total, `${count} shards: ${index} total`)
        assert.strictEqual(status.shards[index]!.bytesLeft, shard.counts.remainingBytes, `${count} shards: ${index} bytes`)
        assert.strictEqual(
          status.reported[index]!.found,
          reported.filter((h) => shard.hashes.includes(h)).length,
          `${count} shards: ${index} reported`
        )
        remaining += shard.counts.remaining
        total += shard.counts.total
        for (const h of shard.hashes) {
          assert.isFalse(seen.has(h), `${h} taken by shards ${seen.get(h)} and ${index} of ${count}`)
          seen.set(h, index)
        }
      }
      assert.strictEqual(seen.size, pending.length, `${count} shards`)
      assert.strictEqual(remaining, pending.length, `${count} shards: remaining`)
      assert.strictEqual(total, tableTotal, `${count} shards: total`)
      // lower-case hex hashes land in the shard their value says (the others: somewhere, once)
      for (const [h, index] of seen) {
        if (/^[0-9a-f]{40}$/.test(h)) assert.strictEqual(index, shardOfKey(h, count), h)
      }
    }
  })

describe("PgLoSource with a shard", () => {
  it.live("collation C (byte order): every row, upper case or odd, in exactly one shard for random N", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* sql`ALTER TABLE _nice_binary ALTER COLUMN hash TYPE char(40) COLLATE "C"`
      yield* exactlyOnce(yield* seed(sql, 400))
    }).pipe(inThrowawayDatabase()), 120_000)

  it.live("a linguistic collation (ICU): every row in exactly one shard; upper case lands with its lower-case twin", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* sql`ALTER TABLE _nice_binary ALTER COLUMN hash TYPE char(40) COLLATE "und-x-icu"`
      const pending = yield* seed(sql, 400)
      yield* exactlyOnce(pending)
      // under ICU 'A' and 'a' compare equal at the first level: an upper-case hash is in the shard of its value
      for (const count of [2, 3, 8, 16]) {
        for (let index = 0; index < count; index++) {
          const { hashes } = yield* shardRows(index, count, 1000)
          for (const h of hashes) {
            if (/^[0-9A-F]{40}$/.test(h)) assert.strictEqual(shardOfKey(h.toLowerCase(), count), index, `${h} / ${count}`)
          }
        }
      }
    }).pipe(inThrowawayDatabase()), 120_000)

  it.live("a shard's page is an index range scan of the primary key on hash (EXPLAIN)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data)
                 SELECT left(md5(i::text) || md5('x' || i), 40), i, 'a/b', 4242 FROM generate_series(1, 200000) i`
      yield* sql`ANALYZE _nice_binary`
      const range = shardRange({ index: 5, count: 16 })
      // the statement of PgLoSource's first page, with its shard predicate
      const plan = yield* sql<{ readonly "QUERY PLAN": string }>`
        EXPLAIN SELECT b.hash, b.data AS oid, b.size, b.mime_type AS "mimeType", b.ctid::text AS cursor
        FROM _nice_binary b
        WHERE b.sha2 IS NULL AND ${shardPredicate(sql, range)}
        ORDER BY b.hash, b.ctid
        LIMIT 1000`
      const text = plan.map((r) => r["QUERY PLAN"]).join("\n")
      // a shard of a large table is an ordered index range scan (only ties of hash are sorted, incrementally), and
      // the LIMIT stops it after one page
      assert.include(text, "Index Scan using _nice_binary_pkey", text)
      assert.notMatch(text, /->\s+Sort\s/, text)
      assert.include(text, `Index Cond: ((hash >= '${range.low}'::bpchar) AND (hash < '${range.high}'::bpchar))`, text)
      assert.notInclude(text, "Seq Scan", text)
    }).pipe(inThrowawayDatabase()), 60_000)
})

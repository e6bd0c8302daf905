import { assert, describe, it } from "@effect/vitest"
import { LoSource, Metrics, RetryPolicy, shardRange, type SourceRow } from "@lo-migrate/core"
import { Context, Deferred, Effect, Layer, Redacted, Result, Stream } from "effect"
import { SqlClient } from "effect/sql"
import fc from "fast-check"
import { PgDatabase, PgLoSource, PgUrl, sqlStateOf } from "../src/index.ts"
import {
  createNiceBinaryTable,
  insertBinary,
  inThrowawayDatabase,
  PgBouncer,
  seedOriginalDataSet,
  ThrowawayDatabase
} from "../src/testing.ts"

const collect = (pageSize: number) =>
  Effect.gen(function*() {
    const source = yield* LoSource
    return yield* Stream.runCollect(source.rows)
  }).pipe(Effect.provide(PgLoSource.layer({ pageSize }).pipe(Layer.provide(Metrics.layer))))

const hex40 = (n: number, prefix = "") => (prefix + n.toString(16)).padStart(40, "0").slice(-40)

/** Inserts a row without a large object (the source never touches objects). */
const row = (hash: string, options: { readonly size?: number; readonly sha2?: string | null } = {}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data, sha2)
               VALUES (${hash}, ${options.size ?? 1}, 'a/b', 4242, ${options.sha2 ?? null})`
  })

describe("PgLoSource.rows", () => {
  it.live("yields the pending rows of the original data set in hash order, on any page size", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const data = yield* seedOriginalDataSet
      const expected: ReadonlyArray<SourceRow> = data.pending.map((p) => p.row)
      for (const pageSize of [1, 2, 3, 5, 6, 7, 1000]) {
        const rows = yield* collect(pageSize)
        assert.deepStrictEqual(rows, expected, `pageSize ${pageSize}`)
      }
      // sizes are numbers (int8 arrives as bigint), the migrated row is absent
      for (const r of yield* collect(2)) assert.strictEqual(typeof r.size, "number")
      assert.isFalse((yield* collect(2)).some((r) => r.hash === data.migrated.hash))
    }).pipe(inThrowawayDatabase()))

  it.live("picks up rows inserted ahead of the cursor, skips rows behind it, never fails on deleted ones", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      for (let i = 10; i < 30; i++) yield* row(hex40(i * 16))
      const source = yield* LoSource.pipe(Effect.provide(PgLoSource.layer({ pageSize: 3 }).pipe(Layer.provide(Metrics.layer))))
      let touched = false
      const seen = yield* source.rows.pipe(
        Stream.mapEffect((r) =>
          Effect.gen(function*() {
            if (!touched && r.hash === hex40(15 * 16)) {
              touched = true
              yield* row(hex40(1)) // behind the cursor: next run
              yield* row(hex40(28 * 16 + 1)) // ahead: this run
              yield* sql`DELETE FROM _nice_binary WHERE hash = ${hex40(20 * 16)}` // vanished
              yield* sql`DELETE FROM _nice_binary WHERE hash = ${hex40(16 * 16)}` // maybe already on this page
              yield* sql`UPDATE _nice_binary SET sha2 = ${"e".repeat(64)} WHERE hash = ${hex40(25 * 16)}` // done
            }
            return r.hash
          })
        ),
        Stream.runCollect
      )
      assert.isTrue(touched)
      assert.include(seen, hex40(28 * 16 + 1))
      assert.notInclude(seen, hex40(1))
      assert.notInclude(seen, hex40(20 * 16))
      assert.notInclude(seen, hex40(25 * 16))
      assert.strictEqual(new Set(seen).size, seen.length, "no row twice")
      assert.deepStrictEqual([...seen], [...seen].sort(), "hash order")
      // the next run sees what was left behind
      const next = yield* collect(3)
      assert.include(next.map((r) => r.hash), hex40(1))
    }).pipe(inThrowawayDatabase()))

  it.live("rows sharing a hash across page boundaries are each yielded once", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable({ primaryKey: false })
      yield* row(hex40(1))
      // 12 copies: more than 9, so ctids (0,2) and (0,10) must be compared as tids, not as text
      const sizes = Array.from({ length: 12 }, (_, i) => 100 + i)
      for (const size of sizes) yield* row(hex40(2), { size })
      yield* row(hex40(3))
      for (const pageSize of [1, 2, 3, 4, 5]) {
        const rows = yield* collect(pageSize)
        assert.deepStrictEqual(rows.map((r) => r.hash), [hex40(1), ...Array(12).fill(hex40(2)), hex40(3)])
        assert.deepStrictEqual(rows.filter((r) => r.hash === hex40(2)).map((r) => r.size), sizes, "in ctid order")
      }
    }).pipe(inThrowawayDatabase()))

  it.live("holds no transaction open between pages", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      for (let i = 0; i < 10; i++) yield* row(hex40(i + 1))
      const source = yield* LoSource.pipe(Effect.provide(PgLoSource.layer({ pageSize: 2 }).pipe(Layer.provide(Metrics.layer))))
      const states = yield* source.rows.pipe(
        Stream.take(5),
        Stream.mapEffect(() =>
          sql<{ readonly n: bigint }>`
            SELECT count(*) AS n FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND (state LIKE 'idle in transaction%' OR backend_xmin IS NOT NULL)`
        ),
        Stream.map((r) => r[0]?.n),
        Stream.runCollect
      )
      assert.deepStrictEqual(states, [0n, 0n, 0n, 0n, 0n])
    }).pipe(inThrowawayDatabase(3)))

  it.live("big and absurd sizes: 5 GB is exact, 2^60 is not a safe integer (the reader rejects it)", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      yield* row(hex40(1), { size: 5_000_000_000 })
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data) VALUES (${hex40(2)}, 1152921504606846976, 'x', NULL)`
      const rows = yield* collect(10)
      assert.strictEqual(rows[0]?.size, 5_000_000_000)
      assert.isFalse(Number.isSafeInteger(rows[1]?.size))
      assert.strictEqual(rows[1]?.oid, null)
    }).pipe(inThrowawayDatabase()))

  it.live("passes mime types through unchanged: NULL, empty, odd", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable({ nullableMimeType: true })
      const types = [null, "", " text/html ", "text/plain; charset=utf-8", "bild/ä-öü", "x/" + "y".repeat(253)]
      const inserted = yield* Effect.forEach(types, (mimeType, i) =>
        insertBinary({ bytes: new Uint8Array([i]), mimeType }))
      const rows = yield* collect(2)
      const byHash = new Map(inserted.map((r) => [r.hash, r.mimeType]))
      assert.strictEqual(rows.length, types.length)
      for (const r of rows) assert.strictEqual(r.mimeType, byHash.get(r.hash))
    }).pipe(inThrowawayDatabase()))

  it.live("property: exactly the rows with sha2 NULL, in hash order, for any page size (duplicates included)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable({ primaryKey: false })
      const context = yield* Effect.context<SqlClient.SqlClient>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(fc.record({ key: fc.integer({ min: 0, max: 4 }), done: fc.boolean(), size: fc.nat(1000) }), {
              maxLength: 40
            }),
            fc.integer({ min: 1, max: 6 }),
            (table, pageSize) =>
              Effect.runPromise(Effect.provideContext(
                Effect.gen(function*() {
                  yield* sql`TRUNCATE _nice_binary`
                  for (const t of table) {
                    yield* row(hex40(t.key), { size: t.size, sha2: t.done ? "d".repeat(64) : null })
                  }
                  const rows = yield* collect(pageSize)
                  const expected = table.filter((t) => !t.done).map((t) => `${hex40(t.key)}:${t.size}`).sort()
                  const got = rows.map((r) => `${r.hash}:${r.size}`)
                  assert.deepStrictEqual([...got].sort(), expected)
                  assert.deepStrictEqual(rows.map((r) => r.hash), [...rows.map((r) => r.hash)].sort())
                }),
                context
              ))
          ),
          { numRuns: 25 }
        )
      )
    }).pipe(inThrowawayDatabase()))
})

/**
 * A second pool on the test's database, and a function that makes it take an ACCESS EXCLUSIVE lock on the table for
 * `seconds` (in a detached transaction), returning once the lock is held.
 */
const tableLocker = Effect.gen(function*() {
  const db = yield* ThrowawayDatabase
  const locker = Context.get(yield* Layer.build(PgDatabase.layer({ url: db.url, maxConnections: 1 })), SqlClient.SqlClient)
  return Effect.fnUntraced(function*(seconds: number) {
    const locked = yield* Deferred.make<void>()
    yield* locker.withTransaction(
      locker`LOCK TABLE _nice_binary IN ACCESS EXCLUSIVE MODE`.pipe(
        Effect.andThen(Deferred.succeed(locked, undefined)),
        Effect.andThen(locker`SELECT pg_sleep(${seconds})`)
      )
    ).pipe(Effect.forkDetach)
    yield* Deferred.await(locked)
  })
})

describe("PgLoSource.rows retries", () => {
  it.live("a page that fails (lock_timeout under a table lock) is retried from its cursor: every row once", () =>
    Effect.gen(function*() {
      // One connection for the source, whose session gives up waiting for a lock after 50 ms (55P03, retryable).
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      for (let i = 10; i < 30; i++) yield* row(hex40(i * 16))
      yield* sql`SET lock_timeout = '50ms'`
      // Another connection will hold an ACCESS EXCLUSIVE lock on the table for a while, mid-stream.
      const lockTable = yield* tableLocker
      const metrics = yield* Metrics.make
      const source = yield* LoSource.pipe(
        Effect.provide(PgLoSource.layer({ pageSize: 3 }).pipe(Layer.provide(Layer.succeed(Metrics, metrics))))
      )
      const seen = yield* source.rows.pipe(
        Stream.mapEffect((r) =>
          Effect.gen(function*() {
            if (r.hash === hex40(14 * 16)) yield* lockTable(0.4)
            return r.hash
          })
        ),
        Stream.runCollect,
        Effect.provideService(RetryPolicy, { budget: "20 seconds", base: "20 millis", cap: "100 millis" })
      )
      assert.deepStrictEqual(seen, Array.from({ length: 20 }, (_, i) => hex40((i + 10) * 16)))
      const snapshot = yield* metrics.snapshot
      assert.isAtLeast(snapshot.retries, 1, "the page under the lock was retried")
      assert.deepStrictEqual(snapshot.unavailable, [], "and its wait was cleared when it succeeded")
    }).pipe(inThrowawayDatabase(1)), 20_000)

  it.live("a page that keeps failing ends the stream with the retryable error once its budget is spent", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* row(hex40(1))
      yield* sql`SET lock_timeout = '20ms'`
      yield* (yield* tableLocker)(2)
      const error = yield* collect(3).pipe(
        Effect.provideService(RetryPolicy, { budget: "300 millis", base: "20 millis", cap: "50 millis" }),
        Effect.flip
      )
      assert.strictEqual(error._tag, "DatabaseError")
      assert.isTrue(error.retryable)
      assert.match(error.message, /55P03|lock/)
    }).pipe(inThrowawayDatabase(1)), 20_000)
})

describe("PgLoSource.rows behind a pooler", () => {
  it.live("a database default statement_timeout that PgBouncer leaves in force does not cancel a slow page (a long migrated prefix, no index of pending rows)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const db = yield* ThrowawayDatabase
      yield* createNiceBinaryTable()
      // a resumed run's table: a million rows migrated first in hash order, then the 5 left; no index of pending rows
      yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data, sha2)
                 SELECT lpad(to_hex(i), 40, '0'), 1, 'a/b', 4242, repeat('a', 64) FROM generate_series(1, 1000000) i`
      const pending = Array.from({ length: 5 }, (_, i) => `${"f".repeat(39)}${i}`)
      for (const hash of pending) yield* row(hash)
      yield* sql`ANALYZE _nice_binary`
      yield* sql.unsafe(`ALTER DATABASE ${db.name} SET statement_timeout = '20ms'`)
      const bouncer = yield* PgBouncer.make
      const url = Redacted.make(bouncer.url(db.name))
      const options = yield* Effect.orDie(PgUrl.resolve(url, PgUrl.environmentOf({ HOME: "/nonexistent" })))
      const viaBouncer = PgDatabase.layer({ url, options, maxConnections: 1, warnWhenRefused: false })
      // the premise: the page's statement outlasts the default on such a session
      const bare = yield* Effect.gen(function*() {
        const pooled = yield* SqlClient.SqlClient
        const [t] = yield* pooled<{ readonly t: string }>`SELECT current_setting('statement_timeout') AS t`
        const page = yield* Effect.result(pooled`SELECT hash FROM _nice_binary WHERE sha2 IS NULL ORDER BY hash, ctid LIMIT 1000`)
        return { timeout: t?.t, page }
      }).pipe(Effect.provide(viaBouncer))
      assert.strictEqual(bare.timeout, "20ms", "PgBouncer refused statement_timeout=0: the default applies")
      assert.isTrue(Result.isFailure(bare.page) && sqlStateOf(bare.page.failure) === "57014", "the bare page is cancelled")
      const seen = yield* collect(1000).pipe(
        Effect.provide(viaBouncer),
        Effect.provideService(RetryPolicy, { budget: "3 seconds", base: "20 millis", cap: "200 millis" })
      )
      assert.deepStrictEqual(seen.map((r) => r.hash), pending)
    }).pipe(inThrowawayDatabase(1)), 60_000)
})

describe("PgLoSource.count", () => {
  it.live("counts all rows, the remaining ones, their bytes and the largest", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const source = yield* LoSource.pipe(Effect.provide(PgLoSource.layer({ pageSize: 10 }).pipe(Layer.provide(Metrics.layer))))
      assert.deepStrictEqual(yield* source.count, { total: 0, remaining: 0, remainingBytes: 0, largest: 0 })
      const data = yield* seedOriginalDataSet
      const pending = data.pending.map((p) => p.size)
      assert.deepStrictEqual(yield* source.count, {
        total: data.pending.length + 1,
        remaining: data.pending.length,
        remainingBytes: pending.reduce((a, b) => a + b, 0),
        largest: Math.max(...pending)
      })
      yield* row(hex40(77), { size: 6_000_000_000 })
      const c = yield* source.count
      assert.strictEqual(c.largest, 6_000_000_000)
      assert.strictEqual(c.remainingBytes, pending.reduce((a, b) => a + b, 0) + 6_000_000_000)
    }).pipe(inThrowawayDatabase()))

  it.live("pending: the rows without sha2 now, of its shard only; the shards' add up to the table's", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const data = yield* seedOriginalDataSet
      const of = (shard?: { readonly index: number; readonly count: number }) =>
        LoSource.pipe(
          Effect.flatMap((source) => source.pending),
          Effect.provide(PgLoSource.layer({ pageSize: 10, ...(shard === undefined ? {} : { shard: shardRange(shard) }) }).pipe(
            Layer.provide(Metrics.layer)
          ))
        )
      assert.strictEqual(yield* of(), data.pending.length)
      const shards = [yield* of({ index: 0, count: 3 }), yield* of({ index: 1, count: 3 }), yield* of({ index: 2, count: 3 })]
      assert.strictEqual(shards.reduce((a, b) => a + b, 0), data.pending.length)
      assert.isTrue(shards.filter((n) => n > 0).length >= 2, `rows in more than one shard: ${shards}`)
      yield* row(hex40(78), { sha2: null })
      assert.strictEqual(yield* of(), data.pending.length + 1, "a row inserted since")
    }).pipe(inThrowawayDatabase()))
})



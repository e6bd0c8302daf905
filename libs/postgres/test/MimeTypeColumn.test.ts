/**
 * `mime_type` and `hash` in a SQL_ASCII database: bytes that are not UTF-8 are one row's problem (reported by
 * `checkRow`), not a failed page that stops the run; every UTF-8 value, in any database, reads back exactly.
 */
import { assert, describe, it } from "@effect/vitest"
import { checkRow, LoSource, Metrics, type RowFailed } from "@lo-migrate/core"
import { Effect, Layer, Stream } from "effect"
import fc from "fast-check"
import { SqlClient } from "effect/sql"
import { hashAfter, mimeTypeOf, mimeTypeShownBytes, PgLoSource } from "../src/index.ts"
import { createNiceBinaryTable, insertBinary, inThrowawayDatabase, setMimeTypeBytes } from "../src/testing.ts"

const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex, "hex"))
const utf8 = (text: string) => new TextEncoder().encode(text)

describe("mimeTypeOf", () => {
  it("UTF-8 (a byte-order mark included) reads back exactly; NULL stays NULL", () => {
    for (const text of ["text/plain", "text/x-ünïcode", "\uFEFFtext/plain", "image/\u{1F600}", ""]) {
      assert.deepStrictEqual(mimeTypeOf(utf8(text)), { mimeType: text })
    }
    assert.deepStrictEqual(mimeTypeOf(null), { mimeType: null })
  })

  it("bytes that are not UTF-8: their hex (at most 64 bytes), and a display form with U+FFFD", () => {
    assert.deepStrictEqual(mimeTypeOf(bytes("746578742fe4")), { mimeType: "text/\uFFFD", mimeTypeNotUtf8: "746578742fe4" })
    // an overlong encoding and a lone continuation byte are not UTF-8 either
    assert.strictEqual(mimeTypeOf(bytes("c0af")).mimeTypeNotUtf8, "c0af")
    assert.strictEqual(mimeTypeOf(bytes("80")).mimeTypeNotUtf8, "80")
    const long = new Uint8Array(100).fill(0xe4)
    assert.strictEqual(mimeTypeOf(long).mimeTypeNotUtf8, "e4".repeat(mimeTypeShownBytes) + "...")
  })
})

const pending = Effect.gen(function*() {
  const source = yield* LoSource
  return yield* Stream.runCollect(source.rows)
}).pipe(Effect.provide(PgLoSource.layer({ pageSize: 2 }).pipe(Layer.provide(Metrics.layer))))

describe("PgLoSource: text columns in databases of other encodings", () => {
  it.live("a Latin-1 mime_type fails its row (MimeTypeNotUtf8, naming the bytes); the page and the others read on", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [encoding] = yield* sql<{ readonly e: string }>`SELECT pg_encoding_to_char(encoding) AS e FROM pg_database
        WHERE datname = current_database()`
      assert.strictEqual(encoding!.e, "SQL_ASCII")
      yield* createNiceBinaryTable()
      const rows = yield* Effect.forEach(
        ["a/b", "text/x-ünïcode", "x/latin1", "\uFEFFtext/plain", "x/y"],
        (mimeType, i) => insertBinary({ bytes: utf8(`body ${i}`), mimeType })
      )
      const latin1 = rows[2]!
      yield* setMimeTypeBytes(latin1.hash, bytes("746578742f78e4")) // "text/x" + Latin-1 "ä"
      const read = yield* pending
      assert.strictEqual(read.length, rows.length, "every row, the bad one included, on pages of 2")
      const byHash = new Map(read.map((r) => [r.hash, r]))
      for (const row of rows) {
        const got = byHash.get(row.hash)!
        if (row === latin1) {
          assert.strictEqual(got.mimeTypeNotUtf8, "746578742f78e4")
          const failed = yield* Effect.flip(checkRow(got))
          assert.strictEqual((failed as RowFailed).reason._tag, "MimeTypeNotUtf8")
          assert.include(failed.message, `row hash="${row.hash}"`)
          assert.include(failed.message, "mime_type is not valid UTF-8 (bytes 746578742f78e4, hex)")
        } else {
          assert.deepStrictEqual(got, row.row, "UTF-8 values read back exactly, a byte-order mark included")
          yield* checkRow(got)
        }
      }
    }).pipe(inThrowawayDatabase(2, { encoding: "SQL_ASCII" })))

  it.live("in a LATIN1 database every value PostgreSQL converts reads back exactly (nothing is flagged)", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const rows = yield* Effect.forEach(
        ["text/x-ünïcode", "a/b; name=\"é\"", "x/y"],
        (mimeType, i) => insertBinary({ bytes: utf8(`body ${i}`), mimeType })
      )
      const read = yield* pending
      assert.deepStrictEqual(read, [...rows].sort((a, b) => (a.hash < b.hash ? -1 : 1)).map((r) => r.row))
    }).pipe(inThrowawayDatabase(2, { encoding: "LATIN1" })))

  it.live("any bytes (no NUL, which text cannot hold) read back: the exact text when UTF-8, else their hex (property)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* sql`ALTER TABLE _nice_binary ALTER COLUMN mime_type TYPE varchar`
      const row = yield* insertBinary({ bytes: utf8("body"), mimeType: "a/b" })
      const utf8Text = fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }).map(utf8)
      const anyBytes = fc.uint8Array({ min: 1, minLength: 1, maxLength: 80 })
      const samples = fc.sample(fc.oneof(utf8Text, anyBytes, fc.constant(bytes("efbbbf746578742f78"))), 150)
      for (const value of samples) {
        if (value.includes(0)) continue
        yield* setMimeTypeBytes(row.hash, value)
        const [read] = yield* pending
        const valid = Buffer.from(value).toString("utf8")
        if (Buffer.from(valid, "utf8").equals(value)) {
          assert.deepStrictEqual([read!.mimeType, read!.mimeTypeNotUtf8], [valid, undefined], valid)
        } else {
          assert.strictEqual(read!.mimeTypeNotUtf8, Buffer.from(value).toString("hex"))
        }
      }
    }).pipe(inThrowawayDatabase(2, { encoding: "SQL_ASCII" })))

  it.live("a hash that is not UTF-8 fails its row (HashNotUtf8, naming the bytes); paging goes on past it", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      const rows = yield* Effect.forEach(
        Array.from({ length: 6 }, (_, i) => i),
        (i) => insertBinary({ bytes: utf8(`body ${i}`), mimeType: "a/b" })
      )
      const [bad, short] = [rows[2]!, rows[4]!]
      yield* sql`UPDATE _nice_binary SET hash = convert_from(${bytes("6162e4")}, 'SQL_ASCII') WHERE hash = ${bad.hash}`
      yield* sql`UPDATE _nice_binary SET hash = 'abc' WHERE hash = ${short.hash}`
      const read = yield* pending
      assert.strictEqual(read.length, rows.length, "every row, the bad one included, on pages of 2")
      const byOid = new Map(read.map((r) => [r.oid, r]))
      const badRead = byOid.get(bad.oid)!
      const padding = "20".repeat(37) // char(40): the value as stored, its padding kept
      assert.strictEqual(badRead.hashNotUtf8, "6162e4" + padding)
      assert.strictEqual(badRead.hash, "ab\uFFFD" + " ".repeat(37))
      const failed = yield* Effect.flip(checkRow(badRead))
      assert.strictEqual(failed.reason._tag, "HashNotUtf8")
      assert.include(failed.message, `bytes 6162e4${padding}, hex`)
      assert.deepStrictEqual(byOid.get(short.oid), { hash: "abc".padEnd(40, " "), oid: short.oid, size: 6, mimeType: "a/b" })
      for (const row of rows) {
        if (row !== bad && row !== short) assert.strictEqual(byOid.get(row.oid)!.hash, row.hash)
      }
    }).pipe(inThrowawayDatabase(2, { encoding: "SQL_ASCII" })))

  it.live("any hashes (any bytes but NUL, duplicates among them): every row is read exactly once, on pages of 1-3 (property)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable({ primaryKey: false })
      yield* sql`CREATE INDEX ON _nice_binary (hash)`
      const hexHash = fc.stringMatching(/^[0-9a-f]{40}$/).map(utf8)
      const anyBytes = fc.uint8Array({ min: 1, minLength: 1, maxLength: 40 })
      const near = fc.constantFrom(bytes("6162e4"), bytes("6162"), bytes("616220"), bytes("e4"), utf8("ab"))
      const tables = fc.sample(
        fc.record({
          hashes: fc.array(fc.oneof(hexHash, anyBytes, near), { minLength: 1, maxLength: 12 }),
          pageSize: fc.integer({ min: 1, max: 3 })
        }),
        40
      )
      const pad = (value: Uint8Array) => Buffer.concat([value, Buffer.alloc(40 - value.length, 0x20)])
      for (const { hashes, pageSize } of tables) {
        yield* sql`DELETE FROM _nice_binary`
        for (const [i, hash] of hashes.entries()) {
          yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data)
                     VALUES (convert_from(${hash}, 'SQL_ASCII'), 1, 'a/b', ${i + 1})`
        }
        const read = yield* Effect.gen(function*() {
          const source = yield* LoSource
          return yield* Stream.runCollect(source.rows)
        }).pipe(Effect.provide(PgLoSource.layer({ pageSize }).pipe(Layer.provide(Metrics.layer))))
        const seen = read.map((r) => r.oid).sort((a, b) => a! - b!)
        assert.deepStrictEqual(seen, hashes.map((_, i) => i + 1), `page size ${pageSize}, each row once`)
        for (const r of read) {
          const stored = pad(hashes[r.oid! - 1]!)
          const text = stored.toString("utf8")
          if (Buffer.from(text, "utf8").equals(stored)) assert.deepStrictEqual([r.hash, r.hashNotUtf8], [text, undefined])
          else assert.strictEqual(r.hashNotUtf8, stored.toString("hex"))
        }
      }
    }).pipe(inThrowawayDatabase(2, { encoding: "SQL_ASCII" })), 120_000)

  it.live("a hash column with a collation of its own (ICU): pages in its order, each row once; both cursors use its index", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* sql`ALTER TABLE _nice_binary ALTER COLUMN hash TYPE char(40) COLLATE "und-x-icu"`
      // upper and lower case: ICU orders them apart from the bytes ("abc..." < "ABD..." < "abe...")
      const hashes = ["abc", "ABD", "abe", "ABF", "0a", "0B"].map((p) => p + "0".repeat(40 - p.length))
      for (const [i, hash] of hashes.entries()) {
        yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data) VALUES (${hash}, 1, 'a/b', ${i + 1})`
      }
      const read = yield* Effect.gen(function*() {
        const source = yield* LoSource
        return yield* Stream.runCollect(source.rows)
      }).pipe(Effect.provide(PgLoSource.layer({ pageSize: 2 }).pipe(Layer.provide(Metrics.layer))))
      const ordered = yield* sql<{ readonly hash: string }>`SELECT hash FROM _nice_binary ORDER BY hash`
      assert.deepStrictEqual(read.map((r) => r.hash), ordered.map((r) => r.hash), "the column's order, each row once")
      assert.notDeepEqual(ordered.map((r) => r.hash), [...hashes].sort(), "ICU's order is not the bytes' order")
      yield* sql`SET enable_seqscan = off`
      for (const bytes of [utf8(hashes[1]!), Uint8Array.of(0x61, 0xe4)]) {
        const plan = yield* sql<{ readonly "QUERY PLAN": string }>`
          EXPLAIN SELECT b.data FROM _nice_binary b WHERE b.hash >= ${hashAfter(sql, bytes, "(0,1)")} ORDER BY b.hash`
        const text = plan.map((r) => r["QUERY PLAN"]).join("\n")
        assert.match(text, /Index (Only )?Scan (using|on) _nice_binary_pkey/, text)
        assert.match(text, /Index Cond: \(hash >= /, text)
      }
    }).pipe(inThrowawayDatabase(1)))
})

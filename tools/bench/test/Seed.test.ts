import { assert, describe, it } from "@effect/vitest"
import { ThrowawayDatabase } from "@lo-migrate/postgres/testing"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { pgLayer } from "../src/Db.ts"
import { makeObjects, parseMix } from "../src/Mix.ts"
import { seed } from "../src/Seed.ts"

const MiB = 1024 * 1024

interface Row {
  readonly hash: string
  readonly size: bigint
  readonly mime_type: string | null
  readonly actual_sha1: string
  readonly actual_size: number
}

/** Seeds a fresh (throwaway) database with `mix`, returns every row with what its large object really hashes to. */
const seedAndRead = (mixText: string, seedValue: number, chunkedAbove: number) =>
  Effect.scoped(Effect.gen(function*() {
    const url = Redacted.value((yield* ThrowawayDatabase.make).url)
    const mix = parseMix(mixText)
    const objects = makeObjects(mix, seedValue)
    return yield* Effect.gen(function*() {
      const result = yield* seed({ seed: seedValue, mix, objects, chunkedAbove, batchBytes: 2 * MiB })
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<Row>`
        SELECT hash, size, mime_type,
               encode(digest(lo_get(data), 'sha1'), 'hex') AS actual_sha1, length(lo_get(data)) AS actual_size
        FROM _nice_binary ORDER BY hash`
      const [compressed] = yield* sql<{ readonly stored: bigint }>`
        SELECT sum(length(data))::int8 AS stored FROM pg_largeobject`
      return { objects, result, rows, stored: Number(compressed!.stored) }
    }).pipe(Effect.provide(pgLayer(url)))
  }))

describe("seeding (real PostgreSQL)", () => {
  it.live("every row's hash and size match its large object, including part-by-part written ones", () =>
    Effect.gen(function*() {
      // 2.5 MiB objects above the 1 MiB threshold take the lo_put + read-back path
      const a = yield* seedAndRead("40:1-64K,3:1M-2M,2:2560K", 11, MiB)
      assert.strictEqual(a.rows.length, 45)
      assert.strictEqual(a.result.objects, 45)
      for (const r of a.rows) {
        assert.strictEqual(r.hash, r.actual_sha1)
        assert.strictEqual(Number(r.size), r.actual_size)
      }
      // the sizes are the mix's sizes (as a multiset), the mime types too
      const sorted = (xs: ReadonlyArray<number>) => [...xs].sort((x, y) => x - y)
      assert.deepStrictEqual(sorted(a.rows.map((r) => Number(r.size))), sorted(a.objects.map((o) => o.size)))
      assert.strictEqual(a.rows.filter((r) => r.mime_type === null).length, a.objects.filter((o) => o.mimeType === null).length)
      // incompressible: pg_largeobject holds every byte (no pglz gain)
      assert.strictEqual(a.stored, a.result.bytes)

      // reproducible: the same seed gives byte-identical objects, another seed different ones
      const b = yield* seedAndRead("40:1-64K,3:1M-2M,2:2560K", 11, 4 * MiB)
      assert.deepStrictEqual(b.rows.map((r) => r.hash), a.rows.map((r) => r.hash))
      const c = yield* seedAndRead("40:1-64K,3:1M-2M,2:2560K", 12, MiB)
      const aHashes = new Set(a.rows.map((r) => r.hash))
      assert.isTrue(c.rows.every((r) => !aHashes.has(r.hash)))
    }), 120_000)
})

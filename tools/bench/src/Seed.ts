/**
 * Seeds `_nice_binary` with a mix of large objects, generated server-side so that seeding costs no client round trip
 * per row and no bytes over the wire.
 *
 * The bytes are a deterministic function of (seed, object id, size), defined in SQL:
 * - a 2 MiB pool of pseudo-random bytes, the concatenated SHA-256 of `"<seed>:<i>"` for i = 0..65535;
 * - object `id` is made of 1 MiB parts; part k is a pool slice starting at a position derived from (id, k); part 0
 *   starts with SHA-256(`"<seed>:<id>"`) so that every object is distinct.
 * The result is incompressible (as real binaries mostly are), so neither pg_largeobject's page compression nor the
 * network flatters any method. Each batch is one INSERT … SELECT that builds the bytes, creates the large object with
 * `lo_from_bytea`, and sets `hash = digest(bytes, 'sha1')` (pgcrypto) and `size = length(bytes)` in the same statement.
 *
 * Objects above `chunkedAbove` (a bytea cannot exceed 1 GiB) are written part by part with `lo_put` in one statement,
 * then read back in chunks to compute their SHA-1 on the client.
 */
import { groupBySize } from "@lo-migrate/core"
import { createNiceBinaryTable } from "@lo-migrate/postgres/testing"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { createHash } from "node:crypto"
import type { Mix, ObjectSpec } from "./Mix.ts"

export const PART = 1024 * 1024

export const schemaStatements = (seed: number): ReadonlyArray<string> => [
  // PostgreSQL has sha256() built in but no sha1(): pgcrypto's digest() provides it (contrib, present in Debian's server).
  `CREATE EXTENSION IF NOT EXISTS pgcrypto`,
  `CREATE UNLOGGED TABLE _bench_pool (seed int NOT NULL, p bytea NOT NULL)`,
  `ALTER TABLE _bench_pool ALTER COLUMN p SET STORAGE EXTERNAL`,
  `INSERT INTO _bench_pool
     SELECT ${seed | 0}, string_agg(sha256(convert_to('${seed | 0}:' || i::text, 'UTF8')), ''::bytea ORDER BY i)
     FROM generate_series(0, 65535) AS i`,
  `CREATE FUNCTION bench_part(id bigint, size bigint, k bigint) RETURNS bytea LANGUAGE sql STABLE AS $$
     SELECT CASE WHEN k = 0
       THEN substring(sha256(convert_to(seed::text || ':' || id::text, 'UTF8'))
                      || substring(p FROM 33 + x.off FOR greatest(x.len - 32, 0)) FROM 1 FOR x.len)
       ELSE substring(p FROM 1 + x.off FOR x.len) END
     FROM _bench_pool,
          LATERAL (SELECT least(${PART}, size - k * ${PART})::int AS len,
                          ((id * 2654435761 + k * 2246822519) % ${PART})::int AS off) AS x
   $$`,
  `CREATE FUNCTION bench_bytes(id bigint, size bigint) RETURNS bytea LANGUAGE sql STABLE AS $$
     SELECT coalesce(string_agg(bench_part(id, size, k), ''::bytea ORDER BY k), ''::bytea)
     FROM generate_series(0::bigint, (size + ${PART - 1}) / ${PART} - 1) AS k
   $$`,
  `CREATE TABLE _bench_meta (seed int NOT NULL, mix text NOT NULL, objects int NOT NULL, bytes bigint NOT NULL)`
]

export interface SeedOptions {
  readonly seed: number
  readonly mix: Mix
  readonly objects: ReadonlyArray<ObjectSpec>
  /** Bytes per INSERT statement (small objects are batched up to this). */
  readonly batchBytes?: number
  /** Statements in flight. */
  readonly concurrency?: number
  /** Objects larger than this are written part by part (bytea values cannot reach 1 GiB). */
  readonly chunkedAbove?: number
  readonly onProgress?: (done: number, total: number) => void
}

export interface SeedResult {
  readonly objects: number
  readonly bytes: number
}

/** Splits objects into batches of at most `maxBytes` (an object bigger than that gets a batch of its own). */
export const batches = <A extends { readonly size: number }>(
  items: ReadonlyArray<A>,
  maxBytes: number,
  maxCount = 1000
): ReadonlyArray<ReadonlyArray<A>> => groupBySize(items, (item) => item.size, { maxBytes, maxCount })

export const installSchema = Effect.fn("Seed.installSchema")(function*(seed: number) {
  const sql = yield* SqlClient.SqlClient
  // the application's table, as the tests create it (the mix has rows without a mime type)
  yield* createNiceBinaryTable({ nullableMimeType: true })
  for (const s of schemaStatements(seed)) yield* sql.unsafe(s)
})

const insertBatch = Effect.fnUntraced(function*(batch: ReadonlyArray<ObjectSpec>) {
  const sql = yield* SqlClient.SqlClient
  const ids = batch.map((o) => o.id)
  const sizes = batch.map((o) => o.size)
  // '' stands for NULL: sql-pg cannot infer the type of an all-NULL array (the mix never produces '')
  const mimes = batch.map((o) => o.mimeType ?? "")
  yield* sql`
    WITH g AS MATERIALIZED (
      SELECT nullif(t.mime, '') AS mime, bench_bytes(t.id, t.size) AS b
      FROM unnest(${ids}::int8[], ${sizes}::int8[], ${mimes}::text[]) AS t(id, size, mime)
    )
    INSERT INTO _nice_binary (hash, size, mime_type, data)
    SELECT encode(digest(g.b, 'sha1'), 'hex'), length(g.b), g.mime, lo_from_bytea(0, g.b) FROM g`
})

const READ_BACK = 8 * PART

/** A huge object: `lo_put` part by part in one statement, then read back to hash it. */
const insertChunked = Effect.fnUntraced(function*(o: ObjectSpec) {
  const sql = yield* SqlClient.SqlClient
  const [created] = yield* sql<{ readonly oid: number }>`SELECT lo_create(0) AS oid`
  const oid = created!.oid
  const parts = Math.ceil(o.size / PART)
  yield* sql`SELECT count(lo_put(${oid}, k * ${PART}, bench_part(${o.id}, ${o.size}, k))) AS n
             FROM generate_series(0::bigint, ${parts - 1}::bigint) AS k`
  const sha1 = createHash("sha1")
  for (let offset = 0; offset < o.size; offset += READ_BACK) {
    const [row] = yield* sql<{ readonly c: Uint8Array }>`SELECT lo_get(${oid}, ${offset}, ${READ_BACK}) AS c`
    sha1.update(row!.c)
  }
  yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data)
             VALUES (${sha1.digest("hex")}, ${o.size}, ${o.mimeType}, ${oid})`
})

/** Installs the schema and the generator, then seeds every object. Needs a SqlClient on the bench database. */
export const seed = Effect.fn("Seed.seed")(function*(options: SeedOptions) {
  const sql = yield* SqlClient.SqlClient
  yield* installSchema(options.seed)
  const chunkedAbove = options.chunkedAbove ?? 256 * PART
  const small = options.objects.filter((o) => o.size <= chunkedAbove)
  const huge = options.objects.filter((o) => o.size > chunkedAbove)
  const total = options.objects.length
  let done = 0
  const progress = (n: number) => Effect.sync(() => { done += n; options.onProgress?.(done, total) })
  yield* Effect.forEach(
    batches(small, options.batchBytes ?? 16 * PART, 500),
    (b) => Effect.andThen(insertBatch(b), progress(b.length)),
    { concurrency: options.concurrency ?? 2, discard: true }
  )
  yield* Effect.forEach(huge, (o) => Effect.andThen(insertChunked(o), progress(1)), { discard: true })
  const bytes = options.objects.reduce((n, o) => n + o.size, 0)
  yield* sql`INSERT INTO _bench_meta (seed, mix, objects, bytes) VALUES (${options.seed}, ${options.mix.name}, ${total}, ${bytes})`
  yield* sql.unsafe("ANALYZE _nice_binary")
  return { objects: total, bytes } satisfies SeedResult
})

/** The seed and mix a kept database was seeded with, if it was. */
export const seededWith = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly seed: number; readonly mix: string; readonly objects: number; readonly bytes: bigint }>`
    SELECT seed, mix, objects, bytes FROM _bench_meta`.pipe(Effect.orElseSucceed(() => []))
  const r = rows[0]
  return r === undefined ? undefined : { seed: r.seed, mix: r.mix, objects: r.objects, bytes: Number(r.bytes) }
})

/** Marks every row as not migrated again (between two migrator runs). */
export const resetSha2 = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`UPDATE _nice_binary SET sha2 = NULL WHERE sha2 IS NOT NULL`
  yield* sql.unsafe("VACUUM ANALYZE _nice_binary")
})

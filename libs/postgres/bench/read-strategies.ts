/**
 * Measures ways of reading large objects, to choose the reader's strategy:
 *
 *   A. chunked `lo_get(oid, offset, len)` through @effect/sql-pg, no transaction
 *   B. `lo_open` + `loread` in a read-only transaction through @effect/sql-pg (what PgLoReader does)
 *   C. node-postgres + pg-large-object (`openAndReadableStream`) in BEGIN READ ONLY ... COMMIT, separate pg.Client
 *   and for small objects: one by one (B, plain `lo_get(oid)`, C) versus one `lo_get` over an array of oids.
 *
 * Every variant hashes what it reads (SHA-256) and checks it, so no variant can win by skipping work.
 * Run: cd libs/postgres && npx node bench/read-strategies.ts   (PG_TEST_URL as for the tests)
 */
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { createHash } from "node:crypto"
import pg from "pg"
import { LargeObjectManager } from "pg-large-object"
import { createNiceBinaryTable, insertBinary, type InsertedBinary, ThrowawayDatabase } from "../src/testing.ts"

const MiB = 1024 * 1024
const bigSize = Number(process.env["BENCH_BIG_MIB"] ?? 64) * MiB
const smallCount = Number(process.env["BENCH_SMALL_COUNT"] ?? 2000)
const smallSize = Number(process.env["BENCH_SMALL_SIZE"] ?? 8192)
const rounds = Number(process.env["BENCH_ROUNDS"] ?? 3)

const time = <A, E, R>(label: string, bytes: number, self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const samples: Array<number> = []
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now()
      yield* self
      samples.push(performance.now() - t0)
    }
    samples.sort((a, b) => a - b)
    const median = samples[Math.floor(samples.length / 2)]!
    const mibs = bytes / MiB / (median / 1000)
    console.log(`${label.padEnd(58)} median ${median.toFixed(1).padStart(8)} ms  ${mibs.toFixed(1).padStart(7)} MiB/s`)
    return median
  })

const check = (expected: string, hash: ReturnType<typeof createHash>) => {
  const got = hash.digest("hex")
  if (got !== expected) throw new Error(`hash mismatch ${got} != ${expected}`)
}

// A: chunked lo_get without a transaction
const loGetChunked = (o: InsertedBinary, chunk: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const h = createHash("sha256")
    for (let offset = 0;; offset += chunk) {
      const [r] = yield* sql<{ readonly c: Uint8Array }>`SELECT lo_get(${o.oid}, ${offset}, ${chunk}) AS c`
      h.update(r!.c)
      if (r!.c.byteLength < chunk) break
    }
    check(o.digests.sha256, h)
  })

// B: lo_open/loread in a read-only transaction
const loRead = (o: InsertedBinary, chunk: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`SET TRANSACTION READ ONLY`
      const [f] = yield* sql<{ readonly fd: number }>`SELECT lo_open(${o.oid}, 262144) AS fd`
      const h = createHash("sha256")
      for (;;) {
        const [r] = yield* sql<{ readonly c: Uint8Array }>`SELECT loread(${f!.fd}, ${chunk}) AS c`
        h.update(r!.c)
        if (r!.c.byteLength < chunk) break
      }
      check(o.digests.sha256, h)
    }))
  })

// C: pg + pg-large-object
const pgLargeObject = (client: pg.Client, o: InsertedBinary, chunk: number) =>
  Effect.tryPromise(async () => {
    await client.query("BEGIN READ ONLY")
    const [, stream] = await new LargeObjectManager({ pg: client }).openAndReadableStreamAsync(o.oid!, chunk)
    const h = createHash("sha256")
    for await (const c of stream) h.update(c as Buffer)
    await client.query("COMMIT")
    check(o.digests.sha256, h)
  })

const smallOneByOneLoGet = (objects: ReadonlyArray<InsertedBinary>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const o of objects) {
      const [r] = yield* sql<{ readonly c: Uint8Array }>`SELECT lo_get(${o.oid}) AS c`
      check(o.digests.sha256, createHash("sha256").update(r!.c))
    }
  })

const smallBatch = (objects: ReadonlyArray<InsertedBinary>, batch: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (let i = 0; i < objects.length; i += batch) {
      const part = objects.slice(i, i + batch)
      const rows = yield* sql<{ readonly i: number; readonly c: Uint8Array | null }>`
        SELECT t.i::int4 AS i, CASE WHEN m.oid IS NULL THEN NULL ELSE lo_get(t.oid) END AS c
        FROM unnest(${part.map((o) => o.oid)}::oid[]) WITH ORDINALITY AS t(oid, i)
        LEFT JOIN pg_largeobject_metadata m ON m.oid = t.oid`
      for (const r of rows) check(part[r.i - 1]!.digests.sha256, createHash("sha256").update(r.c!))
    }
  })

const program = Effect.gen(function*() {
  const db = yield* ThrowawayDatabase
  yield* createNiceBinaryTable()
  console.log(`seeding: 1 x ${bigSize / MiB} MiB, ${smallCount} x ${smallSize} B ...`)
  const big = yield* insertBinary({ bytes: { size: bigSize, seed: 1 }, mimeType: "x/big" })
  const small: Array<InsertedBinary> = []
  for (let i = 0; i < smallCount; i++) {
    small.push(yield* insertBinary({ bytes: { size: smallSize, seed: 1000 + i }, mimeType: "x/small" }))
  }
  const client = new pg.Client({ connectionString: Redacted.value(db.url) })
  client.on("error", () => {}) // the database is dropped WITH (FORCE) at the end
  yield* Effect.acquireRelease(Effect.promise(() => client.connect()), () => Effect.promise(() => client.end()))
  const smallBytes = smallCount * smallSize

  console.log(`\n-- one ${bigSize / MiB} MiB object, sequential, ${rounds} rounds`)
  const chunks = (process.env["BENCH_CHUNKS_KIB"] ?? "64,256,1024,4096").split(",").map((k) => Number(k) * 1024)
  for (const chunk of chunks) {
    const k = `${chunk / 1024} KiB`
    yield* time(`A lo_get(oid, off, ${k}) no tx`, bigSize, loGetChunked(big, chunk))
    yield* time(`B lo_open+loread ${k} in read-only tx (sql-pg)`, bigSize, loRead(big, chunk))
    yield* time(`C pg-large-object stream ${k}`, bigSize, pgLargeObject(client, big, chunk))
  }

  if (process.env["BENCH_SKIP_SMALL"] === "1") return
  console.log(`\n-- ${smallCount} objects of ${smallSize} B, sequential`)
  yield* time("B one by one: lo_open+loread in a tx each", smallBytes, Effect.forEach(small, (o) => loRead(o, MiB)))
  yield* time("  one by one: lo_get(oid), no tx", smallBytes, smallOneByOneLoGet(small))
  yield* time("C one by one: pg-large-object", smallBytes, Effect.forEach(small, (o) => pgLargeObject(client, o, MiB)))
  for (const batch of [10, 50, 100, 500]) {
    yield* time(`  batch of ${batch}: lo_get over unnest(oid[])`, smallBytes, smallBatch(small, batch))
  }
  console.log(`\n-- the same, 4 fibers in parallel (pool of 4)`)
  const par = <A, E, R>(f: (part: ReadonlyArray<InsertedBinary>) => Effect.Effect<A, E, R>) =>
    Effect.forEach([0, 1, 2, 3], (k) => f(small.filter((_, i) => i % 4 === k)), { concurrency: 4 })
  yield* time("B one by one x4", smallBytes, par((p) => Effect.forEach(p, (o) => loRead(o, MiB))))
  yield* time("  batch of 100 x4", smallBytes, par((p) => smallBatch(p, 100)))
  yield* time(
    `B ${bigSize / MiB} MiB x4 in parallel, 1 MiB chunks`,
    4 * bigSize,
    Effect.all([0, 1, 2, 3].map(() => loRead(big, MiB)), { concurrency: 4 })
  )
})

// Wire the layers: a throwaway database and a 4-connection pool on it.
const main = program.pipe(Effect.scoped, Effect.provide(ThrowawayDatabase.layerWithClient(4)))
Effect.runPromise(main).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)

/**
 * Throughput of the adapters as shipped (PgLoReader, PgHashCommitter), not of raw SQL:
 *   - PgLoReader.read on one big object (spilled to a temp file, and in memory), per chunk size
 *   - small objects: PgLoReader.read one by one versus PgLoReader.readBatch, per batch size
 *   - PgHashCommitter.commit: rows per second per batch size
 *
 * Run: cd libs/postgres && npx node bench/adapters.ts   (BENCH_BIG_MIB, BENCH_SMALL_COUNT, BENCH_SMALL_SIZE, BENCH_ROWS)
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { BodyCut, HashCommitter, LoReader, type Sha256Hex } from "@lo-migrate/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as NodeOs from "node:os"
import * as PgHashCommitter from "../src/PgHashCommitter.ts"
import * as PgLoReader from "../src/PgLoReader.ts"
import { createNiceBinaryTable, insertBinary, type InsertedBinary, ThrowawayDatabase } from "../src/testing.ts"

const KiB = 1024
const MiB = 1024 * KiB
const bigSize = Number(process.env["BENCH_BIG_MIB"] ?? 64) * MiB
const smallCount = Number(process.env["BENCH_SMALL_COUNT"] ?? 2000)
const smallSize = Number(process.env["BENCH_SMALL_SIZE"] ?? 8 * KiB)
const commitRows = Number(process.env["BENCH_ROWS"] ?? 20000)

const median = <E, R>(label: string, bytes: number, units: string, count: number, self: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    const samples: Array<number> = []
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now()
      yield* self
      samples.push(performance.now() - t0)
    }
    const m = samples.sort((a, b) => a - b)[1]!
    const rate = bytes > 0 ? `${(bytes / MiB / (m / 1000)).toFixed(1).padStart(7)} MiB/s` : ""
    console.log(`${label.padEnd(52)} ${m.toFixed(0).padStart(7)} ms  ${rate}  ${(count / (m / 1000)).toFixed(0).padStart(7)} ${units}/s`)
  })

const reader = (chunkSize: number, inMemMax: number) =>
  Effect.map(Layer.build(PgLoReader.layer({ chunkSize, inMemMax, tempDir: NodeOs.tmpdir() }).pipe(Layer.provide([NodeFileSystem.layer, BodyCut.whole]))), (ctx) =>
    Context.get(ctx, LoReader))

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* createNiceBinaryTable()
  console.log(`seeding 1 x ${bigSize / MiB} MiB and ${smallCount} x ${smallSize} B ...`)
  const big = yield* insertBinary({ bytes: { size: bigSize, seed: 1 }, mimeType: "x/big" })
  const small: Array<InsertedBinary> = []
  for (let i = 0; i < smallCount; i++) {
    small.push(yield* insertBinary({ bytes: { size: smallSize, seed: 100 + i }, mimeType: "x/small" }))
  }

  console.log(`\n-- PgLoReader.read, one ${bigSize / MiB} MiB object`)
  for (const chunk of [128 * KiB, 256 * KiB, 512 * KiB, MiB]) {
    const r = yield* reader(chunk, MiB)
    yield* median(`spilled to ${NodeOs.tmpdir()}, chunk ${chunk / KiB} KiB`, bigSize, "obj", 1, Effect.flatMap(r.read(big.row), (o) => o.release))
  }
  const inMem = yield* reader(512 * KiB, bigSize)
  yield* median("in memory, chunk 512 KiB", bigSize, "obj", 1, inMem.read(big.row))

  console.log(`\n-- ${smallCount} objects of ${smallSize} B`)
  const r = yield* reader(512 * KiB, MiB)
  const smallBytes = smallCount * smallSize
  yield* median("read one by one", smallBytes, "obj", smallCount, Effect.forEach(small, (o) => r.read(o.row)))
  yield* median(
    "read one by one, 4 in parallel",
    smallBytes,
    "obj",
    smallCount,
    Effect.forEach(small, (o) => r.read(o.row), { concurrency: 4 })
  )
  for (const batch of [10, 50, 100, 250, 1000]) {
    const batches: Array<Array<InsertedBinary>> = []
    for (let i = 0; i < small.length; i += batch) batches.push(small.slice(i, i + batch))
    yield* median(
      `readBatch of ${batch}`,
      smallBytes,
      "obj",
      smallCount,
      Effect.forEach(batches, (b) => r.readBatch(b.map((o) => o.row)))
    )
  }

  console.log(`\n-- PgHashCommitter.commit, ${commitRows} rows (table of ${commitRows + smallCount + 1} rows)`)
  yield* sql`
    INSERT INTO _nice_binary (hash, size, mime_type, data)
    SELECT md5(i::text) || left(md5('x' || i), 8), 1, 'a/b', 1 FROM generate_series(1, ${commitRows}) AS i`
  yield* sql`VACUUM ANALYZE _nice_binary`
  const hashes = (yield* sql<{ readonly hash: string }>`
    SELECT hash FROM _nice_binary WHERE data = 1 ORDER BY hash`).map((h) => h.hash)
  const committer = Context.get(yield* Layer.build(PgHashCommitter.layer), HashCommitter)
  for (const batch of [1, 10, 100, 500, 1000]) {
    yield* sql`UPDATE _nice_binary SET sha2 = NULL WHERE data = 1`
    const n = batch === 1 ? Math.min(2000, hashes.length) : hashes.length
    const t0 = performance.now()
    for (let i = 0; i < n; i += batch) {
      yield* committer.commit(
        hashes.slice(i, Math.min(n, i + batch)).map((hash, k) => ({
          hash,
          oid: 1,
          sha256: (i + k).toString(16).padStart(64, "0") as Sha256Hex
        }))
      )
    }
    const ms = performance.now() - t0
    console.log(`commit batches of ${String(batch).padEnd(5)} ${String(n).padStart(6)} rows ${ms.toFixed(0).padStart(7)} ms  ${(n / (ms / 1000)).toFixed(0).padStart(7)} rows/s`)
  }
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(ThrowawayDatabase.layerWithClient(4)))).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)

/**
 * The limits the migrator is judged against, measured on the same data by `worker.ts`: PostgreSQL's read limit (and
 * the transfer without hashing), the hash rate, S3's write limit, the combined limit (read, hash and put with no
 * pipeline around them) and the naive one-row-at-a-time baseline.
 */
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { exportObjects, measureRclone } from "./Rclone.ts"
import { best, type Measurement } from "./Measurement.ts"
import { runWorker } from "./Runs.ts"
import { resetSha2 } from "./Seed.ts"
import { bucketName, onDb, record, type Session } from "./Session.ts"

/** PostgreSQL's read limit by method and connections, then the best connection count without hashing. */
export const measurePgLimits = Effect.fn("Limits.pg")(function*(session: Session) {
  const { readConcurrency } = session.options
  const read = { url: session.dbUrl, chunk: 4 * 1024 * 1024, batchBytes: 4 * 1024 * 1024, batchCount: 256 }
  for (const method of ["lo_get", "loread"] as const) {
    for (const concurrency of readConcurrency) {
      yield* record(session, yield* runWorker("pg-read", { ...read, method, concurrency }, "pg-limit"))
    }
  }
  // the transfer alone, without hashing: how much of the read limit is the client's hashing
  const transfer = yield* runWorker(
    "pg-read",
    { ...read, method: "lo_get", concurrency: Math.max(...readConcurrency), hash: false },
    "pg-limit"
  )
  yield* record(session, transfer.map((m): Measurement => ({ ...m, kind: "diagnostic" })))
})

export const measureHash = Effect.fn("Limits.hash")(function*(session: Session) {
  yield* record(session, yield* runWorker("hash", { bytes: Math.min(session.bytes, 1024 ** 3) }, "diagnostic"))
})

/** The S3 limit's best concurrency measured so far (32 before any). */
export const bestS3Concurrency = (session: Session) =>
  Ref.get(session.measurements).pipe(
    Effect.map((ms) => Number(/(\d+) in flight/.exec(best(ms, "s3-limit")?.name ?? "")?.[1] ?? 32))
  )

/** The S3 write limit, probing `concurrencies` on a `probeFraction` sample when there are several. */
export const measureS3 = (session: Session, suffix: string, concurrencies: ReadonlyArray<number>, probeFraction: number) =>
  runWorker("s3-put", { url: session.dbUrl, bucket: bucketName(session, suffix), concurrencies, probeFraction }, "s3-limit")

/** The combined limit at the S3 limit's best concurrency so far. */
export const measureCombined = Effect.fn("Limits.combined")(function*(session: Session, suffix: string) {
  return yield* runWorker("combined", {
    url: session.dbUrl,
    bucket: bucketName(session, suffix),
    readers: 2,
    storers: yield* bestS3Concurrency(session),
    commitChunk: 500
  }, "combined-limit")
})

/** The naive baseline's sample size: its rate is steady, so more rows only lengthen the bench. */
const naiveSampleRows = 5000

const firstRound = (ms: ReadonlyArray<Measurement>) => ms.map((m): Measurement => ({ ...m, round: 1 }))

/** The first round of the S3 and combined limits, then the naive baseline (per `--only`). */
export const measureS3Limits = Effect.fn("Limits.s3")(function*(session: Session) {
  const { only, quick, s3Concurrency } = session.options
  if (only.has("s3")) {
    const ms = yield* measureS3(session, "s3", s3Concurrency, quick ? 1 : 0.1)
    yield* record(session, ms.map((m): Measurement => m.kind === "s3-limit" ? { ...m, round: 1 } : m))
  }
  if (only.has("combined")) yield* record(session, firstRound(yield* measureCombined(session, "combined")))
  if (only.has("rclone")) {
    const dir = join(tmpdir(), `lo-bench-rclone-${session.runId}`)
    const ms = yield* measureRclone({
      s3: session.s3!,
      dir,
      bucketPrefix: bucketName(session, "").replace(/-$/, ""),
      transfers: [32, 64],
      exportOnce: onDb(session, exportObjects(dir))
    })
    yield* record(session, ms)
  }
  if (only.has("naive")) {
    // the combined limit recorded sha2 for every row: the naive script must find them all to do again
    yield* onDb(session, resetSha2)
    // about 5,000 rows, stratified by size, are enough for a one-row-at-a-time rate (see Naive.ts)
    const every = Math.max(1, Math.floor(session.objects.length / naiveSampleRows))
    yield* record(session, yield* runWorker("naive", { url: session.dbUrl, bucket: bucketName(session, "naive"), every }, "naive"))
  }
})

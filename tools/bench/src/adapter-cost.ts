/**
 * What the live adapters cost per object beyond the bare operation each one wraps (issue 16): the same inputs through
 * the adapter and through the bare call, alternating, in one process; the process's CPU time (user + system,
 * `process.cpuUsage`) per object is printed, the median of the repetitions (the first pair is a warm-up).
 *
 * - `s3`: `S3ObjectStore.put` of in-memory bodies (1-256 KiB, Content-MD5 and SHA-256 given, as the reader gives them)
 *   against a bare `client.send(PutObjectCommand)` with the same headers (`If-None-Match: *`, Content-Type/metadata,
 *   the signed payload SHA-256) on the store's own client (`S3ClientService`), and on the bench's client (`makeClient`,
 *   the combined client's); and the bare PUT of the same bodies each copied into a buffer of its own (what a reader
 *   that copies bodies out of the driver's receive buffer hands the store); the bare PUT as the store sent it before
 *   session 8 (a middleware chain resolved per request: S3Send.ts), and on a client with the store's options but the
 *   SDK's own SHA-256 (SigningHash.ts). The server is a child process that answers 200 at once, so its CPU is not
 *   counted; with S3_ENDPOINT etc. set and `ceph` as the 5th argument, the real gateway instead (a fresh bucket,
 *   deleted after).
 * - `read`: `PgLoReader.readBatch` over the rows of a seeded database (the bench's `--db`, read only) in batches of
 *   `BATCH` rows, against the bare batch statement (`lo_get` over `unnest`) + the same hashing (`makeDigester`), both
 *   on the migrator's pool (`PgDatabase.layer` with the stall guard, as `Live.ts` builds it); the bare batch with a
 *   copy of each body; and the reader over the units the pipeline makes with its defaults (`ReadUnits.ts`: at most 64
 *   rows of at most 128 KiB a batch, every bigger object a `read` of its own).
 * - `commit`: `PgHashCommitter.commit` of batches of `BATCH` entries against a bare `UPDATE ... FROM unnest`, in a
 *   throwaway database of OBJECTS rows (sha2 reset between repetitions, outside the timed part).
 *
 *   cd tools/bench && npx node --conditions=development src/adapter-cost.ts [s3|read|commit|all=all] [OBJECTS=2000]
 *     [REPS=5] [DB=bench5k] [local|ceph=local]
 *
 * `ONLY=1,3` runs only those variants of each part (1-based), e.g. under `node --cpu-prof`.
 * PostgreSQL: $PG_TEST_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the server and admin database.
 */
import { PutObjectCommand, type S3Client, type S3ClientConfig } from "@aws-sdk/client-s3"
import { type CommitEntry, groupBySize, makeDigester, ObjectStore, type PutRequest, type Sha256Hex, type SourceRow } from "@lo-migrate/core"
import { PgDatabase, PgHashCommitter, PgLoReader } from "@lo-migrate/postgres"
import {
  createDatabase,
  createNiceBinaryTable,
  databaseUrl,
  dropDatabase,
  testAdminUrl
} from "@lo-migrate/postgres/testing"
import { makeTrimmedClient, s3ClientOptions, S3ClientService, S3ObjectStore, sendS3 } from "@lo-migrate/s3"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { createHash, randomFillSync } from "node:crypto"
import { tmpdir } from "node:os"
import { compare } from "./CpuCompare.ts"
import { localServer } from "./LocalS3Server.ts"
import { createBucket, deleteBucket, makeClient, type S3Env, s3EnvFrom } from "./S3.ts"

const [partArg = "all", objectsArg = "2000", repsArg = "5", dbArg = "bench5k", targetArg = "local"] = process.argv.slice(2)
const objects = Number(objectsArg)
const reps = Number(repsArg)
if (!["s3", "read", "commit", "all"].includes(partArg) || !(objects > 0 && reps > 0) || !["local", "ceph"].includes(targetArg)) {
  console.error("usage: adapter-cost.ts [s3|read|commit|all] [OBJECTS=2000] [REPS=5] [DB=bench5k] [local|ceph]")
  process.exit(2)
}
const IN_FLIGHT = 32
const BATCH = 100
const adminUrl = testAdminUrl()

// ---- S3 ------------------------------------------------------------------------------------------------------------

const sizeOf = (i: number) => 1024 + ((i * 7919) % (255 * 1024))
const mimeOf = (i: number) => (["image/png", "application/pdf", null, "text/plain; charset=\"x\""] as const)[i % 4]!

const s3Part = Effect.fnUntraced(function*() {
  const env: S3Env = targetArg === "ceph"
    ? (s3EnvFrom(process.env) ?? (yield* Effect.die(new Error("S3_ENDPOINT etc. must be set for ceph: set -a; . /tmp/ceph.env"))))
    : { endpoint: (yield* localServer).endpoint, region: "us-east-1", accessKeyId: "bench", secretAccessKey: "bench-secret" }
  const bucket = `lo-bench-adapter-cost-${process.pid}`
  const storeConfig = {
    bucket,
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    accessKeyId: Redacted.make(env.accessKeyId),
    secretAccessKey: Redacted.make(env.secretAccessKey),
    partSize: 20 * 1024 * 1024,
    maxSockets: IN_FLIGHT,
    headBeforePut: "resume" as const
  }
  const benchClient = yield* Effect.acquireRelease(Effect.sync(() => makeClient(env, IN_FLIGHT)), (c) => Effect.sync(() => c.destroy()))
  if (targetArg === "ceph") {
    yield* createBucket(benchClient, bucket)
    yield* Effect.addFinalizer(() => Effect.ignore(deleteBucket(benchClient, bucket)))
  }
  yield* s3Measure(env, bucket, benchClient).pipe(Effect.provide(S3ObjectStore.layerWithClient(storeConfig)))
}, Effect.scoped)

const s3Measure = Effect.fnUntraced(function*(env: S3Env, bucket: string, benchClient: S3Client) {
  const { client: storeClient, config: storeConfig } = yield* S3ClientService
  const store = yield* ObjectStore
  yield* store.check

  const largest = 256 * 1024
  const pool = Buffer.allocUnsafe(largest + objects)
  randomFillSync(pool)
  const requests: ReadonlyArray<PutRequest> = Array.from({ length: objects }, (_, i) => {
    // a plain Uint8Array view, as the reader hands out (not a Buffer)
    const bytes = new Uint8Array(pool.buffer, pool.byteOffset + i, sizeOf(i))
    return {
      key: createHash("sha256").update(bytes).digest("hex") as Sha256Hex,
      contentType: mimeOf(i),
      size: bytes.byteLength,
      md5Base64: createHash("md5").update(bytes).digest("base64"),
      body: { _tag: "InMemory", bytes }
    }
  })
  // on the real gateway every run starts from an empty bucket (a conditional PUT on an existing key would add a HEAD)
  const emptyBucket = targetArg === "ceph"
    ? Effect.asVoid(Effect.andThen(deleteBucket(benchClient, bucket), createBucket(benchClient, bucket)))
    : Effect.void

  const putCommand = (request: PutRequest) =>
    new PutObjectCommand({
      Bucket: bucket,
      Key: request.key,
      Body: (request.body as { bytes: Uint8Array }).bytes,
      ContentLength: request.size,
      ContentMD5: request.md5Base64,
      ...(request.contentType === null ? {} : { ContentType: request.contentType }),
      IfNoneMatch: "*"
    })
  // as the store sends it: through the client's cached middleware chain (S3Send.ts)
  const bare = (client: S3Client) => (request: PutRequest) =>
    Effect.tryPromise({
      try: (signal) => sendS3(client, putCommand(request), { abortSignal: signal, payloadSha256: request.key }),
      catch: (cause) => new Error(`PUT ${request.key}: ${String(cause)}`)
    })
  // as the store sent it until session 8: the abort signal as the send's option and the payload hash as middleware of
  // the command's own, so that the SDK resolves a middleware chain for every request
  const perRequestChain = (client: S3Client) => (request: PutRequest) =>
    Effect.tryPromise({
      try: (signal) => {
        const command = putCommand(request)
        command.middlewareStack.add(
          (next) => (args) => {
            const headers = (args.request as { headers?: Record<string, string> }).headers
            if (headers !== undefined) headers["x-amz-content-sha256"] = request.key
            return next(args)
          },
          { step: "build", name: "payloadSha256" }
        )
        return client.send(command, { abortSignal: signal })
      },
      catch: (cause) => new Error(`PUT ${request.key}: ${String(cause)}`)
    })

  // variants of the store's client, prepared the same way: `sdk` puts back the SDK's own `sha256` (without
  // `SigningSha256`, SigningHash.ts) or `streamCollector` (without `collectStream`, S3StreamCollector.ts: response bodies
  // piped into a new Writable); `perBucket: false` leaves out `memoizePerBucket` (S3BucketMemo.ts: an endpoint and a
  // signer worked out per request), `light: false` leaves out `lightSerde` (S3SerdeContext.ts: the client config copied
  // twice per request)
  const variantClient = (variant: {
    readonly sdk?: ReadonlyArray<"sha256" | "streamCollector">
    readonly perBucket?: boolean
    readonly light?: boolean
  }) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const options: Record<string, unknown> = { ...s3ClientOptions(storeConfig) }
        for (const name of variant.sdk ?? []) delete options[name]
        return makeTrimmedClient(options as S3ClientConfig, variant)
      }),
      (client) => Effect.sync(() => client.destroy())
    )
  const sdkHashClient = yield* variantClient({ sdk: ["sha256"] })
  const perRequestEndpointClient = yield* variantClient({ perBucket: false })
  const copiedConfigClient = yield* variantClient({ light: false })
  const sdkCollectorClient = yield* variantClient({ sdk: ["streamCollector"] })
  const session12Client = yield* variantClient({ sdk: ["streamCollector"], perBucket: false, light: false })
  const allOf = (items: ReadonlyArray<PutRequest>, put: (r: PutRequest) => Effect.Effect<unknown, unknown>) => () =>
    Effect.forEach(items, put, { concurrency: IN_FLIGHT, discard: true })
  const all = (put: (r: PutRequest) => Effect.Effect<unknown, unknown>) => allOf(requests, put)
  // each body in a buffer of its own, as PgLoReader's `ownBytes` hands them out (copied out of the driver's buffer)
  const copied: ReadonlyArray<PutRequest> = requests.map((r) => ({
    ...r,
    body: { _tag: "InMemory", bytes: (r.body as { readonly bytes: Uint8Array }).bytes.slice() }
  }))
  yield* compare(`PUT of in-memory bodies of 1-256 KiB, ${IN_FLIGHT} in flight, ${targetArg === "ceph" ? env.endpoint : "local server answering 200 at once (other process)"}`, objects, reps, [
    { label: "bare PutObject, bench client (combined's)", run: all(bare(benchClient)) },
    { label: "bare PutObject, store's client", run: all(bare(storeClient)) },
    { label: "S3ObjectStore.put", run: all(store.put) },
    { label: "bare PutObject, store's client, bodies copied", run: allOf(copied, bare(storeClient)) },
    { label: "bare PutObject, store's client, a chain per request", run: all(perRequestChain(storeClient)) },
    { label: "bare PutObject, store's options but the SDK's SHA-256", run: all(bare(sdkHashClient)) },
    { label: "bare PutObject, store's client, endpoint and signer per request", run: all(bare(perRequestEndpointClient)) },
    { label: "bare PutObject, store's client, config copied per (de)serialization", run: all(bare(copiedConfigClient)) },
    { label: "bare PutObject, store's client, the SDK's stream collector", run: all(bare(sdkCollectorClient)) },
    { label: "bare PutObject, store's client, all three (as in session 12)", run: all(bare(session12Client)) }
  ], emptyBucket)
})

// ---- PostgreSQL ----------------------------------------------------------------------------------------------------

const pool = (url: string) =>
  PgDatabase.layer({
    url: Redacted.make(url),
    maxConnections: 4,
    stallTimeout: { millis: 60_000, describe: "adapter-cost" }
  })

const readPart = Effect.fnUntraced(function*() {
  const sql = yield* SqlClient.SqlClient
  const listed = yield* sql<{ readonly hash: string; readonly oid: number; readonly size: bigint | number; readonly mime_type: string | null }>`
    SELECT hash, data AS oid, size, mime_type FROM _nice_binary WHERE size <= 262144 ORDER BY hash LIMIT ${objects}`
  const rows: ReadonlyArray<SourceRow> = listed.map((r) => ({ hash: r.hash, oid: r.oid, size: Number(r.size), mimeType: r.mime_type }))
  // batches as the pipeline builds them for small objects: up to BATCH rows and 2 MiB
  const batches: ReadonlyArray<ReadonlyArray<SourceRow>> = groupBySize(rows, (r) => r.size, { maxBytes: 2 * 1024 * 1024, maxCount: BATCH })
  const reader = yield* PgLoReader.make({ inMemMax: PgLoReader.defaultInMemMax, tempDir: tmpdir(), chunkSize: PgLoReader.defaultChunkSize })

  const bareBatch = (copy: boolean) => (batch: ReadonlyArray<SourceRow>) =>
    Effect.map(
      sql<{ readonly c: Uint8Array }>`
        SELECT lo_get(u.o) AS c FROM unnest(${batch.map((r) => String(r.oid))}::text[]::oid[]) WITH ORDINALITY AS u(o, i) ORDER BY u.i`,
      (got) =>
        got.map((r, i) => {
          const d = makeDigester()
          d.update(r.c)
          const digests = d.digest()
          if (digests.sha1 !== batch[i]!.hash) throw new Error(`row ${batch[i]!.hash}: SHA-1 ${digests.sha1}`)
          return { body: copy ? r.c.slice() : r.c, digests }
        })
    )
  const run = (read: (b: ReadonlyArray<SourceRow>) => Effect.Effect<unknown, unknown>, units = batches) => () =>
    Effect.forEach(units, read, { concurrency: 2, discard: true })
  // the units the pipeline makes with its defaults (ReadUnits.ts): rows of at most 128 KiB in batches of at most 64,
  // each bigger row read alone (`read`)
  const pipelineUnits: Array<ReadonlyArray<SourceRow>> = []
  let small: Array<SourceRow> = []
  for (const r of rows) {
    if (r.size > 128 * 1024) {
      pipelineUnits.push([r])
      continue
    }
    small.push(r)
    if (small.length === 64) {
      pipelineUnits.push(small)
      small = []
    }
  }
  if (small.length > 0) pipelineUnits.push(small)
  const pipelineRead = (unit: ReadonlyArray<SourceRow>) =>
    unit.length === 1 && unit[0]!.size > 128 * 1024 ? reader.read(unit[0]!) : reader.readBatch(unit)
  yield* compare(`read of ${rows.length} objects of up to 256 KiB in ${batches.length} batches (<= ${BATCH} rows, 2 MiB), 2 at once, database ${dbArg}`, rows.length, reps, [
    { label: "bare lo_get over unnest + makeDigester", run: run(bareBatch(false)) },
    { label: "  the same + a copy of each body (.slice())", run: run(bareBatch(true)) },
    { label: "PgLoReader.readBatch", run: run(reader.readBatch) },
    { label: "PgLoReader, the pipeline's units (<=64 x <=128 KiB, bigger ones alone)", run: run(pipelineRead, pipelineUnits) }
  ])
}, Effect.scoped)

const commitPart = Effect.fnUntraced(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* createNiceBinaryTable()
  yield* sql`INSERT INTO _nice_binary (hash, data, size, mime_type)
    SELECT left(encode(sha256(convert_to(i::text, 'UTF8')), 'hex'), 40), i, 1, 'image/png' FROM generate_series(1, ${objects}) AS i`
  const hashes = yield* sql<{ readonly hash: string }>`SELECT hash FROM _nice_binary ORDER BY data`
  const entries: ReadonlyArray<CommitEntry> = hashes.map((h, i) => ({
    hash: h.hash,
    oid: i + 1,
    sha256: createHash("sha256").update(h.hash).digest("hex") as Sha256Hex
  }))
  const batches: Array<ReadonlyArray<CommitEntry>> = []
  for (let i = 0; i < entries.length; i += BATCH) batches.push(entries.slice(i, i + BATCH))
  const committer = yield* PgHashCommitter.make
  const bare = (batch: ReadonlyArray<CommitEntry>) =>
    sql`UPDATE _nice_binary AS b SET sha2 = u.sha2
        FROM unnest(${batch.map((e) => e.hash)}::bpchar[], ${batch.map((e) => e.sha256)}::bpchar[]) AS u(hash, sha2)
        WHERE b.hash = u.hash`
  const run = (commit: (b: ReadonlyArray<CommitEntry>) => Effect.Effect<unknown, unknown>) => () =>
    Effect.forEach(batches, commit, { concurrency: 2, discard: true })
  yield* compare(`commit of ${entries.length} entries in batches of ${BATCH}, 2 at once`, entries.length, reps, [
    { label: "bare UPDATE ... FROM unnest", run: run(bare) },
    { label: "PgHashCommitter.commit", run: run(committer.commit) }
  ], Effect.asVoid(sql`UPDATE _nice_binary SET sha2 = NULL`))
})

const commitDb = `lo_bench_adapter_cost_${process.pid}`

const program = Effect.gen(function*() {
  if (partArg === "s3" || partArg === "all") yield* s3Part()
  if (partArg === "read" || partArg === "all") {
    yield* readPart().pipe(Effect.provide([pool(databaseUrl(adminUrl, dbArg)), NodeServices.layer, S3ObjectStore.bodyCut({ partSize: 20 * 1024 * 1024 })]))
  }
  if (partArg === "commit" || partArg === "all") {
    yield* createDatabase(adminUrl, commitDb)
    yield* commitPart().pipe(
      Effect.provide(pool(databaseUrl(adminUrl, commitDb))),
      Effect.ensuring(Effect.ignore(dropDatabase(adminUrl, commitDb)))
    )
  }
})

Effect.runPromise(program).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`adapter-cost failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`)
    process.exit(1)
  }
)

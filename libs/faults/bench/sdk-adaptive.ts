/**
 * Measures two answers to throttling under 20% `503 SlowDown` (this package's proxy in front of the real Ceph RGW at
 * S3_ENDPOINT): the AWS SDK's own `retryMode: "adaptive"` (client-side token bucket, up to 10 attempts), and the
 * project's policy (the SDK never retries; `retryInfrastructure` backs off and `AdaptiveLimit` halves the uploads in
 * flight on SlowDown). Same objects, same 32 uploads at once, same proxy seed. Prints time to finish, requests the
 * proxy saw and 503s it answered, per policy.
 *
 *   set -a; . /tmp/dev-ceph.env; set +a   # or: eval "$(bash tools/s3/ceph-rgw.sh start)"
 *   cd libs/faults && npx node --conditions=development bench/sdk-adaptive.ts [objects=400] [KiB=64] [rounds=3]
 */
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { defaultRetry, Metrics, retryInfrastructure, type StorageError } from "@lo-migrate/core"
import { AdaptiveLimit, type AdaptiveLimitReading } from "@lo-migrate/pipeline"
import { classifyS3Error, makeAgents, S3ObjectStore, s3ClientOptions } from "@lo-migrate/s3"
import { TestBucket } from "@lo-migrate/s3/testing"
import { ObjectStore } from "@lo-migrate/core"
import { Effect, Layer } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { FaultProxy, httpError } from "../src/index.ts"

const [objects = 400, kib = 64, rounds = 3] = process.argv.slice(2).map(Number)
const concurrency = 32

/** Fresh objects for each run (the store's key is the content's SHA-256, so no run finds another's objects). */
const makeBodies = () => Array.from({ length: objects }, () => {
  const bytes = randomBytes(kib * 1024)
  return {
    bytes,
    key: createHash("sha256").update(bytes).digest("hex"),
    md5: createHash("md5").update(bytes).digest("base64")
  }
})

const sdkAdaptive = (bucket: TestBucket["Service"], endpoint: string) =>
  Effect.gen(function*() {
    const bodies = makeBodies()
    const config = { ...bucket.config, endpoint }
    const client = new S3Client({ ...s3ClientOptions(config, makeAgents(config)), maxAttempts: 10, retryMode: "adaptive" })
    yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
    yield* Effect.forEach(bodies, (b) =>
      Effect.tryPromise({
        try: () =>
          client.send(new PutObjectCommand({
            Bucket: bucket.name,
            Key: `sdk/${b.key}`,
            Body: b.bytes,
            ContentMD5: b.md5,
            ContentType: "application/octet-stream"
          })),
        catch: (e) => classifyS3Error(e, { operation: "PutObject", bucket: bucket.name, key: b.key })
      }), { concurrency, discard: true })
  }).pipe(Effect.scoped)

const own = (bucket: TestBucket["Service"], endpoint: string) =>
  Effect.gen(function*() {
    const bodies = makeBodies()
    const store = yield* ObjectStore
    const limit = new AdaptiveLimit({ max: concurrency })
    yield* Effect.forEach(bodies, (b) =>
      limit.withPermit(
        store.put({
          key: b.key as never,
          contentType: "application/octet-stream",
          size: b.bytes.length,
          md5Base64: b.md5,
          body: { _tag: "InMemory", bytes: b.bytes }
        }).pipe(Effect.catchTag("TransferCorrupted", Effect.die)),
        (e: StorageError) => e.throttled === true
      ).pipe(retryInfrastructure("put", defaultRetry)), { concurrency, discard: true })
    return limit.reading
  }).pipe(Effect.provide(Layer.merge(S3ObjectStore.layer({ ...bucket.config, endpoint }), Metrics.layer)))

const program = Effect.gen(function*() {
  const bucket = yield* TestBucket
  const url = new URL(bucket.config.endpoint!)
  console.log(`${objects} objects of ${kib} KiB, ${concurrency} at once, 20% 503 SlowDown, ${rounds} rounds`)
  for (let round = 1; round <= rounds; round++) {
    for (const policy of ["own (AIMD)", "sdk adaptive"] as const) {
      yield* Effect.scoped(Effect.gen(function*() {
        const proxy = yield* FaultProxy.make({ targetHost: url.hostname, targetPort: Number(url.port), protocol: "http", seed: round })
        yield* proxy.setFault(httpError(503, 0.2))
        const started = Date.now()
        const run: Effect.Effect<AdaptiveLimitReading | undefined, StorageError> = policy === "sdk adaptive"
          ? Effect.as(sdkAdaptive(bucket, proxy.url), undefined)
          : own(bucket, proxy.url)
        const exit = yield* Effect.exit(run)
        const millis = Date.now() - started
        const stats = yield* proxy.stats
        const outcome = exit._tag === "Success" ? "ok" : `FAILED: ${String(exit.cause).split("\n")[0]}`
        console.log(
          `round ${round} ${policy.padEnd(13)} ${(millis / 1000).toFixed(2).padStart(6)} s, ${
            String(stats.requests).padStart(4)
          } requests, ${String(stats.answered).padStart(3)} answered 503: ${outcome}${
            exit._tag === "Success" && exit.value !== undefined ? ` (limit at the end ${exit.value.limit}, lowered ${exit.value.decreases}x)` : ""
          }`
        )
      }))
    }
  }
}).pipe(Effect.provide(TestBucket.layer))

Effect.runPromise(program).catch((e) => {
  console.error(e)
  process.exitCode = 1
})

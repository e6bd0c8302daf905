/**
 * Test support (`@lo-migrate/s3/testing`): the S3 server of the test environment, and throwaway buckets on it.
 *
 * `npm test` starts a Ceph RADOS Gateway (tools/s3/ceph-rgw.sh) and exports S3_ENDPOINT, S3_ACCESS_KEY_ID,
 * S3_SECRET_ACCESS_KEY and S3_REGION; tests read them here and fail with a clear message when they are absent.
 */
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client
} from "@aws-sdk/client-s3"
import type { ObjectStore } from "@lo-migrate/core"
import * as Context from "effect/Context"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import { S3ClientService } from "./S3ClientService.ts"
import { sendS3 } from "./S3Send.ts"
import * as S3ObjectStore from "./S3ObjectStore.ts"
import { defaultS3StoreConfig, type S3StoreConfig } from "./S3StoreConfig.ts"

const required = ["S3_ENDPOINT", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"] as const

/**
 * The S3 store config of the test server, from S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY and S3_REGION
 * (default us-east-1), with a placeholder bucket (`TestBucket` makes a real one). Throws when the variables are absent.
 */
export const s3TestConfig = (env: Record<string, string | undefined> = process.env): S3StoreConfig => {
  const missing = required.filter((name) => (env[name] ?? "") === "")
  if (missing.length > 0) {
    throw new Error(
      `S3 tests need a real S3 server: ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} not set. ` +
        "Run the tests with `npm test` (it starts Ceph RGW and exports them), or start it yourself: " +
        "`set -a; eval \"$(bash tools/s3/ceph-rgw.sh start)\"; set +a`"
    )
  }
  return {
    ...defaultS3StoreConfig,
    bucket: "lo-migrate-test",
    endpoint: env["S3_ENDPOINT"],
    region: env["S3_REGION"] ?? "us-east-1",
    forcePathStyle: (env["S3_FORCE_PATH_STYLE"] ?? "true") !== "false",
    accessKeyId: Redacted.make(env["S3_ACCESS_KEY_ID"] ?? ""),
    secretAccessKey: Redacted.make(env["S3_SECRET_ACCESS_KEY"] ?? "")
  }
}

/**
 * The test server's read-only key (a subuser with "read" access, which `tools/s3/ceph-rgw.sh start` creates and prints
 * as `S3_READONLY_ACCESS_KEY_ID` / `S3_READONLY_SECRET_ACCESS_KEY`): it lists and GETs, and a PUT or DELETE with it is
 * refused. Throws, saying how to get it, when the variables are not set.
 */
export const readOnlyTestKey = (
  env: Record<string, string | undefined> = process.env
): { readonly accessKeyId: string; readonly secretAccessKey: string } => {
  const accessKeyId = env["S3_READONLY_ACCESS_KEY_ID"]
  const secretAccessKey = env["S3_READONLY_SECRET_ACCESS_KEY"]
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    throw new Error(
      "S3_READONLY_ACCESS_KEY_ID / S3_READONLY_SECRET_ACCESS_KEY are not set: this test needs a read-only key of the " +
        "test gateway; run it with `npm test`, or with the variables `bash tools/s3/ceph-rgw.sh start` prints"
    )
  }
  return { accessKeyId, secretAccessKey }
}

/** A unique bucket name (lowercase, DNS-safe, at most 63 characters) from the time now (ms) and random bytes. */
export const uniqueBucketName = (now: number, prefix = "lo-migrate-test"): string =>
  `${prefix.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 40)}-${now.toString(36)}-${
    randomBytes(4).toString("hex")
  }`

const send = <A>(what: string, run: (signal: AbortSignal) => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (cause) => new Error(`${what}: ${String(cause)}`) })

/** Aborts every multipart upload, deletes every object, then the bucket. */
export const emptyAndDeleteBucket = Effect.fn("testing.emptyAndDeleteBucket")(function*(
  client: S3Client,
  bucket: string
): Effect.fn.Return<void, Error> {
  let keyMarker: string | undefined
  let uploadIdMarker: string | undefined
  for (;;) {
    const uploads = yield* send("ListMultipartUploads", (abortSignal) =>
      sendS3(client, 
        new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        { abortSignal }
      ))
    for (const u of uploads.Uploads ?? []) {
      yield* send("AbortMultipartUpload", (abortSignal) =>
        sendS3(client, new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }), {
          abortSignal
        }))
    }
    if (uploads.IsTruncated !== true) break
    keyMarker = uploads.NextKeyMarker
    uploadIdMarker = uploads.NextUploadIdMarker
  }
  let token: string | undefined
  for (;;) {
    const page = yield* send("ListObjectsV2", (abortSignal) =>
      sendS3(client, new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }), { abortSignal }))
    const keys = (page.Contents ?? []).flatMap((o) => o.Key === undefined ? [] : [{ Key: o.Key }])
    if (keys.length > 0) {
      yield* send("DeleteObjects", (abortSignal) =>
        sendS3(client, new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }), {
          abortSignal
        }))
    }
    if (page.IsTruncated !== true) break
    token = page.NextContinuationToken
  }
  yield* send("DeleteBucket", (abortSignal) => sendS3(client, new DeleteBucketCommand({ Bucket: bucket }), { abortSignal }))
})

/**
 * A uniquely named bucket on the test server, created when the layer is built and emptied (objects and leftover
 * multipart uploads) and deleted when it is released. `config` points at it; `client` is an administrative client.
 */
export class TestBucket extends Context.Service<TestBucket, {
  readonly name: string
  readonly config: S3StoreConfig
  readonly client: S3Client
}>()("lo-migrate/s3/TestBucket") {
  static readonly make = Effect.fn("TestBucket.make")(function*(overrides: Partial<Omit<S3StoreConfig, "bucket">> = {}) {
    const base = yield* Effect.try({ try: () => s3TestConfig(), catch: (e) => e as Error }).pipe(Effect.orDie)
    const name = uniqueBucketName(yield* Clock.currentTimeMillis)
    const config: S3StoreConfig = { ...base, ...overrides, bucket: name }
    const { client } = yield* S3ClientService.make(config)
    yield* Effect.acquireRelease(
      send(
        `could not create test bucket ${name} on ${config.endpoint ?? "AWS"} (is the S3 server up? ` +
          "`bash tools/s3/ceph-rgw.sh start` starts it)",
        (abortSignal) => sendS3(client, new CreateBucketCommand({ Bucket: name }), { abortSignal })
      ).pipe(Effect.orDie),
      () =>
        emptyAndDeleteBucket(client, name).pipe(
          Effect.catch((e) => Effect.logWarning(`could not delete test bucket ${name}: ${e.message}`))
        )
    )
    return TestBucket.of({ name, config, client })
  })

  static readonly layer: Layer.Layer<TestBucket> = Layer.effect(TestBucket, TestBucket.make())

  static readonly layerWith = (overrides: Partial<Omit<S3StoreConfig, "bucket">>): Layer.Layer<TestBucket> =>
    Layer.effect(TestBucket, TestBucket.make(overrides))
}

/** An `S3ObjectStore` over a fresh `TestBucket` (both provided). */
export const testObjectStoreLayer = (
  overrides: Partial<Omit<S3StoreConfig, "bucket">> = {}
): Layer.Layer<ObjectStore | TestBucket> =>
  Layer.unwrap(Effect.map(Effect.service(TestBucket), (bucket) => S3ObjectStore.layer(bucket.config))).pipe(
    Layer.provideMerge(TestBucket.layerWith(overrides))
  )

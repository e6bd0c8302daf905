/**
 * The bench's own S3 client and bucket lifecycle (every measurement writes into a fresh bucket, emptied and deleted
 * afterwards so Ceph's disk does not fill up), as Effects: a failed request is a `BenchS3Error`.
 */
import {
  type _Object,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client
} from "@aws-sdk/client-s3"
import { cachedChainOptions, collectStream, makeTrimmedClient, sendS3, SigningSha256 } from "@lo-migrate/s3"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { Agent } from "node:http"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

export interface S3Env {
  readonly endpoint: string
  readonly region: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
}

export const s3EnvFrom = (env: NodeJS.ProcessEnv): S3Env | undefined => {
  const endpoint = env["S3_ENDPOINT"]
  const accessKeyId = env["S3_ACCESS_KEY_ID"] ?? env["AWS_ACCESS_KEY_ID"]
  const secretAccessKey = env["S3_SECRET_ACCESS_KEY"] ?? env["AWS_SECRET_ACCESS_KEY"]
  if (endpoint === undefined || accessKeyId === undefined || secretAccessKey === undefined) return undefined
  return { endpoint, region: env["S3_REGION"] ?? "us-east-1", accessKeyId, secretAccessKey }
}

/**
 * The bench's client: keep-alive, path style, no CRC32 trailers; with `trimmed` (the default) without the middleware
 * the store also drops (`makeTrimmedClient`, which also works out endpoints and signers once per bucket and
 * (de)serializes without a config copy), with its cached middleware chain (`cachedChainOptions`, `sendS3`), its
 * signing hash (`SigningSha256`) and response body collector (`collectStream`), so the S3 write limit and the combined
 * client pay what the migrator pays. Untrimmed, it is
 * the SDK as a user gets it.
 */
export const makeClient = (s3: S3Env, maxSockets = 50, trimmed = true): S3Client => {
  const httpAgent = new Agent({ keepAlive: true, maxSockets })
  const options = {
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED"
  } as const
  return trimmed
    ? makeTrimmedClient({ ...options, sha256: SigningSha256, streamCollector: collectStream, ...cachedChainOptions({ httpAgent }) })
    : new S3Client({ ...options, requestHandler: new NodeHttpHandler({ httpAgent }) })
}

/** A bench S3 request that failed: the operation and bucket, and the SDK's error. */
export class BenchS3Error extends Schema.TaggedError<BenchS3Error>()("BenchS3Error", {
  operation: Schema.String,
  bucket: Schema.String,
  cause: Schema.Defect()
}) {}

/** One SDK command as an Effect; interruption aborts the request. */
const send = <O>(operation: string, bucket: string, request: (signal: AbortSignal) => Promise<O>) =>
  Effect.tryPromise({ try: request, catch: (cause) => new BenchS3Error({ operation, bucket, cause }) })

export const createBucket = Effect.fn("S3.createBucket")(function*(client: S3Client, bucket: string) {
  yield* send("CreateBucket", bucket, (abortSignal) => sendS3(client, new CreateBucketCommand({ Bucket: bucket }), { abortSignal }))
})

/** Every object of a bucket, page after page (ListObjectsV2, 1000 keys a request, as a continuation token requires). */
export const listObjects = (client: S3Client, bucket: string): Stream.Stream<ReadonlyArray<_Object>, BenchS3Error> =>
  Stream.paginate(undefined as string | undefined, (token) =>
    send(
      "ListObjectsV2",
      bucket,
      (abortSignal) => sendS3(client, new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000, ContinuationToken: token }), { abortSignal })
    ).pipe(
      Effect.map((page) => [[page.Contents ?? []], Option.fromNullishOr(page.NextContinuationToken)] as const)
    ))

/** Deletes every object (1000 per request), then the bucket. Returns how many objects there were. */
export const deleteBucket = Effect.fn("S3.deleteBucket")(function*(client: S3Client, bucket: string) {
  let deleted = 0
  for (;;) {
    const page = yield* send(
      "ListObjectsV2",
      bucket,
      (abortSignal) => sendS3(client, new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }), { abortSignal })
    )
    const keys = (page.Contents ?? []).flatMap((o) => o.Key === undefined ? [] : [{ Key: o.Key }])
    if (keys.length === 0) break
    yield* send(
      "DeleteObjects",
      bucket,
      (abortSignal) => sendS3(client, new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }), { abortSignal })
    )
    deleted += keys.length
  }
  yield* send("DeleteBucket", bucket, (abortSignal) => sendS3(client, new DeleteBucketCommand({ Bucket: bucket }), { abortSignal }))
  return deleted
})

/** Counts objects and bytes in a bucket (to check a migration put everything there). */
export const bucketStats = (client: S3Client, bucket: string) =>
  listObjects(client, bucket).pipe(
    Stream.runFold(() => ({ objects: 0, bytes: 0 }), (acc, page) => ({
      objects: acc.objects + page.length,
      bytes: page.reduce((n, o) => n + (o.Size ?? 0), acc.bytes)
    })),
    Effect.withSpan("S3.bucketStats")
  )

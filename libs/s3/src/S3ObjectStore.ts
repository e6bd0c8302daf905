/**
 * The live `ObjectStore`: content-addressed objects in one S3 bucket (production target: Ceph RADOS Gateway).
 *
 * - Every body goes up with Content-MD5 (the server rejects a corrupted body with BadDigest), its SHA-256 as the signed
 *   `x-amz-content-sha256` (for a whole object that is the key: the server verifies the object hashes to its key), and
 *   a known Content-Length (Ceph answers 411 to chunked bodies without one).
 * - In-memory bodies, and spilled bodies up to the part size, are one PutObject (a spilled one streamed from its file).
 *   Larger spilled bodies are a multipart upload whose parts are streamed from file ranges, each with its own
 *   Content-MD5 and SHA-256: taken from the body's `parts` when the reader computed them for this part size (see
 *   `multipartPartSize`), else from one more read of the range before it is sent. Either way the server checks them,
 *   so a wrong digest fails the part (BadDigest / XAmzContentSHA256Mismatch), it cannot store wrong bytes.
 *   A multipart upload that fails or is interrupted is aborted, so no incomplete upload is left behind; each one is
 *   recorded in the `S3UploadLedger` while it runs, so that a later run aborts it if this process is killed.
 * - An object already under its key with the right size is not sent again (`AlreadyPresent`); see
 *   `S3StoreConfig.headBeforePut` for how it is detected, and `S3StoreConfig.conditionalWindow` for when the default
 *   mode stops looking (past the start of a resumed run).
 * - The SDK does not retry (see `s3ClientOptions`); failures are classified by `classifyS3Error` and the pipeline
 *   retries the retryable ones. The retries here, all built from core's `retrySchedule`: per part inside one multipart
 *   upload (`partAttempts`), so a transient error does not throw away the parts already sent; the abort of a failed
 *   upload; and a body the server rejected as corrupted in transit (BadDigest, XAmzContentSHA256Mismatch), sent
 *   again from the same verified bytes (`corruptAttempts` in all, or `partAttempts` for a part; the body of
 *   CompleteMultipartUpload too, `corruptAttempts` in all) before the put fails
 *   with `TransferCorrupted` (the pipeline then reports that row and goes on).
 */
import {
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client
} from "@aws-sdk/client-s3"
import {
  BodyCut,
  type HeadResult,
  ObjectStore,
  type PutOutcome,
  type PutRequest,
  StorageError,
  TransferCorrupted
} from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { createHash } from "node:crypto"
import { classifyS3Error, s3ErrorFacts } from "./S3Errors.ts"
import { S3ClientService } from "./S3ClientService.ts"
import { sendS3 } from "./S3Send.ts"
import {
  digestRange,
  fileStream,
  objectHeadersOf,
  releaseBody,
  type SingleBody
} from "./S3Requests.ts"
import { makeS3Calls } from "./S3Calls.ts"
import { makeConditionalPutCheck } from "./S3ConditionalPut.ts"
import { makeMultipart } from "./S3Multipart.ts"
import { S3UploadLedger } from "./S3UploadLedger.ts"
import {
  defaultS3StoreConfig,
  effectivePartSize,
  multipartPartSize,
  partSizeFor,
  type S3StoreConfig
} from "./S3StoreConfig.ts"

/** The key `check` HEADs: never a content key (those are 64 hex digits), normally absent. */
export const checkProbeKey = "lo-migrate-check-probe"

/** The store over the `S3ClientService` and `S3UploadLedger` in context. */
export const make: Effect.Effect<ObjectStore["Service"], never, S3ClientService | S3UploadLedger> = Effect.gen(
  function*() {
    const { client, config } = yield* S3ClientService
    return makeWithClient(client, config, yield* S3UploadLedger, yield* FileSystem.FileSystem)
  }
).pipe(Effect.provide(NodeFileSystem.layer)) // spilled bodies are Node files (their streams go to the SDK)

const makeWithClient = (
  client: S3Client,
  config: S3StoreConfig,
  ledger: S3UploadLedger["Service"],
  fs: FileSystem.FileSystem
): ObjectStore["Service"] => {
  const bucket = config.bucket
  const secrets = config.secretAccessKey === undefined ? [] : [config.secretAccessKey]
  const partConcurrency = Math.max(1, config.partConcurrency ?? defaultS3StoreConfig.partConcurrency ?? 2)
  const partAttempts = Math.max(1, config.partAttempts ?? defaultS3StoreConfig.partAttempts ?? 3)
  const corruptAttempts = Math.max(1, config.corruptAttempts ?? defaultS3StoreConfig.corruptAttempts ?? 3)
  const headAbove = Math.max(0, config.headAbove ?? defaultS3StoreConfig.headAbove ?? 0)
  const conditionalWindow = Math.max(0, config.conditionalWindow ?? defaultS3StoreConfig.conditionalWindow ?? 0)

  const calls = makeS3Calls(bucket, secrets)
  const { classify, corruptedOr, fatal, resendCorrupted } = calls
  const conditionalPuts = makeConditionalPutCheck(client, bucket, calls)
  /**
   * Whether a single PUT of `size` bytes is preceded by a HEAD (see `S3StoreConfig.headBeforePut`): also whenever the
   * bucket would store a conditional PUT anyway (versioning enabled, S3ConditionalPut.ts).
   */
  const headFirst = (size: number): Effect.Effect<boolean, StorageError> =>
    config.headBeforePut === "always" || (config.headBeforePut === "resume" && size > headAbove)
      ? Effect.succeed(true)
      : Effect.map(conditionalPuts, (honoured) => !honoured)

  /**
   * Puts in a row whose key proved new (a conditional PUT answered 200, a HEAD 404); a key found present resets it.
   * In `"resume"` mode small PUTs are conditional while it is below `conditionalWindow` (S3StoreConfig).
   */
  let newInARow = 0
  const keyFound = (present: boolean) => {
    newInARow = present ? 0 : newInARow + 1
  }
  const conditionalPut = () => config.headBeforePut !== "resume" || newInARow < conditionalWindow

  const headObject = (key: string): Effect.Effect<Option.Option<HeadResult>, StorageError> =>
    Effect.tryPromise({
      try: (signal) => sendS3(client, new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }),
      catch: (error) => error
    }).pipe(
      Effect.map((out) => Option.some<HeadResult>({ size: out.ContentLength ?? 0, contentType: out.ContentType })),
      Effect.catch((error) =>
        s3ErrorFacts(error).httpStatus === 404
          ? Effect.succeed(Option.none<HeadResult>())
          : Effect.fail(classifyS3Error(error, { operation: "HeadObject", bucket, key, secrets }))
      )
    )

  /** `true` when an object of `size` bytes is already under `key`; an object of another size is logged. */
  const presentWithSize = (key: string, size: number) =>
    headObject(key).pipe(
      Effect.tap((found) => Effect.sync(() => keyFound(Option.isSome(found)))),
      Effect.flatMap(Option.match({
        onNone: () => Effect.succeed(false),
        onSome: (found) =>
          found.size === size ? Effect.succeed(true) : Effect.as(
            Effect.logWarning(`S3 object ${bucket}/${key} has ${found.size} bytes, expected ${size}: overwriting it`),
            false
          )
      }))
    )

  /** One PutObject of `Body`. With `ifNoneMatch`, a key that exists answers 412 and this returns `"Exists"`. */
  const sendPut = (
    request: PutRequest,
    headers: ReturnType<typeof objectHeadersOf>,
    Body: SingleBody,
    ifNoneMatch: boolean
  ): Effect.Effect<"Uploaded" | "Exists", StorageError | TransferCorrupted> =>
    Effect.tryPromise({
      try: (signal) => {
        const command = new PutObjectCommand({
          Bucket: bucket,
          Key: request.key,
          Body,
          ContentLength: request.size,
          ContentMD5: request.md5Base64,
          ...headers,
          ...(ifNoneMatch ? { IfNoneMatch: "*" } : {})
        })
        return sendS3(client, command, {
          abortSignal: signal,
          payloadSha256: request.key,
          noDefaultContentType: headers.ContentType === undefined
        })
      },
      catch: (error) => error
    }).pipe(
      Effect.as("Uploaded" as const),
      Effect.catch((error) =>
        ifNoneMatch && s3ErrorFacts(error).httpStatus === 412
          ? Effect.succeed("Exists" as const)
          : Effect.fail(corruptedOr("PutObject", request.key, error))
      )
    )

  /**
   * One PutObject, its body sent again if the server received it corrupted. Bytes in memory are sent as they are; a
   * file stream is opened per attempt and destroyed after it.
   */
  const putObject = (
    request: PutRequest,
    body: Uint8Array | Effect.Effect<SingleBody>,
    ifNoneMatch: boolean
  ): Effect.Effect<"Uploaded" | "Exists", StorageError | TransferCorrupted> => {
    const headers = objectHeadersOf(request)
    const attempt = body instanceof Uint8Array
      ? sendPut(request, headers, body, ifNoneMatch)
      : Effect.acquireUseRelease(body, (Body) => sendPut(request, headers, Body, ifNoneMatch), releaseBody)
    return attempt.pipe(resendCorrupted("PutObject", corruptAttempts))
  }

  /**
   * A single PutObject: after a HEAD (`"always"`, or `"resume"` for a body above `headAbove`), conditional
   * (`If-None-Match: *`), in which case a 412 is followed by a HEAD that compares the size, or, in `"resume"` mode once
   * `conditionalWindow` keys in a row proved new, plain.
   */
  const putSingle = Effect.fnUntraced(function*(
    request: PutRequest,
    body: Uint8Array | Effect.Effect<SingleBody>
  ): Effect.fn.Return<PutOutcome, StorageError | TransferCorrupted> {
    if (yield* headFirst(request.size)) {
      if (yield* presentWithSize(request.key, request.size)) return "AlreadyPresent"
      yield* putObject(request, body, false)
      return "Uploaded"
    }
    if (!conditionalPut()) {
      yield* putObject(request, body, false)
      return "Uploaded"
    }
    const first = yield* putObject(request, body, true)
    if (first === "Uploaded") {
      keyFound(false)
      return "Uploaded"
    }
    // The key exists: keep it if it has the right size, otherwise replace it.
    if (yield* presentWithSize(request.key, request.size)) return "AlreadyPresent"
    yield* putObject(request, body, false)
    return "Uploaded"
  })

  const putMultipart = makeMultipart({
    client,
    bucket,
    ledger,
    calls,
    partConcurrency,
    partAttempts,
    corruptAttempts,
    headObject
  })

  /**
   * Untraced: called once per object, and a span with its call-site frame cost ~65 us of CPU per call in Effect 4
   * (context updates, a captured stack, the span itself): 15% of a PutObject's client CPU (`tools/bench/src/
   * adapter-cost.ts s3`, libs/s3/README.md "Spans"). Failures still name the operation, bucket and key (S3Errors.ts).
   */
  const put = Effect.fnUntraced(function*(request: PutRequest) {
    const body = request.body
    if (body._tag === "InMemory") {
      if (body.bytes.byteLength !== request.size) {
        return yield* fatal("PutObject", request.key, `body has ${body.bytes.byteLength} bytes, expected ${request.size}`)
      }
      const md5Base64 = request.md5Base64 ?? createHash("md5").update(body.bytes).digest("base64")
      return yield* putSingle({ ...request, md5Base64 }, body.bytes)
    }
    const path = body.path
    // the node error under the platform's (its code, e.g. ENOENT) is what the classification reads
    const onDisk = yield* fs.stat(path).pipe(
      Effect.mapError((e) => classify("PutObject", request.key, e.reason._tag === "BadArgument" ? e : e.reason.cause ?? e))
    )
    const onDiskSize = Number(onDisk.size)
    if (onDiskSize !== request.size) {
      return yield* fatal("PutObject", request.key, `spilled body ${path} has ${onDiskSize} bytes, expected ${request.size}`)
    }
    if (request.size <= effectivePartSize(config.partSize)) {
      // A body its reader digested part by part has no whole MD5 (PutRequest): read the file once more for it.
      const md5Base64 = request.md5Base64 ?? (yield* digestRange(path, 0, request.size).pipe(
        Effect.map((d) => d.md5.toString("base64")),
        Effect.mapError((e) => classify("PutObject", request.key, e))
      ))
      // A fresh file stream per attempt (a 412 answer is followed by a second PUT).
      return yield* putSingle(
        { ...request, md5Base64 },
        request.size === 0 ? new Uint8Array(0) : fileStream(path, 0, request.size)
      )
    }
    const partSize = partSizeFor(request.size, config.partSize)
    if (partSize === undefined) {
      return yield* fatal("PutObject", request.key, `${request.size} bytes exceed S3's largest object`)
    }
    // Always HEAD before a multipart upload (Ceph 16 ignores If-None-Match on CompleteMultipartUpload).
    if (yield* presentWithSize(request.key, request.size)) return "AlreadyPresent" as const
    yield* putMultipart(request, path, partSize, body.parts)
    return "Uploaded" as const
  })

  // HeadBucket answers without a body, so a missing bucket is a bare 404: say which bucket.
  const headBucket = Effect.tryPromise({
    try: (signal) => sendS3(client, new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal }),
    catch: (error) =>
      s3ErrorFacts(error).httpStatus === 404
        ? fatal("HeadBucket", undefined, `bucket ${JSON.stringify(bucket)} does not exist (HTTP 404)`)
        : classifyS3Error(error, { operation: "HeadBucket", bucket, secrets })
  })

  // Puts HEAD keys that are usually missing. Without the right permissions (s3:GetObject, and s3:ListBucket on AWS)
  // such a HEAD answers 403 instead of 404, and every put would fail: find out now, with a read-only probe.
  const headProbe = headObject(checkProbeKey).pipe(
    Effect.mapError((e) =>
      e.retryable ? e : new StorageError({
        ...e,
        cause: e.cause, // not an own enumerable field: the spread alone drops the SDK error
        detail: `${e.detail}; HEAD of a missing key must answer 404: the credentials need s3:GetObject ` +
          "(and s3:ListBucket on AWS) on the bucket"
      })
    )
  )

  // Whether PUTs may go without a HEAD is learned at start-up too (one GetBucketVersioning), rather than by the first put.
  const check = headBucket.pipe(
    Effect.andThen(headProbe),
    Effect.andThen(config.headBeforePut === "always" ? Effect.void : conditionalPuts),
    Effect.asVoid,
    Effect.withSpan("S3ObjectStore.check")
  )

  const store = ObjectStore.of({
    put,
    head: headObject,
    check
  })
  return store
}

/** The store over an `S3ClientService` (tests add SDK middleware to its client to count or break requests). */
export const layerFromClient: Layer.Layer<ObjectStore | S3UploadLedger, never, S3ClientService> = Layer.effect(
  ObjectStore,
  make
).pipe(Layer.provideMerge(S3UploadLedger.layer))

/**
 * How this store cuts a body (`BodyCut`): a spilled body above the part size goes up in parts of
 * `multipartPartSize(size, config.partSize)`; the reader digests those parts in its read pass.
 */
export const bodyCut = (config: Pick<S3StoreConfig, "partSize">): Layer.Layer<BodyCut> =>
  Layer.succeed(BodyCut, BodyCut.of({ partSizeFor: (size) => multipartPartSize(size, config.partSize) }))

/** The store with its own client (destroyed when the layer is released), its upload ledger and the cut it announces. */
export const layer = (config: S3StoreConfig): Layer.Layer<ObjectStore | S3UploadLedger | BodyCut> =>
  Layer.merge(layerFromClient.pipe(Layer.provide(S3ClientService.layer(config))), bodyCut(config))

/** Both the store and its client (to reach the SDK client for bucket administration or request counting). */
export const layerWithClient = (config: S3StoreConfig): Layer.Layer<ObjectStore | S3UploadLedger | S3ClientService> =>
  layerFromClient.pipe(Layer.provideMerge(S3ClientService.layer(config)))

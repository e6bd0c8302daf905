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
 *   `S3StoreConfig.headBeforePut` for how it is detected.
 * - The SDK does not retry (see `s3ClientOptions`); failures are classified by `classifyS3Error` and the pipeline
 *   retries the retryable ones. The retries here, all built from core's `retrySchedule`: per part inside one multipart
 *   upload (`partAttempts`), so a transient error does not throw away the parts already sent; the abort of a failed
 *   upload; and a body the server rejected as corrupted in transit (BadDigest, XAmzContentSHA256Mismatch), sent
 *   again from the same verified bytes (`corruptAttempts` in all, or `partAttempts` for a part; the body of
 *   CompleteMultipartUpload too, `corruptAttempts` in all) before the put fails
 *   with `TransferCorrupted` (the pipeline then reports that row and goes on).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  type CompletedPart,
  CreateMultipartUploadCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand
} from "@aws-sdk/client-s3"
import {
  defaultRetry,
  type HeadResult,
  Metrics,
  ObjectStore,
  type PartDigests,
  type PutOutcome,
  type PutRequest,
  retrySchedule,
  StorageError,
  storedContentType,
  TransferCorrupted
} from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { createHash } from "node:crypto"
import { createReadStream, ReadStream } from "node:fs"
import { stat } from "node:fs/promises"
import { classifyS3Error, describeS3Error, isCorruptionS3Error, s3ErrorFacts } from "./S3Errors.ts"
import { S3ClientService } from "./S3ClientService.ts"
import { S3UploadLedger } from "./S3UploadLedger.ts"
import {
  defaultS3StoreConfig,
  effectivePartSize,
  partCount,
  partSizeFor,
  type S3StoreConfig
} from "./S3StoreConfig.ts"

/** The key `check` HEADs: never a content key (those are 64 hex digits), normally absent. */
export const checkProbeKey = "lo-migrate-check-probe"

/**
 * The Content-Type and user metadata of an object, by the rule of `storedContentType` (core ContentType.ts): a null
 * or empty mime type sends neither (the server's default applies), a plain one is sent as is, any other one as
 * `application/octet-stream` with the original, encoded, in `x-amz-meta-lo-migrate-mime-type`.
 */
const objectHeadersOf = (request: PutRequest): { ContentType?: string; Metadata?: Record<string, string> } => {
  const stored = storedContentType(request.contentType)
  switch (stored._tag) {
    case "Default":
      return {}
    case "Plain":
      return { ContentType: stored.contentType }
    case "Replaced":
      return { ContentType: stored.contentType, Metadata: { ...stored.metadata } }
  }
}

/**
 * The SDK puts `application/octet-stream` on every PutObject without a ContentType. A row without a mime type must
 * get the server's own default (as the original uploader did), so the header is removed before signing.
 */
const withoutDefaultContentType = <C extends { middlewareStack: { add: (...args: Array<any>) => void } }>(
  command: C
): C => {
  command.middlewareStack.add(
    (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => {
      const request = args.request as { headers?: Record<string, string> }
      if (request.headers !== undefined) delete request.headers["content-type"]
      return next(args)
    },
    { step: "build", name: "loMigrateNoDefaultContentType" }
  )
  return command
}

/**
 * Sends `sha256Hex` as the request's `x-amz-content-sha256`. The SigV4 signer then signs that value instead of hashing
 * the body itself (or sending UNSIGNED-PAYLOAD for a stream), and the server checks the body against it: Ceph RGW (and
 * AWS) reject a mismatch with XAmzContentSHA256Mismatch. For a whole object the value is its key, so the server
 * verifies that what it stores under the key really hashes to the key.
 */
const withPayloadSha256 = <C extends { middlewareStack: { add: (...args: Array<any>) => void } }>(
  command: C,
  sha256Hex: string
): C => {
  command.middlewareStack.add(
    (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => {
      const request = args.request as { headers?: Record<string, string> }
      if (request.headers !== undefined) request.headers["x-amz-content-sha256"] = sha256Hex
      return next(args)
    },
    { step: "build", name: "loMigratePayloadSha256" }
  )
  return command
}

interface RangeDigests {
  readonly md5: Buffer
  readonly sha256Hex: string
}

/** Reads `length` bytes of `path` from `start`: their MD5 (raw) and SHA-256 (hex); fails if the file is shorter. */
const digestRange = (path: string, start: number, length: number, signal: AbortSignal): Promise<RangeDigests> =>
  new Promise((resolve, reject) => {
    const md5 = createHash("md5")
    const sha256 = createHash("sha256")
    let read = 0
    const stream = createReadStream(path, { start, end: start + length - 1, signal })
    stream.on("data", (chunk) => {
      read += chunk.length
      md5.update(chunk)
      sha256.update(chunk)
    })
    stream.on("error", reject)
    stream.on("end", () =>
      read === length
        ? resolve({ md5: md5.digest(), sha256Hex: sha256.digest("hex") })
        : reject(new Error(`${path}: expected ${length} bytes at offset ${start}, read ${read}`)))
  })

const fileStream = (path: string, start: number, length: number): Effect.Effect<ReadStream> =>
  Effect.sync(() => createReadStream(path, { start, end: start + length - 1 }))

const destroyStream = (stream: ReadStream) => Effect.sync(() => stream.destroy())

/** The body of one PutObject: bytes in memory or a stream over a file range (destroyed after the request). */
type SingleBody = Uint8Array | ReadStream

const releaseBody = (body: SingleBody) => body instanceof ReadStream ? destroyStream(body) : Effect.void

/** Counts a retry in `Metrics` when the caller provides it (the pipeline does). */
const countRetry = (operation: string) =>
  Effect.flatMap(Effect.serviceOption(Metrics), Option.match({
    onNone: () => Effect.void,
    onSome: (metrics) => metrics.retried(operation)
  }))

/**
 * A few retries per the core policy (delays as the pipeline's), of errors that say `retryable` and pass `only`; each
 * counted when it happens (the predicate is part of the schedule, so a retry that does not happen is not counted).
 */
const retryFew = <E extends { readonly retryable: boolean }>(
  operation: string,
  times: number,
  only: (e: E) => boolean = () => true
) =>
  retrySchedule({ ...defaultRetry, times }).pipe(
    Schedule.setInputType<E>(),
    Schedule.while(({ input }) => only(input)),
    Schedule.tap(() => countRetry(operation))
  )

export const makeS3ObjectStore: Effect.Effect<ObjectStore["Service"], never, S3ClientService | S3UploadLedger> = Effect
  .gen(
    function*() {
      const { client, config } = yield* S3ClientService
      return makeWithClient(client, config, yield* S3UploadLedger)
    }
  )

const makeWithClient = (
  client: S3Client,
  config: S3StoreConfig,
  ledger: S3UploadLedger["Service"]
): ObjectStore["Service"] => {
  const bucket = config.bucket
  const secrets = config.secretAccessKey === undefined ? [] : [config.secretAccessKey]
  const partConcurrency = Math.max(1, config.partConcurrency ?? defaultS3StoreConfig.partConcurrency ?? 2)
  const partAttempts = Math.max(1, config.partAttempts ?? defaultS3StoreConfig.partAttempts ?? 3)
  const corruptAttempts = Math.max(1, config.corruptAttempts ?? defaultS3StoreConfig.corruptAttempts ?? 3)
  const headWindow = Math.max(0, config.headWindow ?? defaultS3StoreConfig.headWindow ?? 1000)
  /** `"resume"` mode: new objects in a row seen by HEAD; the window closes when it reaches `headWindow`. */
  let newInARow = 0
  const headFirst = () =>
    config.headBeforePut === "always" || (config.headBeforePut === "resume" && newInARow < headWindow)
  /** Records what a HEAD before a PUT found, for the `"resume"` window. */
  const noteHead = (present: boolean) => {
    newInARow = present ? 0 : newInARow + 1
  }

  /** Runs one SDK call; interruption aborts the HTTP request; failures become classified `StorageError`s. */
  const call = <A>(operation: string, key: string | undefined, run: (signal: AbortSignal) => Promise<A>) =>
    Effect.tryPromise({
      try: run,
      catch: (error) => classifyS3Error(error, { operation, bucket, key, secrets })
    })

  /** A body upload: like `call`, except that a body the server received corrupted fails with `TransferCorrupted`. */
  const send = <A>(operation: string, key: string, run: (signal: AbortSignal) => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: (error) => error }).pipe(
      Effect.mapError((error) => corruptedOr(operation, key, error))
    )

  const corruptedOr = (operation: string, key: string, error: unknown): StorageError | TransferCorrupted => {
    const facts = s3ErrorFacts(error)
    return isCorruptionS3Error(facts)
      ? new TransferCorrupted({ operation, bucket, key, attempts: 1, detail: describeS3Error(facts) })
      : classifyS3Error(error, { operation, bucket, key, secrets })
  }

  /** Sends a corrupted body again, `attempts` times in all; the final `TransferCorrupted` says how many were made. */
  const resendCorrupted = (operation: string, attempts: number) =>
  <A>(self: Effect.Effect<A, StorageError | TransferCorrupted>): Effect.Effect<A, StorageError | TransferCorrupted> =>
    self.pipe(
      Effect.retry(
        retryFew(operation, attempts - 1, (e: StorageError | TransferCorrupted) => e._tag === "TransferCorrupted")
      ),
      Effect.mapError((e) => e._tag === "TransferCorrupted" ? new TransferCorrupted({ ...e, attempts }) : e)
    )

  const fatal = (operation: string, key: string | undefined, detail: string) =>
    new StorageError({ operation, bucket, ...(key === undefined ? {} : { key }), detail, retryable: false })

  const headObject = (key: string): Effect.Effect<Option.Option<HeadResult>, StorageError> =>
    Effect.tryPromise({
      try: (signal) => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }),
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
      Effect.flatMap(Option.match({
        onNone: () => Effect.succeed(false),
        onSome: (found) =>
          found.size === size ? Effect.succeed(true) : Effect.as(
            Effect.logWarning(`S3 object ${bucket}/${key} has ${found.size} bytes, expected ${size}: overwriting it`),
            false
          )
      }))
    )

  /** One PutObject. With `ifNoneMatch`, a key that exists answers 412 and this returns `"Exists"`. */
  const putObject = (
    request: PutRequest,
    body: Effect.Effect<SingleBody>,
    ifNoneMatch: boolean
  ): Effect.Effect<"Uploaded" | "Exists", StorageError | TransferCorrupted> => {
    const headers = objectHeadersOf(request)
    return Effect.acquireUseRelease(body, (Body) =>
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
          withPayloadSha256(command, request.key)
          return client.send(headers.ContentType === undefined ? withoutDefaultContentType(command) : command, {
            abortSignal: signal
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
      ), releaseBody).pipe(resendCorrupted("PutObject", corruptAttempts))
  }

  /**
   * A single PutObject: after a HEAD (`"always"`, or `"resume"` inside its window) or conditional
   * (`If-None-Match: *`), in which case a 412 is followed by a HEAD that compares the size.
   */
  const putSingle = (
    request: PutRequest,
    body: Effect.Effect<SingleBody>
  ): Effect.Effect<PutOutcome, StorageError | TransferCorrupted> =>
    Effect.gen(function*() {
      if (headFirst()) {
        const present = yield* presentWithSize(request.key, request.size)
        noteHead(present)
        if (present) return "AlreadyPresent"
        yield* putObject(request, body, false)
        return "Uploaded"
      }
      const first = yield* putObject(request, body, true)
      if (first === "Uploaded") return "Uploaded"
      // The key exists: keep it if it has the right size, otherwise replace it.
      if (yield* presentWithSize(request.key, request.size)) {
        noteHead(true) // more present objects may follow: reopen the "resume" window
        return "AlreadyPresent"
      }
      yield* putObject(request, body, false)
      return "Uploaded"
    })

  const uploadPart = (
    request: PutRequest,
    path: string,
    uploadId: string,
    partNumber: number,
    start: number,
    length: number,
    precomputed: RangeDigests | undefined
  ): Effect.Effect<CompletedPart, StorageError | TransferCorrupted> =>
    Effect.gen(function*() {
      const digests = precomputed ??
        (yield* call("UploadPart", request.key, (signal) => digestRange(path, start, length, signal)))
      const md5 = digests.md5
      const sent = yield* Effect.acquireUseRelease(fileStream(path, start, length), (Body) =>
        send("UploadPart", request.key, (signal) =>
          client.send(
            withPayloadSha256(
              new UploadPartCommand({
                Bucket: bucket,
                Key: request.key,
                UploadId: uploadId,
                PartNumber: partNumber,
                Body,
                ContentLength: length,
                ContentMD5: md5.toString("base64")
              }),
              digests.sha256Hex
            ),
            { abortSignal: signal }
          )), destroyStream)
      // S3 part ETags are the quoted hex MD5; use ours if the server sends none.
      const etag = sent.ETag !== undefined && sent.ETag !== "" ? sent.ETag : `"${md5.toString("hex")}"`
      return { PartNumber: partNumber, ETag: etag }
    }).pipe(
      // A part that failed transiently, or arrived corrupted, is sent again; the parts already sent are kept.
      Effect.retry(retryFew<StorageError | TransferCorrupted>("UploadPart", partAttempts - 1)),
      Effect.mapError((e) => e._tag === "TransferCorrupted" ? new TransferCorrupted({ ...e, attempts: partAttempts }) : e)
    )

  const abortUpload = (key: string, uploadId: string) =>
    call("AbortMultipartUpload", key, (signal) =>
      client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), {
        abortSignal: signal
      })).pipe(
        Effect.retry(retryFew<StorageError>("AbortMultipartUpload", 3)),
        Effect.catch((e) =>
          // NoSuchUpload: already gone (completed after all, or aborted): nothing is left behind.
          e.detail.startsWith("NoSuchUpload") ? Effect.void : Effect.logError(
            `could not abort multipart upload ${uploadId} of ${bucket}/${key}: ${e.message}`
          )
        ),
        Effect.asVoid,
        Effect.uninterruptible
      )

  const putMultipart = (
    request: PutRequest,
    path: string,
    partSize: number,
    known: PartDigests | undefined
  ): Effect.Effect<void, StorageError | TransferCorrupted> => {
    const headers = objectHeadersOf(request)
    const parts = partCount(request.size, partSize)
    // The reader's part digests, if they are for this very cut of the object.
    const usable = known !== undefined && known.partSize === partSize && known.md5Base64.length === parts &&
      known.sha256Hex.length === parts
    const precomputed = (i: number): RangeDigests | undefined =>
      usable ? { md5: Buffer.from(known.md5Base64[i]!, "base64"), sha256Hex: known.sha256Hex[i]! } : undefined
    // The ledger's entry exists from before CreateMultipartUpload until after completion or abort: a run killed at any
    // point in between leaves an entry the next run acts on.
    return Effect.acquireUseRelease(
      ledger.begin(request.key),
      (entry) =>
      Effect.acquireUseRelease(
        call("CreateMultipartUpload", request.key, (signal) =>
          client.send(
            new CreateMultipartUploadCommand({
              Bucket: bucket,
              Key: request.key,
              ...headers
            }),
            { abortSignal: signal }
          )).pipe(
            Effect.flatMap((out) =>
              out.UploadId === undefined
                ? Effect.fail(fatal("CreateMultipartUpload", request.key, "the server returned no UploadId"))
                : Effect.succeed(out.UploadId)
            )
          ),
        (uploadId) =>
          Effect.gen(function*() {
            // Recorded before any part: a run killed from here on leaves an upload the next run aborts.
            yield* ledger.started(entry, uploadId)
            const completed = yield* Effect.forEach(
              Array.from({ length: parts }, (_, i) => i),
              (i) => {
                const start = i * partSize
                return uploadPart(request, path, uploadId, i + 1, start, Math.min(partSize, request.size - start), precomputed(i))
              },
              { concurrency: partConcurrency }
            )
            // its XML body can arrive corrupted too: sent again like any other body (the parts stay uploaded)
            yield* send("CompleteMultipartUpload", request.key, (signal) =>
              client.send(
                new CompleteMultipartUploadCommand({
                  Bucket: bucket,
                  Key: request.key,
                  UploadId: uploadId,
                  MultipartUpload: { Parts: completed }
                }),
                { abortSignal: signal }
              )).pipe(resendCorrupted("CompleteMultipartUpload", corruptAttempts))
          }),
        (uploadId, exit) => Exit.isSuccess(exit) ? Effect.void : abortUpload(request.key, uploadId)
      ),
      (entry) => ledger.forget(entry)
    ).pipe(
      // Ceph returns an empty ETag from CompleteMultipartUpload: check the result by its size instead.
      Effect.andThen(headObject(request.key)),
      Effect.flatMap((found) =>
        Option.isSome(found) && found.value.size === request.size
          ? Effect.void
          : Effect.fail(
            new StorageError({
              operation: "CompleteMultipartUpload",
              bucket,
              key: request.key,
              detail: `after completion the object has ${
                Option.match(found, { onNone: () => "vanished", onSome: (h) => `${h.size} bytes` })
              }, expected ${request.size}`,
              retryable: true
            })
          )
      )
    )
  }

  const put = Effect.fn("S3ObjectStore.put")(function*(request: PutRequest) {
    yield* Effect.annotateCurrentSpan({ bucket, key: request.key, size: request.size, body: request.body._tag })
    const body = request.body
    if (body._tag === "InMemory") {
      if (body.bytes.byteLength !== request.size) {
        return yield* fatal("PutObject", request.key, `body has ${body.bytes.byteLength} bytes, expected ${request.size}`)
      }
      return yield* putSingle(request, Effect.succeed(body.bytes))
    }
    const path = body.path
    const onDisk = yield* call("PutObject", request.key, () => stat(path))
    if (onDisk.size !== request.size) {
      return yield* fatal("PutObject", request.key, `spilled body ${path} has ${onDisk.size} bytes, expected ${request.size}`)
    }
    if (request.size <= effectivePartSize(config.partSize)) {
      // A fresh file stream per attempt (a 412 answer is followed by a second PUT).
      return yield* putSingle(request, request.size === 0 ? Effect.succeed(new Uint8Array(0)) : fileStream(path, 0, request.size))
    }
    const partSize = partSizeFor(request.size, config.partSize)
    if (partSize === undefined) {
      return yield* fatal("PutObject", request.key, `${request.size} bytes exceed S3's largest object`)
    }
    // Always HEAD before a multipart upload (Ceph 16 ignores If-None-Match on CompleteMultipartUpload).
    const present = yield* presentWithSize(request.key, request.size)
    noteHead(present)
    if (present) return "AlreadyPresent" as const
    yield* putMultipart(request, path, partSize, body.parts)
    return "Uploaded" as const
  })

  // HeadBucket answers without a body, so a missing bucket is a bare 404: say which bucket.
  const headBucket = Effect.tryPromise({
    try: (signal) => client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal }),
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
        detail: `${e.detail}; HEAD of a missing key must answer 404: the credentials need s3:GetObject ` +
          "(and s3:ListBucket on AWS) on the bucket"
      })
    )
  )

  const check = headBucket.pipe(Effect.andThen(headProbe), Effect.asVoid, Effect.withSpan("S3ObjectStore.check"))

  const store = ObjectStore.of({
    put,
    head: headObject,
    check
  })
  return store
}

/** The live S3 object store. */
export class S3ObjectStore {
  /** The store over an `S3ClientService` (tests add SDK middleware to its client to count or break requests). */
  static readonly layerFromClient: Layer.Layer<ObjectStore | S3UploadLedger, never, S3ClientService> = Layer.effect(
    ObjectStore,
    makeS3ObjectStore
  ).pipe(Layer.provideMerge(S3UploadLedger.layer))

  /** The store (and the ledger of its multipart uploads) with its own client, destroyed when the layer is released. */
  static layer(config: S3StoreConfig): Layer.Layer<ObjectStore | S3UploadLedger> {
    return S3ObjectStore.layerFromClient.pipe(Layer.provide(S3ClientService.layer(config)))
  }

  /** Both the store and its client (to reach the SDK client for bucket administration or request counting). */
  static layerWithClient(config: S3StoreConfig): Layer.Layer<ObjectStore | S3UploadLedger | S3ClientService> {
    return S3ObjectStore.layerFromClient.pipe(Layer.provideMerge(S3ClientService.layer(config)))
  }
}

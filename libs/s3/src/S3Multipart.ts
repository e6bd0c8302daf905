/**
 * A spilled body above the part size as one multipart upload: recorded in the upload ledger from before
 * CreateMultipartUpload until after completion or abort, its parts streamed from file ranges (a few in flight, each
 * retried on its own), the reader's part digests used when they are for this very cut, the completion's body sent
 * again when it arrives corrupted (`corruptAttempts` in all), aborted on any failure or
 * interruption, and checked by its size once complete (Ceph returns no ETag from CompleteMultipartUpload).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  type CompletedPart,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCommand
} from "@aws-sdk/client-s3"
import { type HeadResult, type PartDigests, type PutRequest, StorageError, type TransferCorrupted } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { retryFew, type S3Calls } from "./S3Calls.ts"
import {
  destroyStream,
  digestRange,
  fileStream,
  objectHeadersOf,
  type RangeDigests
} from "./S3Requests.ts"
import { sendS3 } from "./S3Send.ts"
import type { S3UploadLedger } from "./S3UploadLedger.ts"
import { partCount } from "./S3StoreConfig.ts"

export interface MultipartContext {
  readonly client: S3Client
  readonly bucket: string
  readonly ledger: S3UploadLedger["Service"]
  readonly calls: S3Calls
  /** Parts of one upload in flight at once. */
  readonly partConcurrency: number
  /** Attempts per part. */
  readonly partAttempts: number
  /** Attempts in all for the CompleteMultipartUpload body when the server received it corrupted. */
  readonly corruptAttempts: number
  readonly headObject: (key: string) => Effect.Effect<Option.Option<HeadResult>, StorageError>
}

/** `putMultipart(request, path, partSize, known)`: uploads the file at `path` in parts of `partSize`. */
export const makeMultipart = (context: MultipartContext) => {
  const { bucket, calls, client, corruptAttempts, headObject, ledger, partAttempts, partConcurrency } = context
  const { call, classify, fatal, resendCorrupted, send } = calls

  const uploadPart = Effect.fnUntraced(
    function*(
      request: PutRequest,
      path: string,
      uploadId: string,
      partNumber: number,
      start: number,
      length: number,
      precomputed: RangeDigests | undefined
    ) {
      const digests = precomputed ??
        (yield* digestRange(path, start, length).pipe(
          Effect.mapError((error) => classify("UploadPart", request.key, error))
        ))
      const md5 = digests.md5
      const sent = yield* Effect.acquireUseRelease(fileStream(path, start, length), (Body) =>
        send("UploadPart", request.key, (signal) =>
          sendS3(
            client,
            new UploadPartCommand({
              Bucket: bucket,
              Key: request.key,
              UploadId: uploadId,
              PartNumber: partNumber,
              Body,
              ContentLength: length,
              ContentMD5: md5.toString("base64")
            }),
            { abortSignal: signal, payloadSha256: digests.sha256Hex }
          )), destroyStream)
      // S3 part ETags are the quoted hex MD5; use ours if the server sends none.
      const etag = sent.ETag !== undefined && sent.ETag !== "" ? sent.ETag : `"${md5.toString("hex")}"`
      return { PartNumber: partNumber, ETag: etag } satisfies CompletedPart
    },
    // A part that failed transiently, or arrived corrupted, is sent again; the parts already sent are kept.
    resendCorrupted("UploadPart", partAttempts, { transient: true })
  )

  const abortUpload = (key: string, uploadId: string) =>
    call("AbortMultipartUpload", key, (signal) =>
      sendS3(client, new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), {
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
          sendS3(client, 
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
              sendS3(client, 
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

  return putMultipart
}

/**
 * Whether the bucket honours a conditional PUT (`If-None-Match: *`), learned once per store from its versioning.
 *
 * Measured on Ceph 16.2.15 (`test/requests.test.ts`): with versioning *Enabled* a PutObject with `If-None-Match: *`
 * on an existing key answers 200 and stores a second version; unversioned and *Suspended* buckets answer 412. So on a
 * versioned bucket the store HEADs before every PUT instead (a duplicate would cost storage forever); elsewhere a PUT
 * of a new small object needs no HEAD. When the versioning cannot be read (AccessDenied: no s3:GetBucketVersioning;
 * a server that does not implement it: 501, 405), the safe answer is assumed: not honoured, HEAD first, with a warning
 * once. Any other error fails the caller as classified (wrong credentials are named; the start-up check retries a
 * retryable one) and is not remembered.
 */
import { GetBucketVersioningCommand, type S3Client } from "@aws-sdk/client-s3"
import type { StorageError } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Semaphore from "effect/Semaphore"
import type { S3Calls } from "./S3Calls.ts"
import { s3ErrorFacts } from "./S3Errors.ts"
import { sendS3 } from "./S3Send.ts"

/**
 * Answers that say the versioning cannot be read with these credentials or on this server (retrying will not change
 * them); any other error (wrong credentials, an outage) fails as it is classified.
 */
const unreadable = (error: unknown): boolean => {
  const { httpStatus, name } = s3ErrorFacts(error)
  return name === "AccessDenied" || name === "NotImplemented" || name === "MethodNotAllowed" ||
    httpStatus === 405 || httpStatus === 501
}

/**
 * `true` when a conditional PUT to `bucket` is refused with 412 on an existing key. One GetBucketVersioning per store
 * (concurrent first callers wait for it); a retryable failure is not remembered, so the next caller asks again.
 */
export const makeConditionalPutCheck = (
  client: S3Client,
  bucket: string,
  calls: S3Calls
): Effect.Effect<boolean, StorageError> => {
  let known: boolean | undefined
  const lock = Semaphore.makeUnsafe(1)
  const learn = Effect.tryPromise({
    try: (signal) => sendS3(client, new GetBucketVersioningCommand({ Bucket: bucket }), { abortSignal: signal }),
    catch: (error) => error
  }).pipe(
      Effect.flatMap((out) =>
        out.Status === "Enabled"
          ? Effect.as(
            Effect.logInfo(
              `bucket ${bucket} has versioning enabled, where the gateway may store a conditional PUT ` +
                "(If-None-Match: *) as a new version: every PUT is preceded by a HEAD"
            ),
            false
          )
          : Effect.succeed(true)
      ),
      Effect.catch((error) => {
        const e = calls.classify("GetBucketVersioning", undefined, error)
        return !unreadable(error) ? Effect.fail(e) : Effect.as(
          Effect.logWarning(
            `could not read the versioning of bucket ${bucket} (${e.message}); assuming it is versioned: every PUT is ` +
              "preceded by a HEAD (s3:GetBucketVersioning lets the store skip them)"
          ),
          false
        )
      }),
      Effect.tap((honoured) => Effect.sync(() => void (known = honoured)))
    )
  return Effect.suspend(() =>
    known !== undefined ? Effect.succeed(known) : Semaphore.withPermit(
      lock,
      Effect.suspend(() => (known !== undefined ? Effect.succeed(known) : learn))
    )
  )
}

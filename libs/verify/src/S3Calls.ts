/**
 * One S3 request of the verifier: sent with the client of `@lo-migrate/s3` (interruptible through its abort signal),
 * its failure classified as a `StorageError` (secrets scrubbed), retried by core's one retry policy when retryable.
 */
import type { S3Client } from "@aws-sdk/client-s3"
import { type Metrics, retryInfrastructure, type StorageError } from "@lo-migrate/core"
import { classifyS3Error, S3ClientService } from "@lo-migrate/s3"
import * as Effect from "effect/Effect"

export type S3Call = <A>(
  operation: string,
  key: string | undefined,
  send: (client: S3Client, bucket: string, signal: AbortSignal) => Promise<A>
) => Effect.Effect<A, StorageError, Metrics>

export const makeS3Call: Effect.Effect<S3Call, never, S3ClientService> = Effect.map(
  S3ClientService,
  ({ client, config }): S3Call => {
    const bucket = config.bucket
    const secrets = config.secretAccessKey === undefined ? [] : [config.secretAccessKey]
    return (operation, key, send) =>
      Effect.tryPromise({
        try: (signal) => send(client, bucket, signal),
        catch: (error) => classifyS3Error(error, { operation, bucket, key, secrets })
      }).pipe(retryInfrastructure(operation))
  }
)

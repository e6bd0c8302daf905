/**
 * One S3 request of the verifier: sent with the client of `@lo-migrate/s3` (interruptible through its abort signal),
 * its failure classified as a `StorageError` (secrets scrubbed), retried by core's one retry policy when retryable.
 * `S3Fetch` also consumes the answer (e.g. a GET's body) inside the same attempt: a body cut off mid-way is fetched
 * again.
 */
import type { S3Client } from "@aws-sdk/client-s3"
import { type Metrics, retryInfrastructure, type StorageError } from "@lo-migrate/core"
import { classifyS3Error, S3ClientService } from "@lo-migrate/s3"
import * as Effect from "effect/Effect"

export type S3Send<A> = (client: S3Client, bucket: string, signal: AbortSignal) => Promise<A>

export type S3Call = <A>(operation: string, key: string | undefined, send: S3Send<A>) => Effect.Effect<A, StorageError, Metrics>

export type S3Fetch = <A, B>(
  operation: string,
  key: string | undefined,
  send: S3Send<A>,
  /** Reads the answer; its failure is classified like the request's, and both are one attempt of the retry. */
  consume: (answer: A) => Effect.Effect<B, unknown>
) => Effect.Effect<B, StorageError, Metrics>

export const makeS3Fetch: Effect.Effect<S3Fetch, never, S3ClientService> = Effect.map(
  S3ClientService,
  ({ client, config }): S3Fetch => {
    const bucket = config.bucket
    const secrets = config.secretAccessKey === undefined ? [] : [config.secretAccessKey]
    return (operation, key, send, consume) =>
      Effect.tryPromise({ try: (signal) => send(client, bucket, signal), catch: (error) => error }).pipe(
        Effect.flatMap(consume),
        Effect.mapError((error) => classifyS3Error(error, { operation, bucket, key, secrets })),
        retryInfrastructure(operation)
      )
  }
)

export const makeS3Call: Effect.Effect<S3Call, never, S3ClientService> = Effect.map(
  makeS3Fetch,
  (fetch): S3Call => (operation, key, send) => fetch(operation, key, send, Effect.succeed)
)

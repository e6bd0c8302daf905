/**
 * How the store makes its SDK calls: each one an Effect whose interruption aborts the HTTP request and whose failure is
 * a classified `StorageError` (secrets scrubbed), or `TransferCorrupted` for a body the server received corrupted; and
 * the few retries the store makes itself, built from core's one policy and counted in `Metrics` when they happen.
 * Other users of the client (verify) take the same calls from `clientCalls` and add their own retries.
 */
import type { S3Client } from "@aws-sdk/client-s3"
import { defaultRetry, Metrics, retryFrom, retrySchedule, StorageError, TransferCorrupted } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import { S3ClientService } from "./S3ClientService.ts"
import { classifyS3Error, describeS3Error, isCorruptionS3Error, s3ErrorFacts } from "./S3Errors.ts"

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
export const retryFew = <E extends { readonly retryable: boolean }>(
  operation: string,
  times: number,
  only: (e: E) => boolean = () => true
) =>
  retrySchedule({ ...defaultRetry, times }).pipe(
    Schedule.setInputType<E>(),
    Schedule.while(({ input }) => only(input)),
    Schedule.tap(() => countRetry(operation))
  )

/** The calls of a store on `bucket`, whose errors never show `secrets`. */
export const makeS3Calls = (bucket: string, secrets: ReadonlyArray<Redacted.Redacted<string>>) => {
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

  /**
   * Sends a corrupted body again, `attempts` times in all; with `transient`, also after a retryable `StorageError` (a
   * part: the parts already sent are kept). The final `TransferCorrupted` says how many attempts were made.
   * The retry is set up at the first failure (as core's `retryInfrastructure` does): a body sent once, nearly every
   * one, pays for one `catch`, not for building the schedule; the schedule sees the same failures either way.
   */
  const resendCorrupted = (operation: string, attempts: number, options?: { readonly transient?: boolean }) =>
  <A>(self: Effect.Effect<A, StorageError | TransferCorrupted>): Effect.Effect<A, StorageError | TransferCorrupted> =>
    Effect.catch(self, (first) =>
      retryFrom(
        self,
        first,
        retryFew(
          operation,
          attempts - 1,
          (e: StorageError | TransferCorrupted) => options?.transient === true || e._tag === "TransferCorrupted"
        )
      ).pipe(
        Effect.mapError((e) => e._tag === "TransferCorrupted" ? new TransferCorrupted({ ...e, attempts }) : e)
      ))

  const fatal = (operation: string, key: string | undefined, detail: string) =>
    new StorageError({ operation, bucket, ...(key === undefined ? {} : { key }), detail, retryable: false })

  /** A failure of `operation` classified like an SDK error (e.g. reading a file range to hash it). */
  const classify = (operation: string, key: string | undefined, error: unknown) =>
    classifyS3Error(error, { operation, bucket, key, secrets })

  return { call, send, corruptedOr, resendCorrupted, fatal, classify }
}

export type S3Calls = ReturnType<typeof makeS3Calls>

export interface ClientCalls extends S3Calls {
  readonly client: S3Client
  readonly bucket: string
}

/** The calls on the bucket of the `S3ClientService` in context (its secret kept out of errors), and its client. */
export const clientCalls: Effect.Effect<ClientCalls, never, S3ClientService> = Effect.map(
  S3ClientService,
  ({ client, config }) => ({
    ...makeS3Calls(config.bucket, config.secretAccessKey === undefined ? [] : [config.secretAccessKey]),
    client,
    bucket: config.bucket
  })
)

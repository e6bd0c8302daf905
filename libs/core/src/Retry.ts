import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { InfrastructureError } from "./Errors.ts"
import { Metrics } from "./Metrics.ts"

export interface RetryOptions {
  /** Attempts after the first one. */
  readonly times: number
  /** Delay before the first retry; doubles each time, with jitter. */
  readonly base: Duration.Input
  /** Upper bound of one delay. */
  readonly cap: Duration.Input
}

export const defaultRetry: RetryOptions = { times: 5, base: "200 millis", cap: "10 seconds" }

/** Exponential backoff with jitter, each delay capped (the number of retries is bounded by the caller). */
export const backoff = (options: RetryOptions = defaultRetry) =>
  Schedule.exponential(options.base).pipe(
    Schedule.jittered,
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.fromInputUnsafe(options.cap))))
  )

/**
 * Retries an infrastructure operation while its error says `retryable`, counting each retry in `Metrics`.
 * Non-retryable errors and errors after the last attempt propagate unchanged.
 */
export const retryInfrastructure = (operation: string, options: RetryOptions = defaultRetry) =>
<A, E extends InfrastructureError, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Metrics> =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    return yield* self.pipe(
      Effect.tapError((e: E) => e.retryable ? metrics.retried(operation) : Effect.void),
      Effect.retry({ schedule: backoff(options), times: options.times, while: (e: E) => e.retryable })
    )
  })

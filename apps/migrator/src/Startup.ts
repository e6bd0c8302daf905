/**
 * The checks before the migration (connecting to PostgreSQL, the batch job, the bucket and its credentials, the
 * leftovers of killed runs, the schema) under the run's one retry policy and budget: a transient outage at start-up
 * (a gateway restarting, a database failing over, a refused port) is waited out like one during the run, each retry
 * logged; a check that fails for good (a missing bucket, wrong credentials, AccessDenied, a failed login, a missing
 * database) is a configuration error, `StartupRefused`: exit 2 at once, the check and the server's answer named.
 */
import {
  DatabaseError,
  defaultRetry,
  dependencyOf,
  type InfrastructureError,
  LocalFileError,
  type RetryOptions,
  retrySchedule,
  StorageError
} from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"

/** A start-up check failed with an error that waiting does not cure: a configuration error. */
export class StartupRefused extends Schema.TaggedError<StartupRefused>()("StartupRefused", {
  check: Schema.String,
  dependency: Schema.Literals(["PostgreSQL", "S3"]),
  detail: Schema.String
}) {
  override get message() {
    return `${this.check}: ${this.detail}`
  }
}

const isRemoteError = (e: unknown): e is DatabaseError | StorageError =>
  e instanceof DatabaseError || e instanceof StorageError

const isRetryableInfrastructure = (e: unknown): e is InfrastructureError =>
  (isRemoteError(e) || e instanceof LocalFileError) && e.retryable

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** The run's one retry policy with `--retry-budget` (seconds) as its budget. */
export const retryPolicyOf = (budgetSeconds: number): RetryOptions => ({ ...defaultRetry, budget: `${budgetSeconds} seconds` })

/**
 * Runs `self` (`what`: named in the log) with its retryable infrastructure errors retried per core's `retrySchedule`
 * within `budgetSeconds`, each retry logged as a warning; every other error passes unchanged. For the steps that run
 * before a monitor can show retries (start-up, `status`, `verify`'s and `finalize`'s connect).
 */
export const retriedStep = (what: string, budgetSeconds: number) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  self.pipe(
    Effect.mapError((error) => ({ retryable: isRetryableInfrastructure(error), error })),
    Effect.retry(
      retrySchedule(retryPolicyOf(budgetSeconds)).pipe(
        Schedule.setInputType<{ readonly retryable: boolean; readonly error: E }>(),
        Schedule.tap(({ input, now, start }) =>
          Effect.logWarning(
            `${what} failed: ${messageOf(input.error)}; retrying (failing for ${
              Math.round((now - start) / 1000)
            } s, gives up after ${budgetSeconds} s: --retry-budget)`
          )
        )
      )
    ),
    Effect.mapError(({ error }) => error)
  )

/** One start-up step of `migrate`: a `retriedStep` logged as "start-up: `step`". */
export const startupStep = (step: string, budgetSeconds: number) => retriedStep(`start-up: ${step}`, budgetSeconds)

/** A non-retryable database or S3 error of the start-up check `check` as `StartupRefused`; anything else unchanged. */
const refusedAs = (check: string) => <E>(error: E): E | StartupRefused =>
  isRemoteError(error) && !error.retryable
    ? new StartupRefused({ check, dependency: dependencyOf(error) === "S3" ? "S3" : "PostgreSQL", detail: error.message })
    : error

/**
 * A start-up check of the configuration (connecting, the batch job, the bucket and the credentials, the schema and
 * the grants): a `startupStep`, and a non-retryable database or S3 error becomes `StartupRefused` (exit 2). Anything
 * else (a refusal of the check itself, a local file error) passes unchanged.
 */
export const startupCheck = (check: string, budgetSeconds: number) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | StartupRefused, R> =>
  self.pipe(startupStep(check, budgetSeconds), Effect.mapError(refusedAs(check)))

/**
 * Builds `layer` (connecting: the database pool proves its URL with a first statement) as a `retriedStep`: each
 * attempt in a scope of its own, closed when the attempt fails, so that a retried connect leaves nothing open.
 */
export const buildRetried = Effect.fn("Startup.buildRetried")(function*<ROut, E, RIn>(
  layer: Layer.Layer<ROut, E, RIn>,
  what: string,
  budgetSeconds: number
) {
  const outer = yield* Effect.scope
  return yield* Effect.gen(function*() {
    const attempt = yield* Scope.fork(outer)
    return yield* Layer.buildWithScope(layer, attempt).pipe(
      Effect.onError(() => Scope.close(attempt, Exit.void))
    )
  }).pipe(retriedStep(what, budgetSeconds))
})

/** `buildRetried` as the start-up check `check` of `migrate` (a connect that fails for good is `StartupRefused`). */
export const buildAtStartup = <ROut, E, RIn>(layer: Layer.Layer<ROut, E, RIn>, check: string, budgetSeconds: number) =>
  buildRetried(layer, `start-up: ${check}`, budgetSeconds).pipe(Effect.mapError(refusedAs(check)))

/**
 * `self` with the services of `layer`, built by `buildRetried` (`what`: named in the log) and released when `self`
 * ends: how `status`, `verify` and `finalize` connect.
 */
export const provideRetried = <ROut, E, RIn>(layer: Layer.Layer<ROut, E, RIn>, what: string, budgetSeconds: number) =>
<A, E2, R>(self: Effect.Effect<A, E2, R>) =>
  Effect.scoped(Effect.flatMap(buildRetried(layer, what, budgetSeconds), (services) => Effect.provide(self, services)))

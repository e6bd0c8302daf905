/**
 * The one retry policy of the project: exponential backoff with jitter, each delay capped, bounded by the time an
 * operation has been failing (the retry budget), and only while the error says it is retryable. Every retry in the
 * code (pipeline stages, multipart parts and aborts, DDL lock waits, corrupted uploads) is built from `retrySchedule`.
 *
 * The budget is measured in time, not attempts: an outage of a dependency (a gateway restart, a database failover) is
 * survived if it ends within the budget, however many attempts fit in it. The last attempt is made when the budget
 * runs out (the last delay is shortened to land there), so an operation never gives up before its budget is spent.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { dependencyOf, type InfrastructureError } from "./Errors.ts"
import { Metrics } from "./Metrics.ts"

export interface RetryOptions {
  /** How long one operation may keep failing with retryable errors before its last error propagates. */
  readonly budget: Duration.Input
  /** Delay before the first retry; doubles each time, with jitter (0.8-1.2x). */
  readonly base: Duration.Input
  /** Upper bound of one delay. */
  readonly cap: Duration.Input
  /** Optional bound on the number of retries as well (for failures that only a few attempts can cure). */
  readonly times?: number | undefined
}

/**
 * 5 minutes: a gateway restart or a PostgreSQL failover (primary lost, replica promoted, clients reconnect) typically
 * takes 15-60 s; 5 minutes leaves a wide margin for a slow one, and an outage longer than that wants an operator (the
 * run then ends with exit 3 and a rerun resumes). The delay grows from 200 ms to at most 10 s, so an outage is noticed
 * to be over within ~10 s.
 */
export const defaultRetry: RetryOptions = { budget: "5 minutes", base: "200 millis", cap: "10 seconds" }

/**
 * The policy in force where an operation runs: adapters that retry their own calls (e.g. each page of `LoSource`)
 * read it when they run, so the run's `--retry-budget` reaches them without being wired into every layer.
 */
export const RetryPolicy = Context.Reference<RetryOptions>("lo-migrate/RetryPolicy", { defaultValue: () => defaultRetry })

/**
 * Durations as written in options (`"5 minutes"`, `200`), parsed once: the same few policies serve every operation of
 * a run, and parsing one on each put or read showed in the profiles. Only strings and numbers are kept (a handful per
 * process); a `Duration` value is converted each time.
 */
const parsedMillis = new Map<string | number, number>()
const millis = (input: Duration.Input): number => {
  if (typeof input !== "string" && typeof input !== "number") return Duration.toMillis(Duration.fromInputUnsafe(input))
  let ms = parsedMillis.get(input)
  if (ms === undefined) {
    ms = Duration.toMillis(Duration.fromInputUnsafe(input))
    parsedMillis.set(input, ms)
  }
  return ms
}

/** Schedules built so far, by their options' values (a `Schedule` is a description: one serves any number of runs). */
const schedules = new Map<string, Schedule.Schedule<Duration.Duration, { readonly retryable: boolean }>>()

const buildSchedule = (budget: number, base: number, cap: number, times: number | undefined) =>
  Schedule.exponential(base).pipe(
    Schedule.jittered,
    Schedule.setInputType<{ readonly retryable: boolean }>(),
    Schedule.while(({ attempt, elapsed, input }) =>
      input.retryable && elapsed < budget && (times === undefined || attempt <= times)
    ),
    Schedule.modifyDelay(({ duration, elapsed }) =>
      Effect.succeed(Duration.millis(Math.max(0, Math.round(Math.min(Duration.toMillis(duration), cap, budget - elapsed)))))
    )
  )

/**
 * The policy as a `Schedule` whose input is the error: it recurs while the error is `retryable` and the time since
 * the first failure is below the budget (and, with `times`, at most that many times). Delays: `base * 2^n` jittered,
 * at most `cap`, the last one shortened so that the final attempt lands at the end of the budget.
 */
export const retrySchedule = (
  options: RetryOptions = defaultRetry
): Schedule.Schedule<Duration.Duration, { readonly retryable: boolean }> => {
  const budget = millis(options.budget)
  const cap = millis(options.cap)
  const base = millis(options.base)
  const times = options.times
  const key = `${budget}/${base}/${cap}/${times}`
  let schedule = schedules.get(key)
  if (schedule === undefined) {
    schedule = buildSchedule(budget, base, cap, times)
    schedules.set(key, schedule)
  }
  return schedule
}

/**
 * Retries an infrastructure operation per `retrySchedule`. Each retry (only one that really happens) is counted in
 * `Metrics` and records that the operation's dependency is unavailable since its first failure and until when it
 * will be retried; the record is cleared when the operation ends, either way. Non-retryable errors and the error that
 * exhausts the budget propagate unchanged.
 *
 * The retry is set up at the first failure (`retryAfter`): an operation that succeeds at once, nearly every put and
 * read, pays for one `catch`, not for a schedule's step functions. The schedule measures its budget from its first
 * step, the first failure, either way.
 */
export const retryInfrastructure = (
  operation: string,
  /** The policy; by default the `RetryPolicy` in force where the operation runs. */
  policy?: RetryOptions,
  /** Checked at each failure: `true` stops retrying and lets the error propagate (the caller handles it). */
  stopWhen: () => boolean = () => false
) =>
<A, E extends InfrastructureError, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Metrics> =>
  Effect.catch(self, (first) => retryAfter(operation, policy, stopWhen, self, first))

/**
 * One retry, for the monitor: `operation` has been failing since `start` (the schedule's first step, the first
 * failure) on the dependency `error` names, and gives up when the `budget` (ms) from then is spent; `token` ties the
 * retries of one outage together until `recovered`.
 */
const reportRetry = (
  metrics: Metrics["Service"],
  operation: string,
  budget: number,
  token: object,
  error: InfrastructureError,
  start: number,
  now: number
) =>
  metrics.retried(operation, {
    token,
    dependency: dependencyOf(error),
    since: start,
    at: now,
    giveUpAt: start + budget,
    detail: error.message
  })

/** The rest of `retryInfrastructure`: `self` has failed once, with `first`; the schedule decides from there. */
const retryAfter = Effect.fnUntraced(function*<A, E extends InfrastructureError, R>(
  operation: string,
  policy: RetryOptions | undefined,
  stopWhen: () => boolean,
  self: Effect.Effect<A, E, R>,
  first: E
): Effect.fn.Return<A, E, R | Metrics> {
  const metrics = yield* Metrics
  const options = policy ?? (yield* RetryPolicy)
  const token = {}
  const budget = millis(options.budget)
  let since: number | undefined
  const schedule = retrySchedule(options).pipe(
    Schedule.while(() => !stopWhen()),
    Schedule.tap(({ input, now, start }) =>
      Effect.suspend(() => {
        since = start
        return reportRetry(metrics, operation, budget, token, input as E, start, now)
      })
    )
  )
  return yield* retryFrom(self, first, schedule).pipe(
    Effect.ensuring(Effect.suspend(() => since === undefined ? Effect.void : metrics.recovered(token)))
  )
})

/**
 * `retryInfrastructure` for a stream that starts again where it stopped (`self` is built anew on each run, e.g. with
 * `Stream.suspend`, and resumes after the last element it gave): a retryable failure runs it again per the policy in
 * force (`RetryPolicy`), each retry counted under `operation` and shown by the monitor until an element passes again.
 * The budget starts anew once an element passes (`Stream.retry` resets its schedule then), as a source that fails
 * after making progress does: a long stream survives any number of separate outages.
 */
export const retryStreamInfrastructure = (operation: string) =>
<A, E extends InfrastructureError, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E, R | Metrics> =>
  Stream.unwrap(Effect.gen(function*() {
    const metrics = yield* Metrics
    const options = yield* RetryPolicy
    const budget = millis(options.budget)
    // the monitor's entry for the outage under way, if any
    let token: object | undefined
    const recovered = Effect.suspend(() => {
      if (token === undefined) return Effect.void
      const done = token
      token = undefined
      return metrics.recovered(done)
    })
    const schedule = retrySchedule(options).pipe(
      Schedule.tap(({ input, now, start }) =>
        Effect.suspend(() => reportRetry(metrics, operation, budget, token ??= {}, input as E, start, now))
      )
    )
    return self.pipe(
      Stream.onFirst(() => recovered),
      Stream.retry(schedule),
      Stream.ensuring(recovered)
    )
  }))

/**
 * `self` retried per `schedule` when it has already failed once, with `first`: the schedule's first input is that
 * failure, every later one comes from a new attempt. Lets a retry be set up only at the first failure, so an
 * operation that succeeds at once pays for one `catch`, not for the schedule (`retryInfrastructure`, the S3 store's
 * resend of a corrupted body).
 */
export const retryFrom = <A, E, R, X, R2>(
  self: Effect.Effect<A, E, R>,
  first: E,
  schedule: Schedule.Schedule<X, NoInfer<E>, E, R2>
): Effect.Effect<A, E, R | R2> => {
  let seen: E | undefined = first
  const attempt = Effect.suspend(() => {
    if (seen === undefined) return self
    const error = seen
    seen = undefined
    return Effect.fail(error)
  })
  return Effect.retry(attempt, schedule)
}

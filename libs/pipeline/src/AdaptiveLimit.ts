/**
 * An adaptive concurrency limit (AIMD) for the store stage: at most `limit` operations run at once; a throttling
 * failure (the server said `SlowDown` / 429) halves the limit, and every `increaseEvery` successes in a row at the
 * current limit raise it by one, up to `max` (the configured --storer-threads).
 *
 * One decrease per congestion episode: a throttle reported by an operation admitted before the last decrease is the
 * same episode (the server's answer to the old pressure) and does not halve again. This is what TCP does per round
 * trip, without needing a clock. Permits are granted first come, first served; an operation waiting for one is
 * interruptible and leaves the line when interrupted.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"

export interface AdaptiveLimitOptions {
  /** Upper bound and starting value of the limit. */
  readonly max: number
  /** Lower bound of the limit (default 1). */
  readonly min?: number
  /** Successes that raise the limit by one (default: 8). */
  readonly increaseEvery?: number
}

export interface AdaptiveLimitReading {
  readonly limit: number
  readonly max: number
  readonly inFlight: number
  readonly decreases: number
}

interface Waiter {
  wake: (() => void) | undefined
  granted: boolean
}

/** `lo_migrate_concurrency_limit{stage}`: set here as the limit moves, and from each snapshot by the app's scrape. */
export const concurrencyLimitGauge = Metric.gauge("lo_migrate_concurrency_limit", {
  description: "operations allowed at once (adaptive)"
})

export class AdaptiveLimit {
  readonly max: number
  readonly min: number
  readonly increaseEvery: number
  private limitNow: number
  private running = 0
  private successes = 0
  private decreases = 0
  /** Bumped at every decrease; a permit remembers the epoch it was granted in. */
  private epoch = 0
  private readonly waiting: Array<Waiter> = []
  private readonly gauge: typeof concurrencyLimitGauge
  /** The limit last written to the gauge: it is written when it moves, not after every operation. */
  private published: number | undefined

  constructor(options: AdaptiveLimitOptions, name = "store") {
    this.max = Math.max(1, Math.floor(options.max))
    this.min = Math.min(this.max, Math.max(1, Math.floor(options.min ?? 1)))
    this.increaseEvery = Math.max(1, Math.floor(options.increaseEvery ?? 8))
    this.limitNow = this.max
    this.gauge = Metric.withAttributes(concurrencyLimitGauge, { stage: name })
  }

  get reading(): AdaptiveLimitReading {
    return { limit: this.limitNow, max: this.max, inFlight: this.running, decreases: this.decreases }
  }

  /**
   * Runs `self` with a permit. Its success counts towards an increase; its failure, if `isThrottle` says so, lowers
   * the limit (once per episode). Other failures leave the limit as it is.
   */
  withPermit<A, E, R>(effect: Effect.Effect<A, E, R>, isThrottle: (e: E) => boolean): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) => {
      // A free permit and nobody waiting (nearly every put): admitted at once, without queueing a waiter.
      if (this.waiting.length === 0 && this.running < this.limitNow) {
        this.running++
        return this.admitted(restore(effect), this.epoch, isThrottle)
      }
      const waiter: Waiter = { wake: undefined, granted: false }
      this.waiting.push(waiter)
      this.grant()
      return restore(this.await(waiter)).pipe(
        Effect.onInterrupt(() => Effect.sync(() => this.leave(waiter))),
        Effect.flatMap(() => this.admitted(restore(effect), this.epoch, isThrottle))
      )
    })
  }

  /** Runs `effect` under a permit granted in `admittedIn`, then gives the permit back and moves the limit. */
  private admitted<A, E, R>(
    effect: Effect.Effect<A, E, R>,
    admittedIn: number,
    isThrottle: (e: E) => boolean
  ): Effect.Effect<A, E, R> {
    return Effect.flatMap(Effect.exit(effect), (exit) => {
      this.running--
      if (Exit.isSuccess(exit)) {
        this.succeeded()
      } else {
        const error = Cause.findErrorOption(exit.cause)
        if (Option.isSome(error) && isThrottle(error.value)) this.throttled(admittedIn)
      }
      this.grant()
      if (this.published === this.limitNow) return exit
      this.published = this.limitNow
      return Effect.andThen(Metric.update(this.gauge, this.limitNow), exit)
    })
  }

  private await(waiter: Waiter): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (waiter.granted) resume(Effect.void)
      else waiter.wake = () => resume(Effect.void)
    })
  }

  private leave(waiter: Waiter): void {
    if (waiter.granted) {
      waiter.granted = false
      this.running--
    } else {
      const i = this.waiting.indexOf(waiter)
      if (i >= 0) this.waiting.splice(i, 1)
    }
    waiter.wake = undefined
    this.grant()
  }

  private succeeded(): void {
    if (this.limitNow >= this.max) return
    this.successes++
    if (this.successes >= this.increaseEvery) {
      this.successes = 0
      this.limitNow++
    }
  }

  private throttled(admittedIn: number): void {
    if (admittedIn !== this.epoch) return // the same episode as the last decrease
    this.epoch++
    this.decreases++
    this.successes = 0
    this.limitNow = Math.max(this.min, Math.floor(this.limitNow / 2))
  }

  private grant(): void {
    while (this.waiting.length > 0 && this.running < this.limitNow) {
      const w = this.waiting.shift()!
      this.running++
      w.granted = true
      const wake = w.wake
      w.wake = undefined
      wake?.()
    }
  }
}

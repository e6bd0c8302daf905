/**
 * A rate limit with bounded bursts (`--max-objects-per-second`, `--max-bandwidth`): a token bucket in its GCRA form
 * (the generic cell rate algorithm: one "theoretical arrival time" instead of a token count), on Effect's `Clock`, so
 * `TestClock` drives it in tests.
 *
 * - `take(cost)` reserves `cost` units at once, in arrival order, and sleeps until the reservation is due. Over any
 *   interval of `t` seconds at most `burst + rate * t` units are admitted (a single request larger than `burst` waits
 *   until the excess is paid, then passes alone).
 * - The bucket starts with one unit of credit, not full: a run begins at the limit, not above it, so the rate over a
 *   run stays at the limit; bursts only follow idle time (the pipeline waiting on S3 or PostgreSQL), up to `burst`.
 * - Interruption while waiting (the run stopping) gives the reservation back when it is the last one, so later callers
 *   are not delayed for it; an earlier one's slot is kept (others are already scheduled after it): never above the rate.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"

export interface ThrottleOptions {
  /** Units per second; positive and finite. */
  readonly perSecond: number
  /** Most units admitted at once after idle time (default: one second's worth, at least 1). */
  readonly burst?: number
}

const waitSeconds = Metric.counter("lo_migrate_throttle_wait_seconds_total", {
  description: "time reads spent waiting for the throttle (summed over concurrent reads)",
  incremental: true
})

export class Throttle {
  readonly perSecond: number
  readonly burst: number
  /** Milliseconds one unit takes at the limit. */
  private readonly unitMillis: number
  /** The burst tolerance, in milliseconds. */
  private readonly toleranceMillis: number
  /** The theoretical arrival time: when the bucket would be empty again given every reservation so far. */
  private tat: number | undefined
  private readonly waited: typeof waitSeconds

  constructor(options: ThrottleOptions, resource = "objects") {
    if (!(Number.isFinite(options.perSecond) && options.perSecond > 0)) {
      throw new RangeError(`Throttle: perSecond must be positive and finite, got ${options.perSecond}`)
    }
    this.perSecond = options.perSecond
    this.burst = Math.max(1, options.burst ?? options.perSecond)
    this.unitMillis = 1000 / this.perSecond
    this.toleranceMillis = this.burst * this.unitMillis
    this.waited = Metric.withAttributes(waitSeconds, { resource })
  }

  /** Waits until `cost` units may pass. Interruptible (see the module comment). */
  take(cost: number): Effect.Effect<void> {
    if (!(cost > 0)) return Effect.void
    const bucket = this
    return Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // first use: one unit of credit (see the module comment)
        const tat = Math.max(bucket.tat ?? now + bucket.toleranceMillis - bucket.unitMillis, now)
        const reserved = tat + cost * bucket.unitMillis
        bucket.tat = reserved
        const wait = reserved - bucket.toleranceMillis - now
        if (wait <= 0) return
        yield* restore(Effect.sleep(Duration.millis(wait))).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              if (bucket.tat === reserved) bucket.tat = reserved - cost * bucket.unitMillis
            })
          )
        )
        yield* Metric.update(bucket.waited, wait / 1000)
      })
    )
  }
}

/** The limits of one run: objects entering the read stage, and bytes read (by the rows' sizes). */
export interface ThrottleLimits {
  readonly objectsPerSecond?: number | undefined
  readonly bytesPerSecond?: number | undefined
}

/** `100 obj/s, 8.00 MiB/s` (only the limits that are set; `none` without any). */
export const renderLimits = (limits: ThrottleLimits | undefined): string => {
  const parts: Array<string> = []
  if (limits?.objectsPerSecond !== undefined) parts.push(`${limits.objectsPerSecond} obj/s`)
  if (limits?.bytesPerSecond !== undefined) parts.push(`${(limits.bytesPerSecond / (1024 * 1024)).toFixed(2)} MiB/s`)
  return parts.length === 0 ? "none" : parts.join(", ")
}

const limitObjects = Metric.gauge("lo_migrate_throttle_limit_objects_per_second", {
  description: "--max-objects-per-second of this process (0: none)"
})
const limitBytes = Metric.gauge("lo_migrate_throttle_limit_bytes_per_second", {
  description: "--max-bandwidth of this process, in bytes per second (0: none)"
})

/** Waits until `objects` rows of `bytes` bytes may enter the read stage. */
export type Admission = (objects: number, bytes: number) => Effect.Effect<void>

/** No limit: never waits. */
export const noThrottle: Admission = () => Effect.void

/**
 * The pipeline's admission: `admit(objects, bytes)` waits for both limits that are set (objects first). Publishes the
 * limits as gauges.
 */
export const makeAdmission = Effect.fn("Throttle.makeAdmission")(function*(
  limits: ThrottleLimits
): Effect.fn.Return<Admission> {
  yield* Metric.update(limitObjects, limits.objectsPerSecond ?? 0)
  yield* Metric.update(limitBytes, limits.bytesPerSecond ?? 0)
  const objects = limits.objectsPerSecond === undefined ? undefined : new Throttle({ perSecond: limits.objectsPerSecond }, "objects")
  const bytes = limits.bytesPerSecond === undefined ? undefined : new Throttle({ perSecond: limits.bytesPerSecond }, "bytes")
  if (objects === undefined && bytes === undefined) return noThrottle
  return (n: number, b: number) =>
    Effect.andThen(objects === undefined ? Effect.void : objects.take(n), bytes === undefined ? Effect.void : bytes.take(b))
})

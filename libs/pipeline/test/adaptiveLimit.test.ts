/**
 * AdaptiveLimit under TestClock: operations are sleeps of known length, so the concurrency seen at every moment is
 * deterministic.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { AdaptiveLimit } from "../src/index.ts"

class Throttled {
  readonly _tag = "Throttled"
}
class Broken {
  readonly _tag = "Broken"
}
const isThrottle = (e: Throttled | Broken) => e._tag === "Throttled"

/** Runs `op` under the limit, recording the peak of operations running at once. */
const tracker = (limit: AdaptiveLimit) => {
  let running = 0
  let peak = 0
  const run = <E extends Throttled | Broken>(outcome: Effect.Effect<void, E>, millis = 100) =>
    limit.withPermit(
      Effect.gen(function*() {
        running++
        peak = Math.max(peak, running)
        yield* Effect.sleep(millis)
        running--
        return yield* outcome
      }),
      isThrottle
    )
  return { run, peak: () => peak, resetPeak: () => void (peak = 0) }
}

describe("AdaptiveLimit", () => {
  it.effect("runs at most `max` at once while nothing is throttled", () =>
    Effect.gen(function*() {
      const limit = new AdaptiveLimit({ max: 4 })
      const t = tracker(limit)
      const fiber = yield* Effect.forkChild(Effect.forEach(Array.from({ length: 20 }), () => t.run(Effect.void), { concurrency: 20 }))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.strictEqual(t.peak(), 4)
      assert.deepStrictEqual(limit.reading, { limit: 4, max: 4, inFlight: 0, decreases: 0 })
    }))

  it.effect("a throttle halves the limit once per episode: the other throttles of the same wave do not halve again", () =>
    Effect.gen(function*() {
      const limit = new AdaptiveLimit({ max: 16 })
      const t = tracker(limit)
      // 16 operations admitted together, all throttled: one halving, not four
      const wave = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 16 }), () => Effect.exit(t.run(Effect.fail(new Throttled()))), { concurrency: 16 })
      )
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(wave)
      assert.strictEqual(limit.reading.limit, 8)
      assert.strictEqual(limit.reading.decreases, 1)
      // the next wave was admitted after the decrease: its throttle is a new episode
      yield* Effect.forkChild(Effect.exit(t.run(Effect.fail(new Throttled()))))
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(limit.reading.limit, 4)
      // down to the minimum, never below
      for (let i = 0; i < 5; i++) {
        yield* Effect.forkChild(Effect.exit(t.run(Effect.fail(new Throttled()))))
        yield* TestClock.adjust("100 millis")
      }
      assert.strictEqual(limit.reading.limit, 1)
    }))

  it.effect("other failures leave the limit alone", () =>
    Effect.gen(function*() {
      const limit = new AdaptiveLimit({ max: 8 })
      const t = tracker(limit)
      yield* Effect.forkChild(Effect.forEach(Array.from({ length: 8 }), () => Effect.exit(t.run(Effect.fail(new Broken()))), { concurrency: 8 }))
      yield* TestClock.adjust("100 millis")
      assert.deepStrictEqual(limit.reading, { limit: 8, max: 8, inFlight: 0, decreases: 0 })
    }))

  it.effect("the lowered limit bounds what runs at once, and successes raise it by one per `increaseEvery` up to max", () =>
    Effect.gen(function*() {
      const limit = new AdaptiveLimit({ max: 8, increaseEvery: 4 })
      const t = tracker(limit)
      yield* Effect.forkChild(Effect.exit(t.run(Effect.fail(new Throttled()))))
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(limit.reading.limit, 4)
      t.resetPeak()
      // 40 successes of 100 ms: 4 at once at first; +1 after every 4 successes
      const work = yield* Effect.forkChild(Effect.forEach(Array.from({ length: 40 }), () => t.run(Effect.void), { concurrency: 40 }))
      yield* TestClock.adjust("50 millis")
      assert.strictEqual(t.peak(), 4, "the lowered limit holds")
      yield* TestClock.adjust("50 millis")
      assert.strictEqual(limit.reading.limit, 5, "4 successes: +1")
      assert.strictEqual(limit.reading.inFlight, 5)
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(work)
      assert.strictEqual(limit.reading.limit, 8, "recovered to max")
      assert.strictEqual(t.peak(), 8, "never above max")
    }))

  it.effect("an operation waiting for a permit can be interrupted, and leaves no permit behind", () =>
    Effect.gen(function*() {
      const limit = new AdaptiveLimit({ max: 1 })
      const t = tracker(limit)
      const first = yield* Effect.forkChild(t.run(Effect.void, 1000))
      const waiting = yield* Effect.forkChild(t.run(Effect.void))
      yield* TestClock.adjust("10 millis")
      yield* Fiber.interrupt(waiting)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(first)
      assert.strictEqual(limit.reading.inFlight, 0)
      const next = yield* Effect.forkChild(t.run(Effect.void))
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(next)
    }))
})

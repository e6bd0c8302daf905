import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { defaultPipelineConfig, makeAdmission, Throttle, validatePipelineConfig } from "../src/index.ts"

/** Runs `takes` (cost each) one after the other in a fiber, recording the TestClock time of each admission. */
const admissions = (throttle: Throttle, costs: ReadonlyArray<number>, times: Array<number>) =>
  Effect.forEach(costs, (cost) =>
    Effect.andThen(throttle.take(cost), Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => void times.push(t)))), {
    discard: true
  })

describe("Throttle (token bucket on Clock)", () => {
  it.effect("admits at the rate from the start: no initial burst", () =>
    Effect.gen(function*() {
      const throttle = new Throttle({ perSecond: 10, burst: 5 })
      const times: Array<number> = []
      const fiber = yield* Effect.forkChild(admissions(throttle, Array.from({ length: 50 }, () => 1), times))
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(times, [0], "the first unit passes at once")
      yield* TestClock.adjust("999 millis")
      assert.strictEqual(times.length, 11, "10 more in the first second")
      yield* TestClock.adjust("4 seconds")
      yield* Fiber.join(fiber)
      assert.strictEqual(times.length, 50)
      // one every 100 ms exactly: 49 intervals in 4.9 s
      assert.strictEqual(times.at(-1), 4900)
      for (let i = 1; i < times.length; i++) assert.strictEqual(times[i]! - times[i - 1]!, 100)
    }))

  it.effect("after idle time at most `burst` pass at once, then the rate; over any window at most burst + rate x t", () =>
    Effect.gen(function*() {
      const throttle = new Throttle({ perSecond: 10, burst: 5 })
      yield* throttle.take(1)
      yield* TestClock.adjust("10 seconds") // idle: the bucket fills up to the burst, not beyond
      const times: Array<number> = []
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), () =>
        Effect.forkChild(Effect.andThen(throttle.take(1), Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => void times.push(t))))))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(times.length, 5, "the burst")
      yield* TestClock.adjust("2 seconds")
      yield* Effect.forEach(fibers, Fiber.join, { discard: true })
      assert.strictEqual(times.length, 20)
      const start = times[0]!
      for (const a of times) {
        for (const b of times) {
          if (b < a) continue
          const inWindow = times.filter((t) => t >= a && t <= b).length
          assert.isAtMost(inWindow, 5 + Math.floor(((b - a) / 1000) * 10), `window ${a - start}..${b - start} ms`)
        }
      }
    }))

  it.effect("a request larger than the burst waits until the excess is paid, and the next one waits for it", () =>
    Effect.gen(function*() {
      const throttle = new Throttle({ perSecond: 10, burst: 10 })
      const times: Array<number> = []
      const fiber = yield* Effect.forkChild(admissions(throttle, [30, 1], times))
      yield* TestClock.adjust("2899 millis")
      assert.deepStrictEqual(times, [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(times, [2900]) // 29 units beyond the first unit of credit
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(times, [2900, 3000])
    }))

  it.effect("interrupted while waiting: the last reservation is given back; an earlier one keeps others on schedule", () =>
    Effect.gen(function*() {
      const throttle = new Throttle({ perSecond: 10, burst: 1 })
      yield* throttle.take(1) // t=0, uses the credit
      const last = yield* Effect.forkChild(throttle.take(10)) // due at 1000 ms
      yield* TestClock.adjust("500 millis")
      yield* Fiber.interrupt(last)
      // its units are not charged: the next unit is due one interval after the first
      const times: Array<number> = []
      const next = yield* Effect.forkChild(admissions(throttle, [1], times))
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(next)
      assert.deepStrictEqual(times, [500])

      // an earlier waiter interrupted: the one after it is not moved earlier, and the rate holds
      const a = yield* Effect.forkChild(throttle.take(5)) // due at 1000
      const bTimes: Array<number> = []
      const b = yield* Effect.forkChild(admissions(throttle, [5], bTimes)) // due at 1500
      yield* TestClock.adjust("100 millis")
      yield* Fiber.interrupt(a)
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(b)
      assert.deepStrictEqual(bTimes, [1500])
    }))

  it.effect("makeAdmission waits for both limits; without limits it never waits", () =>
    Effect.gen(function*() {
      const none = yield* makeAdmission({})
      yield* none(1_000_000, 1e12) // would take forever if it waited: TestClock does not move here
      const admit = yield* makeAdmission({ objectsPerSecond: 100, bytesPerSecond: 1000 })
      const times: Array<number> = []
      const fiber = yield* Effect.forkChild(
        Effect.forEach([1, 2, 3], () =>
          Effect.andThen(admit(1, 500), Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => void times.push(t)))), {
          discard: true
        })
      )
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(fiber)
      // bytes bind: 500 bytes at 1000 B/s after 1 byte of credit; then every 500 ms
      assert.deepStrictEqual(times, [499, 999, 1499])
    }))

  it("rejects a rate that is not positive and finite", () => {
    assert.throws(() => new Throttle({ perSecond: 0 }), /perSecond/)
    assert.throws(() => new Throttle({ perSecond: Number.POSITIVE_INFINITY }), /perSecond/)
  })

  it.effect("the pipeline config takes positive rates and names the field of a bad one", () =>
    Effect.gen(function*() {
      const ok = yield* validatePipelineConfig({ ...defaultPipelineConfig, maxObjectsPerSecond: 0.5, maxBytesPerSecond: 1e6 })
      assert.deepStrictEqual([ok.maxObjectsPerSecond, ok.maxBytesPerSecond], [0.5, 1e6])
      for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        const e = yield* Effect.flip(validatePipelineConfig({ ...defaultPipelineConfig, maxBytesPerSecond: bad }))
        assert.strictEqual(e.option, "maxBytesPerSecond")
      }
    }))
})

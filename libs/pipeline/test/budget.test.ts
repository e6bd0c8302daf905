import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import fc from "fast-check"
import type { Reservation } from "../src/index.ts"
import { ByteBudget } from "../src/index.ts"

describe("ByteBudget", () => {
  it("grants in arrival order: a small request does not overtake a large one", () => {
    const b = new ByteBudget(100)
    const a = b.reserve(60)
    const big = b.reserve(50)
    const small = b.reserve(10)
    assert.isTrue(a.granted)
    assert.isFalse(big.granted)
    assert.isFalse(small.granted) // 10 would fit, but waits behind the 50
    b.give(60)
    assert.isTrue(big.granted)
    assert.isTrue(small.granted)
    assert.strictEqual(b.free, 40)
  })

  it("caps a request at the whole budget; cancel gives granted bytes back or leaves the line", () => {
    const b = new ByteBudget(100)
    const huge = b.reserve(1_000)
    assert.strictEqual(huge.bytes, 100)
    assert.isTrue(huge.granted)
    const next = b.reserve(30)
    const after = b.reserve(5)
    b.cancel(next) // waiting: leaves the line, the one behind it moves up (still waiting for bytes)
    assert.isFalse(after.granted)
    b.cancel(huge) // granted: its bytes come back
    assert.isTrue(after.granted)
    assert.strictEqual(b.free, 95)
  })

  it.effect("await resumes when granted; an interrupted wait is cancelled without losing bytes", () =>
    Effect.gen(function*() {
      const b = new ByteBudget(10)
      const first = b.reserve(10)
      const second = b.reserve(10)
      const waiter = yield* Effect.forkChild(b.await(second))
      yield* Effect.yieldNow
      assert.isUndefined(waiter.pollUnsafe())
      b.give(first.bytes)
      yield* Fiber.join(waiter)
      assert.isTrue(second.granted)

      const third = b.reserve(10)
      const interrupted = yield* Effect.forkChild(
        b.await(third).pipe(Effect.onExit(() => Effect.sync(() => b.cancel(third))))
      )
      yield* Effect.yieldNow
      yield* Fiber.interrupt(interrupted)
      b.give(second.bytes)
      assert.strictEqual(b.free, 10)
    }))

  it("random reserve / give back / cancel: bytes are conserved, never negative, granted strictly in order", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("reserve" as const), bytes: fc.integer({ min: 0, max: 150 }) }),
      fc.record({ kind: fc.constant("finish" as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() })
    )
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.array(op, { maxLength: 60 }), (total, ops) => {
        const b = new ByteBudget(total)
        const all: Array<Reservation> = []
        const owned: Array<Reservation> = [] // granted and not yet given back
        let grantedOrder: Array<Reservation> = []
        const check = () => {
          const newlyGranted = all.filter((r) => r.granted && !grantedOrder.includes(r))
          grantedOrder = [...grantedOrder, ...newlyGranted]
          for (const r of newlyGranted) owned.push(r)
          const held = owned.reduce((n, r) => n + r.bytes, 0)
          assert.isAtLeast(b.free, 0)
          assert.strictEqual(b.free + held, total)
          // FIFO: every reservation made before a granted one was granted (or cancelled) too
          const lastGranted = Math.max(-1, ...grantedOrder.map((r) => all.indexOf(r)))
          for (let i = 0; i < lastGranted; i++) {
            const r = all[i]!
            assert.isTrue(grantedOrder.includes(r) || (r as { cancelled?: boolean }).cancelled === true)
          }
        }
        for (const o of ops) {
          if (o.kind === "reserve") {
            all.push(b.reserve(o.bytes))
          } else if (o.kind === "finish" && owned.length > 0) {
            const r = owned.splice(o.pick % owned.length, 1)[0]!
            b.give(r.bytes)
          } else if (o.kind === "cancel") {
            const waiting = all.filter((r) => !r.granted && !grantedOrder.includes(r) && !(r as { cancelled?: boolean }).cancelled)
            if (waiting.length > 0) {
              const r = waiting[o.pick % waiting.length]!
              ;(r as { cancelled?: boolean }).cancelled = true
              b.cancel(r)
            }
          }
          check()
        }
      }),
      { numRuns: 300 }
    )
  })
})

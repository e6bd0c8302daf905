/**
 * `InFlight`'s in-memory budget (`maxInMemoryBytes`) charges the backing buffers of the live in-memory bodies, each
 * once: a body that is a view into a bigger buffer (as the PostgreSQL reader's are) holds the whole buffer.
 */
import type { LoObject, SourceRow } from "@lo-migrate/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Result } from "effect"
import type { ValidPipelineConfig } from "../src/Config.ts"
import { InFlight } from "../src/InFlight.ts"
import { testConfig } from "./helpers.ts"

const KiB = 1024

const config = (maxInMemoryBytes: number): ValidPipelineConfig => ({
  ...testConfig({ maxInMemoryBytes, inMemoryObjectMax: 8 * KiB }),
  readBatchRows: 4,
  readBatchObjectMax: 8 * KiB
})

const row = (i: number, size: number): SourceRow => ({ hash: `h${i}`, oid: i, size, mimeType: "image/png" })

const inMemory = (r: SourceRow, bytes: Uint8Array): LoObject =>
  ({
    row: r,
    sha1: r.hash,
    sha256: "",
    md5Base64: "",
    size: bytes.byteLength,
    body: { _tag: "InMemory", bytes },
    release: Effect.void
  }) as unknown as LoObject

/** Forks a reservation of `bytes` and lets it run as far as it can: done if granted, waiting if not. */
const reserve = (inFlight: InFlight, bytes: number) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(Effect.uninterruptibleMask((restore) => inFlight.reserve([bytes], restore)))
    yield* Effect.yieldNow
    return fiber
  })

/** Reads rows of `sizes` whose bodies lie at the start of `buffer`, one after the other: reserve, then adopt. */
const read = (inFlight: InFlight, first: number, buffer: ArrayBuffer, at: number, sizes: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const claimed = sizes.reduce((a, b) => a + b, 0)
    const reservations = yield* Fiber.join(yield* reserve(inFlight, claimed))
    let offset = at
    const objects = sizes.map((size, i) => {
      const o = inMemory(row(first + i, size), new Uint8Array(buffer, offset, size))
      offset += size
      return o
    })
    yield* inFlight.adopt(reservations, objects.map(Result.succeed))
    return objects
  })

describe("InFlight: maxInMemoryBytes charges the buffers the in-memory bodies hold", () => {
  it.effect("bodies in one buffer charge it once; it is given back when the last of them is released", () =>
    Effect.gen(function*() {
      const inFlight = yield* InFlight.make(config(100 * KiB))
      const pool = new ArrayBuffer(64 * KiB)
      const [a, b] = yield* read(inFlight, 0, pool, 0, [KiB, KiB])
      // a later read whose body lies in the same buffer pins nothing more
      const [c] = yield* read(inFlight, 2, pool, 2 * KiB, [KiB])
      // 64 KiB are held, so 40 KiB do not fit in the 100 KiB budget (3 KiB of bodies would leave 97 KiB)
      const waiting = yield* reserve(inFlight, 40 * KiB)
      assert.isUndefined(waiting.pollUnsafe(), "a read must wait while the buffer is held")
      yield* inFlight.release(a!)
      yield* inFlight.release(b!)
      yield* Effect.yieldNow
      assert.isUndefined(waiting.pollUnsafe(), "the buffer is still held by the third body")
      yield* inFlight.release(c!)
      yield* Effect.yieldNow
      assert.isDefined(waiting.pollUnsafe(), "the last release gives the buffer back")
      // everything came back: the whole budget less the granted 40 KiB
      assert.isDefined((yield* reserve(inFlight, 60 * KiB)).pollUnsafe())
    }).pipe(Effect.scoped))

  it.effect("a read that pins more than it reserved takes it anyway; the next read waits until it is released", () =>
    Effect.gen(function*() {
      const inFlight = yield* InFlight.make(config(16 * KiB))
      const [small] = yield* read(inFlight, 0, new ArrayBuffer(64 * KiB), 0, [KiB])
      const next = yield* reserve(inFlight, KiB)
      assert.isUndefined(next.pollUnsafe(), "a 1 KiB body holding a 64 KiB buffer uses up a 16 KiB budget")
      yield* inFlight.release(small!)
      yield* Effect.yieldNow
      assert.isDefined(next.pollUnsafe())
      assert.isDefined((yield* reserve(inFlight, 15 * KiB)).pollUnsafe(), "the whole buffer was given back")
    }).pipe(Effect.scoped))

  it.effect("a body with a buffer of its own (a copy) charges its size, as before", () =>
    Effect.gen(function*() {
      const inFlight = yield* InFlight.make(config(16 * KiB))
      const objects = yield* Effect.forEach([0, 1, 2, 3], (i) =>
        read(inFlight, i, new ArrayBuffer(4 * KiB), 0, [4 * KiB]))
      assert.isUndefined((yield* reserve(inFlight, 1)).pollUnsafe(), "16 KiB of bodies fill a 16 KiB budget")
      yield* inFlight.release(objects[0]![0]!)
    }).pipe(Effect.scoped))
})

/**
 * `ReadUnits` on its own, over a real queue: how rows are grouped into batches and singles, that rows too big for a
 * batch are set aside (bounded) and read next in their order, that the byte budget still ends a batch, and that
 * `halt`/`dropWaiting` drop the set-aside rows too. Every row taken from the queue is in exactly one unit or dropped.
 */
import { assert, describe, it } from "@effect/vitest"
import type { SourceRow } from "@lo-migrate/core"
import { constantFrom, integer, optional, weighted } from "@lo-migrate/testing"
import { Cause, Effect, Exit, Fiber, Queue } from "effect"
import * as Arbitrary from "effect/Arbitrary"
import * as Pull from "effect/Pull"
import { type PipelineConfig, validatePipelineConfig } from "../src/Config.ts"
import { InFlight } from "../src/InFlight.ts"
import { type ReadUnit, ReadUnits } from "../src/ReadUnits.ts"
import { testConfig } from "./helpers.ts"

const KiB = 1024

/** Row `i` of a table: its hash names it, so the tests can follow it. */
const row = (i: number, size: number): SourceRow => ({ hash: `row-${i}`, oid: i, size, mimeType: null })
const rowsOf = (sizes: ReadonlyArray<number>): Array<SourceRow> => sizes.map((size, i) => row(i, size))
const names = (rows: ReadonlyArray<SourceRow>) => rows.map((r) => r.hash)

interface Setup {
  readonly queue: Queue.Queue<SourceRow, Cause.Done>
  readonly units: ReadUnits
}

/** A `ReadUnits` over an unbounded queue holding `rows` (ended after them unless `open`). */
const setup = Effect.fnUntraced(function*(
  over: Partial<PipelineConfig>,
  rows: ReadonlyArray<SourceRow>,
  options: { readonly open?: boolean } = {}
) {
  const cfg = yield* Effect.orDie(validatePipelineConfig(testConfig(over)))
  const inFlight = yield* InFlight.make(cfg)
  const queue = yield* Queue.unbounded<SourceRow, Cause.Done>()
  yield* Queue.offerAll(queue, rows)
  if (options.open !== true) yield* Queue.end(queue)
  return { queue, units: new ReadUnits(queue, cfg, inFlight) } satisfies Setup
})

/** Every unit until `next` ends. */
const drain = Effect.fnUntraced(function*(units: ReadUnits) {
  const out: Array<ReadUnit> = []
  while (true) {
    const exit = yield* Effect.exit(units.next)
    if (Exit.isFailure(exit)) {
      assert.isTrue(Pull.isDoneCause(exit.cause), Cause.pretty(exit.cause))
      return out
    }
    out.push(exit.value)
  }
})

/** Units as `B:row-0,row-2` / `S:row-1`, to compare whole sequences at once. */
const shape = (units: ReadonlyArray<ReadUnit>) => units.map((u) => `${u._tag[0]}:${names(u.rows).join(",")}`)

describe("ReadUnits", () => {
  it.effect("a batch goes on past big rows: they are set aside and read next as singles, in their order", () =>
    Effect.gen(function*() {
      // s = small (batchable), B = over readBatchObjectMax (2 KiB in testConfig)
      const S = 100, B = 4 * KiB
      const { units } = yield* setup({ readBatchRows: 4 }, rowsOf([S, B, S, S, B, S, B, S, S, S, S, B]))
      assert.deepStrictEqual(shape(yield* drain(units)), [
        "B:row-0,row-2,row-3,row-5",
        "S:row-1",
        "S:row-4",
        "S:row-6",
        "B:row-7,row-8,row-9,row-10",
        "S:row-11"
      ])
    }))

  it.effect("rows the reader will spill (above inMemoryObjectMax) are never batched: one spill file per unit", () =>
    Effect.gen(function*() {
      // readBatchObjectMax is 2 KiB in testConfig; 1.5 KiB rows would be batchable, but are spilled above 1 KiB
      const S = 100, P = 1536
      const { units } = yield* setup({ readBatchRows: 4, inMemoryObjectMax: KiB }, rowsOf([P, P, S, P, S, S]))
      assert.deepStrictEqual(shape(yield* drain(units)), ["S:row-0", "S:row-1", "B:row-2,row-4,row-5", "S:row-3"])
    }))

  it.effect("a mix with every 7th row big: full batches, the big rows as singles in order, every row once", () =>
    Effect.gen(function*() {
      const sizes = Array.from({ length: 700 }, (_, i) => (i % 7 === 3 ? 8 * KiB + i : 1 + (i * 37) % 2000))
      const rows = rowsOf(sizes)
      const { units } = yield* setup({ readBatchRows: 16 }, rows)
      const out = yield* drain(units)
      const batches = out.filter((u) => u._tag === "Batch")
      const singles = out.filter((u) => u._tag === "Single")
      const small = rows.filter((r) => r.size <= 2048)
      const big = rows.filter((r) => r.size > 2048)
      // 600 small rows: 37 full batches of 16 and the last 8 (before: about 100 batches of 6)
      assert.deepStrictEqual(batches.map((u) => u.rows.length), [...Array(37).fill(16), 8])
      assert.deepStrictEqual(names(batches.flatMap((u) => u.rows)), names(small))
      assert.deepStrictEqual(names(singles.flatMap((u) => u.rows)), names(big))
      assert.deepStrictEqual(batches.map((u) => u.bytes.claimed), batches.map((u) => u.rows.reduce((n, r) => n + r.size, 0)))
    }))

  it.effect("at most readBatchRows rows are set aside per batch: then the batch ends", () =>
    Effect.gen(function*() {
      const S = 100, B = 4 * KiB
      const rows = rowsOf([S, B, B, B, B, B, B, S, S])
      const { queue, units } = yield* setup({ readBatchRows: 4 }, rows)
      const first = yield* units.next
      assert.deepStrictEqual(shape([first]), ["S:row-0"])
      // row-0 and the 4 set aside have left the queue, no more
      assert.strictEqual(yield* Queue.size(queue), rows.length - 5)
      assert.deepStrictEqual(shape(yield* drain(units)), [
        "S:row-1",
        "S:row-2",
        "S:row-3",
        "S:row-4",
        "S:row-5",
        "S:row-6",
        "B:row-7,row-8"
      ])
    }))

  it.effect("size counts the rows set aside with those in the queue, so the monitor's read queue misses none", () =>
    Effect.gen(function*() {
      const S = 100, B = 4 * KiB
      const rows = rowsOf([S, B, B, S, B, S, S])
      const { queue, units } = yield* setup({ readBatchRows: 4, readQueue: 16 }, rows)
      assert.strictEqual(yield* units.size, rows.length)
      // the batch takes row-0, row-3, row-5, row-6 and sets row-1, row-2, row-4 aside: 3 rows wait, none in the queue
      assert.deepStrictEqual(shape([yield* units.next]), ["B:row-0,row-3,row-5,row-6"])
      assert.strictEqual(yield* Queue.size(queue), 0)
      assert.strictEqual(yield* units.size, 3)
      assert.deepStrictEqual(shape([yield* units.next]), ["S:row-1"])
      assert.strictEqual(yield* units.size, 2)
      yield* drain(units)
      assert.strictEqual(yield* units.size, 0)
      const cfg = yield* Effect.orDie(validatePipelineConfig(testConfig({ readQueue: 16, readBatchRows: 4 })))
      assert.strictEqual(ReadUnits.capacity(cfg), 20)
      const single = yield* Effect.orDie(validatePipelineConfig(testConfig({ readQueue: 16, readBatchRows: 1 })))
      assert.strictEqual(ReadUnits.capacity(single), 16)
    }))

  it.effect("a row that does not fit the byte budget ends the batch: read after the rows set aside", () =>
    Effect.gen(function*() {
      const S = 1000, B = 4 * KiB
      const { units } = yield* setup({ readBatchRows: 8, maxInFlightBytes: 3000 }, rowsOf([S, B, S, S, S, B, S]))
      const out = yield* drain(units)
      assert.deepStrictEqual(shape(out), ["B:row-0,row-2,row-3", "S:row-1", "B:row-4,row-6", "S:row-5"])
      assert.deepStrictEqual(out.map((u) => u.bytes.charges), [[3000], [B], [2000], [B]])
    }))

  it.effect("readBatchRows 1: singles in order, nothing set aside", () =>
    Effect.gen(function*() {
      const { units } = yield* setup({ readBatchRows: 1 }, rowsOf([100, 4 * KiB, 100]))
      assert.deepStrictEqual(shape(yield* drain(units)), ["S:row-0", "S:row-1", "S:row-2"])
    }))

  it.effect("stop drops the set-aside rows with those in the queue; next ends; every row once", () =>
    Effect.gen(function*() {
      const S = 100, B = 4 * KiB
      const rows = rowsOf([S, B, S, B, S, S, S, S, B])
      const { units } = yield* setup({ readBatchRows: 4 }, rows, { open: true })
      const first = yield* units.next
      assert.deepStrictEqual(shape([first]), ["B:row-0,row-2,row-4,row-5"])
      units.halt()
      const dropped = yield* units.dropWaiting
      // set aside first (row-1, row-3), then what the queue held
      assert.deepStrictEqual(names(dropped), ["row-1", "row-3", "row-6", "row-7", "row-8"])
      assert.deepStrictEqual(shape(yield* drain(units)), [])
      assert.deepStrictEqual(yield* units.dropWaiting, [])
    }))

  it.effect("stop with only set-aside rows left (the queue empty) still reports rows dropped", () =>
    Effect.gen(function*() {
      const { units } = yield* setup({ readBatchRows: 4 }, rowsOf([100, 4 * KiB, 100]), { open: true })
      assert.deepStrictEqual(shape([yield* units.next]), ["B:row-0,row-2"])
      units.halt()
      assert.deepStrictEqual(names(yield* units.dropWaiting), ["row-1"])
    }))

  it.effect("a next waiting for a row when stop comes reads that row alone and takes no more", () =>
    Effect.gen(function*() {
      const { queue, units } = yield* setup({ readBatchRows: 4 }, [], { open: true })
      const waiting = yield* Effect.forkChild(units.next)
      yield* Effect.yieldNow
      units.halt()
      yield* Queue.offerAll(queue, rowsOf([100, 4 * KiB, 100]))
      assert.deepStrictEqual(shape([yield* Fiber.join(waiting)]), ["S:row-0"])
      assert.deepStrictEqual(names(yield* units.dropWaiting), ["row-1", "row-2"])
    }))

  /** A row size: small, around the batch limit, big, or nonsensical (the reader reports those; never batched). */
  const arbRowSize = weighted<number>(
    { weight: 8, arbitrary: integer(0, 2048) },
    { weight: 3, arbitrary: integer(2049, 64 * KiB) },
    { weight: 1, arbitrary: constantFrom(-1, 1.5, Number.NaN, 2 ** 60) }
  )

  /** Offer some rows, or build a unit (only when a row is there, so that `next` does not wait), or stop. */
  type Step = { readonly _tag: "offer"; readonly n: number } | { readonly _tag: "next" } | { readonly _tag: "stop" }
  const arbStep = weighted<Step>(
    { weight: 3, arbitrary: Arbitrary.map(integer(1, 20), (n): Step => ({ _tag: "offer", n })) },
    { weight: 6, arbitrary: Arbitrary.Constant<Step>({ _tag: "next" }) },
    { weight: 1, arbitrary: Arbitrary.Constant<Step>({ _tag: "stop" }) }
  )

  it.effect.prop(
    "random sizes and arrivals: every row once (in a unit or dropped), batches bounded, order kept, batches full",
    [
      Arbitrary.array(arbRowSize, { maxLength: 150 }),
      Arbitrary.array(arbStep, { maxLength: 60 }),
      integer(1, 8),
      optional(constantFrom(1000, 3000, 10_000)),
      constantFrom(false, true)
    ],
    ([sizes, arrivals, readBatchRows, maxInFlightBytes, upFront]) =>
      Effect.gen(function*() {
        const rows = rowsOf(sizes)
        const over: Partial<PipelineConfig> = maxInFlightBytes === undefined
          ? { readBatchRows }
          : { readBatchRows, maxInFlightBytes }
        const { queue, units } = yield* setup(over, [], { open: true })
        // up front: every row is queued before the first unit is built
        const steps = upFront ? [] : arrivals
        const out: Array<ReadUnit> = []
        const dropped: Array<SourceRow> = []
        let offered = 0
        let stopped = false
        for (const step of steps) {
          if (step._tag === "offer" && !stopped) {
            yield* Queue.offerAll(queue, rows.slice(offered, offered + step.n))
            offered = Math.min(rows.length, offered + step.n)
          } else if (step._tag === "next" && (yield* Queue.size(queue)) > 0) {
            out.push(yield* units.next)
          } else if (step._tag === "stop" && !stopped) {
            stopped = true
            units.halt()
            dropped.push(...(yield* units.dropWaiting))
          }
        }
        if (!stopped) {
          yield* Queue.offerAll(queue, rows.slice(offered))
          offered = rows.length
        }
        yield* Queue.end(queue)
        out.push(...(yield* drain(units)))
        if (stopped) dropped.push(...(yield* Queue.clear(queue)))

        // every row offered is in exactly one unit or was dropped
        const seen = [...out.flatMap((u) => u.rows), ...dropped]
        assert.deepStrictEqual(names(seen).sort(), names(rows.slice(0, offered)).sort())

        const batchable = (r: SourceRow) => Number.isSafeInteger(r.size) && r.size >= 0 && r.size <= 2048
        const index = (r: SourceRow) => r.oid!
        let readSoFar = -1
        for (const u of out) {
          assert.strictEqual(u._tag, u.rows.length === 1 ? "Single" : "Batch")
          if (u._tag === "Batch") {
            assert.isAtMost(u.rows.length, readBatchRows)
            assert.isTrue(u.rows.every(batchable), `batch of batchable rows: ${u.rows.map((r) => r.size)}`)
            const claimed = u.rows.reduce((n, r) => n + r.size, 0)
            assert.strictEqual(u.bytes.claimed, claimed)
            if (maxInFlightBytes !== undefined) assert.isAtMost(claimed, maxInFlightBytes)
          }
          // a row is overtaken at most by the rest of the batch it was set aside from
          for (const r of u.rows) {
            const later = out.slice(0, out.indexOf(u)).flatMap((v) => v.rows).filter((v) => index(v) > index(r))
            assert.isAtMost(later.length, Math.max(0, readBatchRows - 1), `${r.hash} overtaken by ${names(later)}`)
            if (batchable(r)) assert.strictEqual(later.length, 0, `batchable ${r.hash} is never overtaken`)
          }
          readSoFar = Math.max(readSoFar, ...u.rows.map(index))
        }
        // the order of the rows set aside is kept
        const bigOnes = out.flatMap((u) => u.rows).filter((r) => !batchable(r)).map(index)
        assert.deepStrictEqual(bigOnes, [...bigOnes].sort((a, b) => a - b))

        // with all rows queued up front and no stop or budget, a batch is short only when the queue ran dry of small
        // rows or readBatchRows rows were set aside while it was built
        if (upFront && maxInFlightBytes === undefined) {
          for (const u of out.filter((v) => batchable(v.rows[0]!) && v.rows.length < readBatchRows)) {
            const first = index(u.rows[0]!)
            const last = index(u.rows[u.rows.length - 1]!)
            const nextSmall = rows.findIndex((r, i) => i > last && batchable(r))
            const setAside = rows.filter((r, i) => i > first && (nextSmall < 0 || i < nextSmall) && !batchable(r)).length
            assert.isTrue(nextSmall < 0 || setAside >= readBatchRows, `short batch ${names(u.rows)}`)
          }
        }
      }).pipe(Effect.scoped),
    { arbitrary: { runs: 300 } }
  )
})

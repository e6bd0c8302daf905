import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import {
  defaultPipelineConfig,
  inFlightBound,
  type PipelineConfig,
  pipelineOptionNames,
  runMigration,
  validatePipelineConfig
} from "../src/index.ts"

const invalid = (over: Partial<Record<keyof PipelineConfig, unknown>>) =>
  Effect.flip(validatePipelineConfig({ ...defaultPipelineConfig, ...over } as PipelineConfig))

describe("validatePipelineConfig", () => {
  it.effect("accepts the defaults (the original tool's, with 32 storers) and fills in the optional fields", () =>
    Effect.gen(function*() {
      const { readBatchRows: _r, readBatchObjectMax: _o, ...minimal } = defaultPipelineConfig
      const full = yield* validatePipelineConfig(minimal)
      assert.strictEqual(full.readers, 2)
      assert.strictEqual(full.storers, 32)
      assert.strictEqual(full.committers, 2)
      assert.strictEqual(full.readQueue, 8192)
      assert.strictEqual(full.storeQueue, 1024)
      assert.strictEqual(full.commitQueue, 8192)
      assert.strictEqual(full.commitChunk, 100)
      assert.strictEqual(full.readBatchRows, 64)
      assert.strictEqual(full.readBatchObjectMax, 128 * 1024)
    }))

  it.effect("names the option of every count that is not a positive integer", () =>
    Effect.gen(function*() {
      for (const [field, option] of Object.entries(pipelineOptionNames)) {
        for (const value of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "4"]) {
          const e = yield* invalid({ [field]: value })
          assert.strictEqual(e._tag, "InvalidPipelineConfig")
          assert.strictEqual(e.option, option)
          assert.include(e.message, option)
          assert.include(e.message, "positive integer")
        }
      }
      const e = yield* invalid({ readers: 0 })
      assert.strictEqual(e.message, "invalid --receiver-threads: must be a positive integer (got 0)")
    }))

  it.effect("checks the linger, the retry options and the optional byte budget", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* invalid({ commitLinger: "soon" as never })).option, "commitLinger")
      assert.strictEqual((yield* invalid({ commitLinger: "Infinity" as never })).option, "commitLinger")
      assert.strictEqual((yield* invalid({ retry: { budget: "1 minute", times: -1, base: "1 second", cap: "2 seconds" } })).option, "retry.times")
      assert.strictEqual((yield* invalid({ retry: { budget: "1 minute", base: "x" as never, cap: "2 seconds" } })).option, "retry.base")
      assert.strictEqual((yield* invalid({ retry: null })).option, "retry")
      assert.strictEqual((yield* invalid({ retry: { budget: "ever" as never, base: "1 second", cap: "2 seconds" } })).option, "retry.budget")
      assert.strictEqual((yield* invalid({ maxInFlightBytes: 0 })).option, "maxInFlightBytes")
      assert.strictEqual((yield* invalid({ maxInFlightBytes: 1.5 })).option, "maxInFlightBytes")
      const ok = yield* validatePipelineConfig({ ...defaultPipelineConfig, maxInFlightBytes: 256 * 1024 * 1024 })
      assert.strictEqual(ok.maxInFlightBytes, 256 * 1024 * 1024)
      for (const field of ["maxInMemoryBytes", "inMemoryObjectMax"] as const) {
        assert.strictEqual((yield* invalid({ [field]: 0 })).option, field)
        assert.strictEqual((yield* invalid({ [field]: -5 })).option, field)
      }
    }))

  it.effect("runMigration refuses an invalid config before touching any service", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(runMigration({ ...defaultPipelineConfig, storers: 0 }) as Effect.Effect<unknown>)
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "--storer-threads")
    }))
})

describe("inFlightBound", () => {
  it("counts read slots (+1 hand-off) x batch, the store queue and the upload slots", () => {
    const config: PipelineConfig = {
      ...defaultPipelineConfig,
      readers: 2,
      storers: 5,
      storeQueue: 1024,
      readBatchRows: 32,
      readBatchObjectMax: 64 * 1024
    }
    const bound = inFlightBound(config, 1024 * 1024)
    assert.strictEqual(bound.objects, 3 * 32 + 1024 + 5)
    // a batch holds at most 32 x 64 KiB = 2 MiB; a single at most inMemMax (1 MiB)
    assert.strictEqual(bound.bytes, 3 * 2 * 1024 * 1024 + (1024 + 5) * 1024 * 1024)
  })

  it("a memory budget that knows the reader's limit caps the bytes; one that does not, or a smaller one, does not", () => {
    const MiB = 1024 * 1024
    const config: PipelineConfig = { ...defaultPipelineConfig, storeQueue: 1024 }
    const structural = inFlightBound(config, MiB).bytes
    assert.isAbove(structural, 1000 * MiB)
    assert.strictEqual(inFlightBound({ ...config, maxInMemoryBytes: 64 * MiB, inMemoryObjectMax: MiB }, MiB).bytes, 64 * MiB)
    // objects between 512 KiB and 1 MiB would be in memory yet not charged: no bound from the budget
    assert.strictEqual(
      inFlightBound({ ...config, maxInMemoryBytes: 64 * MiB, inMemoryObjectMax: MiB / 2 }, MiB).bytes,
      structural
    )
    // a budget below one object: that object passes alone
    assert.strictEqual(inFlightBound({ ...config, maxInMemoryBytes: 1000, inMemoryObjectMax: MiB }, MiB).bytes, MiB)
    assert.strictEqual(inFlightBound({ ...config, maxInFlightBytes: 32 * MiB }, MiB).bytes, 32 * MiB)
  })
})

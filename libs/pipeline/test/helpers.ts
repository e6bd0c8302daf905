import type { RowFailed } from "@lo-migrate/core"
import {
  type BuiltWorld,
  type Expectation,
  type FakeOptions,
  fakeLayer,
  MetricsRecording,
  type World
} from "@lo-migrate/testing"
import { assert } from "@effect/vitest"
import { Effect, Exit, References } from "effect"
import { type MigrationSummary, type PipelineConfig, runMigration, type RunOptions } from "../src/index.ts"

/** Small queues and fast retries, so the property runs exercise back-pressure and retry paths quickly. */
export const testConfig = (over: Partial<PipelineConfig> = {}): PipelineConfig => ({
  readers: 3,
  storers: 3,
  committers: 2,
  readQueue: 8,
  storeQueue: 4,
  commitQueue: 8,
  commitChunk: 5,
  commitLinger: "2 millis",
  retry: { budget: "200 millis", base: "1 millis", cap: "2 millis" },
  readBatchRows: 4,
  readBatchObjectMax: 2048,
  ...over
})

export interface RunResult {
  readonly exit: Exit.Exit<MigrationSummary, unknown>
  readonly failures: ReadonlyArray<RowFailed>
  readonly recording: MetricsRecording
}

/** One run against the world's fakes (a fresh layer, as a new process would have), with a live clock. */
export const run = (
  world: World,
  config: PipelineConfig,
  options: RunOptions = {},
  fakeOptions: FakeOptions = {}
): Effect.Effect<RunResult> =>
  Effect.suspend(() => {
    world.run++
    const failures: Array<RowFailed> = []
    const recording = new MetricsRecording()
    return runMigration(config, {
      ...options,
      onRowFailed: (f) =>
        Effect.sync(() => {
          failures.push(f)
        }).pipe(Effect.andThen(options.onRowFailed?.(f) ?? Effect.void))
    }).pipe(
      Effect.provide(fakeLayer(world, fakeOptions, recording)),
      Effect.provideService(References.MinimumLogLevel, "Error"),
      Effect.exit,
      Effect.map((exit) => ({ exit, failures, recording }))
    )
  })

export const runPromise = <A>(effect: Effect.Effect<A>): Promise<A> => Effect.runPromise(effect)

/** Property 1 (final state): valid rows migrated with the right bytes and content type, bad rows NULL and reported. */
export const assertFinalState = (
  built: BuiltWorld,
  reported: ReadonlyArray<RowFailed>
): void => {
  const { world, expectations } = built
  const rowsById = new Map(world.rows.map((r) => [r.id, r]))
  for (const e of expectations) {
    const row = rowsById.get(e.rowId)
    if (row === undefined) continue
    switch (e._tag) {
      case "Migrate": {
        assert.strictEqual(row.sha2, e.sha256, `row ${row.id} sha2`)
        const object = world.bucket.get(e.sha256)
        assert.isDefined(object, `object ${e.sha256} in bucket`)
        assert.strictEqual(sha256(object!.bytes), e.sha256)
        const bytes = world.largeObjects.get(row.oid!)!
        assert.deepStrictEqual(object!.bytes, bytes)
        assert.strictEqual(object!.contentType, e.contentType, `content type of ${e.sha256}`)
        break
      }
      case "Fail": {
        assert.isNull(row.sha2, `bad row ${row.id} keeps sha2 NULL`)
        const r = reported.filter((f) => f.hash === e.hash)
        assert.isAtLeast(r.length, 1, `bad row ${JSON.stringify(e.hash)} reported`)
        assert.isTrue(r.every((f) => f.reason._tag === e.reason), `reason ${e.reason}: ${r.map((f) => f.reason._tag)}`)
        break
      }
      case "Untouched":
        assert.strictEqual(row.sha2, e.sha2)
        break
    }
  }
  // nothing but the expected objects (and those of already-migrated rows) is in the bucket
  const keys = new Set<string>()
  for (const e of expectations) {
    if (e._tag === "Migrate") keys.add(e.sha256)
    if (e._tag === "Untouched") keys.add(e.sha2)
  }
  assert.deepStrictEqual([...world.bucket.keys()].sort(), [...keys].sort())
  assert.deepStrictEqual(world.violations, [])
}

export const failuresExpected = (expectations: ReadonlyArray<Expectation>) =>
  expectations.filter((e) => e._tag === "Fail").length

import { createHash } from "node:crypto"
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

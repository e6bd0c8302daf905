/**
 * In-memory layers for the five ports, over a shared `World`. They follow the ports' contracts as the live adapters
 * must (keyset paging over `sha2 IS NULL`, verified reads with spilling, an idempotent content-addressed store, a
 * classifying committer) and add fault injection. The committer asserts, at every commit, that each key it is about to
 * record is in the bucket with exactly the right bytes: a violation is recorded in `world.violations` and the commit
 * dies with an `InvariantViolation` instead of applying anything.
 */
import type { HashCommitter, LoReader, LoSource, Metrics, ObjectStore } from "@lo-migrate/core"
import * as Layer from "effect/Layer"
import { fakeHashCommitter } from "./FakeHashCommitter.ts"
import { fakeLoReader } from "./FakeLoReader.ts"
import { fakeLoSource } from "./FakeLoSource.ts"
import { fakeObjectStore } from "./FakeObjectStore.ts"
import type { FakeOptions } from "./FakeOperations.ts"
import { MetricsRecording, recordingMetrics } from "./RecordingMetrics.ts"
import type { World } from "./World.ts"

export * from "./FakeHashCommitter.ts"
export * from "./FakeLoReader.ts"
export * from "./FakeLoSource.ts"
export * from "./FakeObjectStore.ts"
export { FakeCrash, type FakeOptions } from "./FakeOperations.ts"
export * from "./RecordingMetrics.ts"

export type FakeServices = LoSource | LoReader | ObjectStore | HashCommitter | Metrics

/** All five fakes over one world. Pass a `MetricsRecording` to inspect queue fills and failures afterwards. */
export const fakeLayer = (
  world: World,
  options: FakeOptions = {},
  recording: MetricsRecording = new MetricsRecording()
): Layer.Layer<FakeServices> =>
  Layer.mergeAll(
    fakeLoSource(world, options),
    fakeLoReader(world, options),
    fakeObjectStore(world, options),
    fakeHashCommitter(world)
  ).pipe(Layer.provideMerge(recordingMetrics(recording)))

/**
 * What a run's pipeline and monitor get from the configuration: the pipeline's config (`pipelineConfigOf`, shared
 * with the bench's stage profile), the status renderer of `--log-format`, and where status blocks go.
 */
import { type MetricsSnapshot, renderShard, type Shard } from "@lo-migrate/core"
import {
  defaultPipelineConfig,
  defaultReadBatchRows,
  type PipelineConfig,
  renderStatus,
  renderStatusLine,
  type StatusLimits,
  statusRecord,
  type ThrottleLimits
} from "@lo-migrate/pipeline"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { MigratorConfig } from "./Config.ts"
import { describeShard } from "./ConfigShard.ts"
import type { LogFormat } from "./Options.ts"
import { retryPolicyOf } from "./Startup.ts"
import { makeStatusWriter, stdoutTerminal } from "./StatusWriter.ts"

/** Where status blocks are written: the process's stdout by default (redrawn in place on a terminal); tests swap it. */
export const StatusOutput = Context.Reference<(block: string) => Effect.Effect<void>>("lo-migrate/StatusOutput", {
  defaultValue: () => makeStatusWriter(stdoutTerminal)
})

export const pipelineConfigOf = (config: MigratorConfig): PipelineConfig => ({
  ...defaultPipelineConfig,
  readers: config.receiverThreads,
  storers: config.storerThreads,
  committers: config.committerThreads,
  readQueue: config.receiverQueue,
  storeQueue: config.storerQueue,
  commitQueue: config.committerQueue,
  commitChunk: config.commitChunk,
  retry: retryPolicyOf(config.retryBudget),
  maxInMemoryBytes: config.maxInMemoryBytes,
  inMemoryObjectMax: config.inMemMax,
  ...(config.maxInFlightBytes === undefined ? {} : { maxInFlightBytes: config.maxInFlightBytes }),
  ...(config.maxObjectsPerSecond === undefined
    ? {}
    // a read batch is admitted at once: no bigger than the throttle's burst (one second's worth)
    : {
      maxObjectsPerSecond: config.maxObjectsPerSecond,
      readBatchRows: Math.max(1, Math.min(defaultReadBatchRows, Math.floor(config.maxObjectsPerSecond)))
    }),
  ...(config.maxBytesPerSecond === undefined ? {} : { maxBytesPerSecond: config.maxBytesPerSecond })
})

/** `--max-objects-per-second` and `--max-bandwidth` as the pipeline's and verify's limits (bytes per second). */
export const throttleLimitsOf = (config: MigratorConfig): ThrottleLimits => ({
  objectsPerSecond: config.maxObjectsPerSecond,
  bytesPerSecond: config.maxBytesPerSecond
})

/** A JSON record of stdout with the shard (`"1/4"`) after its `type`, so that N interleaved logs tell their processes. */
export const withShard = <R extends { readonly type: string }>(shard: Shard | undefined, record: R): R => {
  if (shard === undefined) return record
  const { type, ...rest } = record
  return { type, shard: renderShard(shard), ...rest } as unknown as R
}

/** A status line of `--log-format line`, opened by `shard 1/4: ` with a shard (migrate's and verify's alike). */
export const withShardPrefix = (shard: Shard | undefined, line: string): string =>
  shard === undefined ? line : `shard ${renderShard(shard)}: ${line}`

/**
 * The status renderer of a `--log-format` (Options.ts `logFormats`). With a shard, a JSON status has a `shard` field
 * (`"1/4"`) and a status line starts with `shard 1/4: `.
 */
export const statusRendererFor = (format: LogFormat, limits?: StatusLimits, shard?: Shard) =>
(current: MetricsSnapshot, previous?: MetricsSnapshot): string =>
  format === "json"
    ? JSON.stringify(withShard(shard, statusRecord(current, previous, limits)))
    : format === "line"
    ? withShardPrefix(shard, renderStatusLine(current, previous, limits))
    : renderStatus(current, previous, limits)

/** Each status block opens with the shard, so that N interleaved logs (or pods) tell which process they are. */
export const withShardLine = (shard: Shard | undefined, status: (block: string) => Effect.Effect<void>) =>
  shard === undefined ? status : (block: string) => status(`shard: ${describeShard(shard)}\n${block}`)

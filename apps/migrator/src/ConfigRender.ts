/** The configuration block printed at start-up, every secret replaced. */
import * as Redacted from "effect/Redacted"
import type { MigratorConfig } from "./Config.ts"
import { describeShard } from "./ConfigShard.ts"
import { redactUrl } from "./ConfigValues.ts"

const kib = (bytes: number) => `${bytes / 1024} KiB`

/** The configuration block printed at start-up. No secret appears in it, whatever the input. */
export const render = (config: MigratorConfig): string => {
  const credentials = config.accessKeyId === undefined
    ? "AWS default credential chain"
    : `access key ${config.accessKeyId}, secret key <redacted> (from the ${config.secretSource})`
  const lines = [
    "**************** configuration ****************",
    "  connections:",
    `    PostgreSQL:          ${redactUrl(Redacted.value(config.pgUrl))}`,
    `    S3 endpoint:         ${config.s3Url.toString()} (${config.pathStyle ? "path-style" : "virtual-host"}, region ${config.region})`,
    `    S3 bucket:           ${config.bucket}`,
    `    S3 credentials:      ${credentials}`,
    "  threads:",
    `    receiver threads:    ${String(config.receiverThreads).padStart(6)}`,
    `    storer threads:      ${String(config.storerThreads).padStart(6)}`,
    `    committer threads:   ${String(config.committerThreads).padStart(6)}`,
    "  queues:",
    `    receiver queue size: ${String(config.receiverQueue).padStart(6)} objects`,
    `    storer queue size:   ${String(config.storerQueue).padStart(6)} objects`,
    `    committer queue size:${String(config.committerQueue).padStart(6)} objects`,
    "  other:",
    `    max. in-memory size: ${kib(config.inMemMax)}`,
    `    upload part size:    ${kib(config.uploadChunkSize)}`,
    `    DB commit chunk size: ${config.commitChunk}`,
    `    status interval:     ${config.interval} s`,
    `    grace period:        ${config.gracePeriod} s`,
    `    retry budget:        ${config.retryBudget} s (then exit 3)`,
    `    request timeout:     ${config.requestTimeout} s without progress (S3)`,
    `    statement timeout:   ${config.pgStatementTimeout} s (PostgreSQL, the migrator's own statements)`,
    `    connect timeout:     ${config.connectTimeout} s`,
    `    in-memory cap:       ${kib(config.maxInMemoryBytes)}`,
    `    in-flight cap:       ${config.maxInFlightBytes === undefined ? "none" : kib(config.maxInFlightBytes)}`,
    `    temp dir:            ${config.tempDir}`,
    `    report:              ${config.report ?? "(none; failed rows are logged)"}`,
    `    mode:                ${config.dryRun ? "dry run (writes nothing)" : "migrate"}${config.finalize ? " + finalize" : ""}`,
    `    batch job check:     ${config.skipBatchJobCheck ? "skipped" : "on"}`,
    `    throttle:            ${
      config.maxObjectsPerSecond === undefined && config.maxBytesPerSecond === undefined
        ? "none"
        : [
          ...(config.maxObjectsPerSecond === undefined ? [] : [`${config.maxObjectsPerSecond} objects/s`]),
          ...(config.maxBytesPerSecond === undefined ? [] : [`${config.maxBytesPerSecond / 1024 / 1024} MiB/s`])
        ].join(", ") + " (this process)"
    }`,
    `    metrics endpoint:    ${
      config.metrics === undefined
        ? "none"
        : `${config.metrics.host}:${config.metrics.port}${config.metricsLinger > 0 ? `, kept ${config.metricsLinger} s after the run` : ""}`
    }`,
    `    shard:               ${describeShard(config.shard)}`
  ]
  return lines.join("\n")
}

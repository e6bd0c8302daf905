/**
 * The configuration printed at start-up, every secret replaced: the text block (`render`), or under `--log-format json`
 * one JSON record (`configurationRecord`, `type: "configuration"`) among the status records of stdout.
 */
import type { InFlightBound } from "@lo-migrate/pipeline"
import * as PgUrl from "@lo-migrate/postgres/url"
import * as Redacted from "effect/Redacted"
import type { MigratorConfig } from "./Config.ts"
import { describeShard } from "./ConfigShard.ts"
import { redactUrl } from "./ConfigValues.ts"
import { withShard } from "./RunSettings.ts"

const kib = (bytes: number) => `${bytes / 1024} KiB`

/** The configuration block printed at start-up. No secret appears in it, whatever the input. */
/** `--max-objects-per-second` and `--max-bandwidth` as the header shows them (`100 objects/s, 8 MiB/s`); none set: undefined. */
export const describeThrottle = (config: MigratorConfig): string | undefined =>
  config.maxObjectsPerSecond === undefined && config.maxBytesPerSecond === undefined
    ? undefined
    : [
      ...(config.maxObjectsPerSecond === undefined ? [] : [`${config.maxObjectsPerSecond} objects/s`]),
      ...(config.maxBytesPerSecond === undefined ? [] : [`${config.maxBytesPerSecond / 1024 / 1024} MiB/s`])
    ].join(", ")

/** The same limits in a JSON configuration record (`null`: none). */
export const throttleRecord = (config: MigratorConfig) => ({
  objectsPerSecond: config.maxObjectsPerSecond ?? null,
  bytesPerSecond: config.maxBytesPerSecond ?? null
})

export const render = (config: MigratorConfig): string => {
  const credentials = config.accessKeyId === undefined
    ? "AWS default credential chain"
    : `access key ${config.accessKeyId}, secret key <redacted> (from the ${config.secretSource})`
  const lines = [
    "**************** configuration ****************",
    "  connections:",
    `    PostgreSQL:          ${redactUrl(Redacted.value(config.pgUrl))}`,
    `    PostgreSQL server:   ${PgUrl.describeServers(config.pgOptions)}`,
    `    PostgreSQL TLS:      ${config.pgOptions.tls.checks}`,
    `    PostgreSQL password: ${config.pgOptions.passwordSource === undefined ? "none" : `from the ${config.pgOptions.passwordSource}`}`,
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
    `    PostgreSQL pooler:   ${config.pgTransactionPooler ? "transaction mode (statements unnamed)" : "none declared"}`,
    `    throttle:            ${describeThrottle(config)?.concat(" (this process)") ?? "none"}`,
    `    metrics endpoint:    ${
      config.metrics === undefined
        ? "none"
        : `${config.metrics.host}:${config.metrics.port}${config.metricsLinger > 0 ? `, kept ${config.metricsLinger} s after the run` : ""}`
    }`,
    `    OTLP metrics:        ${
      config.otlp === undefined
        ? "none"
        : `${redactUrl(config.otlp.url.toString())} (${config.otlp.protocol}, every ${config.otlp.intervalMillis / 1000} s)`
    }`,
    `    shard:               ${describeShard(config.shard)}`
  ]
  return lines.join("\n")
}

/**
 * The connections as JSON-ready fields, secrets replaced: `postgres` (the URL without its password) and `s3` (endpoint,
 * bucket, region, path style, credentials with the secret key as `"<redacted>"`). Shared by the configuration record
 * and `verify`'s.
 */
export const connectionsRecord = (config: MigratorConfig) => ({
  postgres: redactUrl(Redacted.value(config.pgUrl)),
  postgresServer: PgUrl.describeServers(config.pgOptions),
  s3: {
    endpoint: config.s3Url.toString(),
    bucket: config.bucket,
    region: config.region,
    pathStyle: config.pathStyle,
    credentials: config.accessKeyId === undefined
      ? { source: "AWS default credential chain" }
      : { accessKeyId: config.accessKeyId, secretKey: "<redacted>", source: config.secretSource }
  }
})

/**
 * The configuration as one JSON-ready record: the settings of the text block under fixed names, numbers in base units
 * (bytes, seconds), `null` where the block says "none". The secret key is never in it (`"<redacted>"` when given), and
 * the PostgreSQL URL has its password replaced. With a shard, `shard` is `"I/N"` (as in the status records).
 */
export const configurationRecord = (config: MigratorConfig, bound: InFlightBound) =>
  withShard(config.shard, {
  type: "configuration" as const,
  ...connectionsRecord(config),
  threads: { receiver: config.receiverThreads, storer: config.storerThreads, committer: config.committerThreads },
  queues: { receiver: config.receiverQueue, storer: config.storerQueue, committer: config.committerQueue },
  inMemMaxBytes: config.inMemMax,
  uploadPartSizeBytes: config.uploadChunkSize,
  commitChunk: config.commitChunk,
  intervalSeconds: config.interval,
  gracePeriodSeconds: config.gracePeriod,
  retryBudgetSeconds: config.retryBudget,
  requestTimeoutSeconds: config.requestTimeout,
  statementTimeoutSeconds: config.pgStatementTimeout,
  connectTimeoutSeconds: config.connectTimeout,
  maxInMemoryBytes: config.maxInMemoryBytes,
  maxInFlightBytes: config.maxInFlightBytes ?? null,
  inFlightBound: { objects: bound.objects, bytes: bound.bytes },
  tempDir: config.tempDir,
  report: config.report ?? null,
  mode: config.dryRun ? "dry run" : "migrate",
  finalize: config.finalize,
  batchJobCheck: !config.skipBatchJobCheck,
  throttle: throttleRecord(config),
  metrics: config.metrics === undefined
    ? null
    : { host: config.metrics.host, port: config.metrics.port, lingerSeconds: config.metricsLinger },
  otlpMetrics: config.otlp === undefined
    ? null
    : {
      endpoint: redactUrl(config.otlp.url.toString()),
      protocol: config.otlp.protocol,
      intervalSeconds: config.otlp.intervalMillis / 1000
    }
  })

/**
 * The validated configuration of one run, resolved from the parsed flags and the environment, and its printable form.
 *
 * `resolve` is the single place that decides whether the options are usable: every rule names the option it is about,
 * and it runs before anything connects. Secrets stay `Redacted` from the command line or the environment to the layer
 * that needs them; `render` prints the configuration with every secret replaced.
 */
import { parseShard, parseShardCount, parseShardIndex, renderShard, type Shard, shardRange } from "@lo-migrate/core"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { tmpdir } from "node:os"
import { defaults, env, type LogFormat, minUploadChunkKiB, type RawOptions } from "./Options.ts"

/** Bad usage or configuration: exit code 2, and the message names the option. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  option: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `${this.option}: ${this.detail}`
  }
}

export type SecretSource = "command line" | "environment" | "default chain"

export interface MigratorConfig {
  readonly pgUrl: Redacted.Redacted<string>
  /** Where the PostgreSQL password came from, if the URL carries one. */
  readonly pgPasswordSource: Exclude<SecretSource, "default chain"> | undefined
  readonly s3Url: URL
  readonly bucket: string
  readonly region: string
  readonly pathStyle: boolean
  /** Both absent: the AWS default credential chain (environment, profile, instance metadata, ...). */
  readonly accessKeyId: string | undefined
  readonly secretAccessKey: Redacted.Redacted<string> | undefined
  readonly secretSource: SecretSource
  readonly receiverThreads: number
  readonly storerThreads: number
  readonly committerThreads: number
  readonly receiverQueue: number
  readonly storerQueue: number
  readonly committerQueue: number
  /** Bytes. */
  readonly inMemMax: number
  /** Bytes. */
  readonly uploadChunkSize: number
  readonly commitChunk: number
  /** Seconds. */
  readonly interval: number
  /** Seconds. */
  readonly gracePeriod: number
  /** Seconds. */
  readonly retryBudget: number
  /** Seconds. */
  readonly requestTimeout: number
  /** Seconds. */
  readonly pgStatementTimeout: number
  /** Seconds. */
  readonly connectTimeout: number
  /** Bytes; `undefined`: no cap beyond the structural bound of the queues. */
  readonly maxInMemoryBytes: number
  readonly maxInFlightBytes: number | undefined
  readonly finalize: boolean
  readonly dryRun: boolean
  readonly report: string | undefined
  readonly logFormat: LogFormat
  readonly tempDir: string
  readonly skipBatchJobCheck: boolean
  /** `--max-objects-per-second`: rows per second into the read stage, this process; absent: no limit. */
  readonly maxObjectsPerSecond: number | undefined
  /** `--max-bandwidth`, in bytes per second; absent: no limit. */
  readonly maxBytesPerSecond: number | undefined
  /** `--metrics-port`/`--metrics-host`: where to serve Prometheus metrics; absent: no endpoint. */
  readonly metrics: { readonly host: string; readonly port: number } | undefined
  /** Seconds the metrics endpoint stays up after the run. */
  readonly metricsLinger: number
  /** `--shard I/N` (or `JOB_COMPLETION_INDEX` with `--shards N`); `undefined`: the whole table. */
  readonly shard: Shard | undefined
  /** Warnings to print once the logger is set up (e.g. a secret on the command line). */
  readonly warnings: ReadonlyArray<string>
}

const positive = (option: string, value: number, max = Number.MAX_SAFE_INTEGER) =>
  Number.isSafeInteger(value) && value >= 1 && value <= max
    ? Effect.succeed(value)
    : Effect.fail(new UsageError({ option, detail: `must be a whole number from 1 to ${max}, got ${value}` }))

const required = <A>(option: string, envName: string, value: Option.Option<A>) =>
  Option.match(value, {
    onNone: () => Effect.fail(new UsageError({ option, detail: `is required (or set ${envName})` })),
    onSome: Effect.succeed
  })

const parseUrl = (option: string, raw: string, protocols: ReadonlyArray<string>, shown: string) =>
  Effect.suspend(() => {
    const url = URL.canParse(raw) ? new URL(raw) : undefined
    if (url === undefined) {
      return Effect.fail(new UsageError({ option, detail: `is not a valid URL: ${shown}` }))
    }
    if (!protocols.includes(url.protocol)) {
      return Effect.fail(
        new UsageError({ option, detail: `must start with ${protocols.map((p) => `${p}//`).join(" or ")}, got ${shown}` })
      )
    }
    if (url.hostname === "") {
      return Effect.fail(new UsageError({ option, detail: `has no host: ${shown}` }))
    }
    return Effect.succeed(url)
  })

/** A URL with its password (and any `password` query parameter) replaced, safe to print. */
export const redactUrl = (raw: string): string => {
  if (!URL.canParse(raw)) return "<unparsable URL, not shown>"
  const url = new URL(raw)
  if (url.password !== "") url.password = "<redacted>"
  for (const key of [...url.searchParams.keys()]) {
    if (/pass|secret|key|token/i.test(key)) url.searchParams.set(key, "<redacted>")
  }
  return decodeURIComponent(url.toString())
}

const hasPassword = (url: URL) =>
  url.password !== "" || [...url.searchParams.keys()].some((k) => /^password$/i.test(k))

/** The environment variables that `resolve` reads itself (the other options read theirs through their flags). */
const secretEnv = Config.all({
  pgUrl: Config.Redacted(env.pgUrl).pipe(Config.option),
  secretKey: Config.Redacted(env.secretKey).pipe(Config.option)
})

/** `--report FILE` (repeatable), else `LO_MIGRATE_REPORT`; an empty name is a usage error. */
export const resolveReports = Effect.fn("Config.resolveReports")(function*(
  raw: RawOptions
): Effect.fn.Return<ReadonlyArray<string>, UsageError> {
  const reports = raw.report.length > 0
    ? raw.report
    : Option.toArray(
      yield* Config.String(env.report).pipe(
        Config.option,
        Effect.mapError((e) => new UsageError({ option: "--report", detail: e.message }))
      )
    )
  if (reports.some((r) => r.trim() === "")) {
    return yield* new UsageError({ option: "--report", detail: "must not be empty" })
  }
  return reports
})

/** A parse `Result` as an Effect, its failure a `UsageError` about `option`. */
export const fromResult = (option: string) => <A>(result: Result.Result<A, string>) =>
  Result.isSuccess(result)
    ? Effect.succeed(result.success)
    : Effect.fail(new UsageError({ option, detail: result.failure }))

/**
 * The shard of this process: `--shard I/N` (env `LO_MIGRATE_SHARD`); else, in a Kubernetes Indexed Job,
 * `JOB_COMPLETION_INDEX` of `--shards N` (env `LO_MIGRATE_SHARDS`); else none (the whole table). A `--shards` that
 * contradicts `--shard`, a `JOB_COMPLETION_INDEX` without a shard count, or an index out of range is a usage error:
 * a wrong shard silently skips or repeats a part of the table.
 */
export const resolveShard = Effect.fn("Config.resolveShard")(function*(
  raw: RawOptions
): Effect.fn.Return<Shard | undefined, UsageError> {
  const shards = Option.isNone(raw.shards)
    ? undefined
    : yield* fromResult("--shards")(parseShardCount(String(raw.shards.value)))
  if (Option.isSome(raw.shard)) {
    const shard = yield* fromResult("--shard")(parseShard(raw.shard.value))
    if (shards !== undefined && shards !== shard.count) {
      return yield* new UsageError({
        option: "--shards",
        detail: `says ${shards} shards but --shard ${raw.shard.value} says ${shard.count}; give one of them`
      })
    }
    return shard
  }
  const index = yield* Config.String(env.jobCompletionIndex).pipe(
    Config.option,
    Effect.mapError((e) => new UsageError({ option: env.jobCompletionIndex, detail: e.message }))
  )
  if (Option.isNone(index)) return undefined
  if (shards === undefined) {
    return yield* new UsageError({
      option: "--shards",
      detail: `${env.jobCompletionIndex}=${index.value} is set (a Kubernetes Indexed Job) but not the number of ` +
        `shards: set --shards N or ${env.shards} to the Job's completions (or --shard I/N)`
    })
  }
  const i = yield* fromResult(env.jobCompletionIndex)(parseShardIndex(index.value, shards))
  return { index: i, count: shards }
})

/** How the shard is shown: `2/4 (hash >= 8000..., < c000...)`. */
export const describeShard = (shard: Shard | undefined): string => {
  if (shard === undefined) return "none (the whole table)"
  const { high, low } = shardRange(shard)
  const bounds = [low === undefined ? [] : [`>= ${low}`], high === undefined ? [] : [`< ${high}`]].flat()
  return `${renderShard(shard)} (hash ${bounds.length === 0 ? "any" : bounds.join(", ")})`
}

const resolvePg = Effect.fn("Config.resolvePg")(function*(
  raw: RawOptions,
  pgFromEnv: Option.Option<Redacted.Redacted<string>>,
  warnings: Array<string>
) {
  const pgFromCli = Option.isSome(raw.pgUrl)
  const pgUrl = yield* required("--pg-url", env.pgUrl, Option.orElse(raw.pgUrl, () => pgFromEnv))
  const pgParsed = yield* parseUrl(
    "--pg-url",
    Redacted.value(pgUrl),
    ["postgres:", "postgresql:"],
    redactUrl(Redacted.value(pgUrl))
  )
  const pgPasswordSource: "command line" | "environment" | undefined = hasPassword(pgParsed)
    ? (pgFromCli ? "command line" : "environment")
    : undefined
  if (pgPasswordSource === "command line") {
    warnings.push(
      `--pg-url carries a password on the command line, where other users can read it in the process list; set ${env.pgUrl} or use ~/.pgpass instead`
    )
  }

  return { pgUrl, pgPasswordSource }
})

/** The part of the configuration `finalize` needs: only the database. */
export interface DatabaseConfig {
  readonly pgUrl: Redacted.Redacted<string>
  readonly logFormat: LogFormat
  readonly warnings: ReadonlyArray<string>
}

/** Like `resolve`, for the subcommands that only talk to PostgreSQL (S3 options are ignored). */
export const resolveDatabase = Effect.fn("Config.resolveDatabase")(function*(
  raw: RawOptions
): Effect.fn.Return<DatabaseConfig, UsageError> {
  const warnings: Array<string> = []
  const fromEnv = yield* secretEnv.pipe(
    Effect.mapError((e) => new UsageError({ option: "environment", detail: e.message }))
  )
  const { pgUrl } = yield* resolvePg(raw, fromEnv.pgUrl, warnings)
  return { pgUrl, logFormat: raw.logFormat, warnings }
})

/**
 * Validates the parsed options and completes them from the environment. Fails with `UsageError` (exit code 2) naming
 * the first offending option.
 */
export const resolve = Effect.fn("Config.resolve")(function*(
  raw: RawOptions
): Effect.fn.Return<MigratorConfig, UsageError> {
  const warnings: Array<string> = []
  const fromEnv = yield* secretEnv.pipe(
    Effect.mapError((e) => new UsageError({ option: "environment", detail: e.message }))
  )

  const { pgUrl, pgPasswordSource } = yield* resolvePg(raw, fromEnv.pgUrl, warnings)

  const s3Raw = yield* required("--s3-url", env.s3Url, raw.s3Url)
  const s3Url = yield* parseUrl("--s3-url", s3Raw, ["http:", "https:"], s3Raw)
  const bucket = yield* required("--bucket", env.bucket, raw.bucket)
  if (!/^[A-Za-z0-9._-]{1,255}$/.test(bucket)) {
    return yield* new UsageError({ option: "--bucket", detail: `is not a valid bucket name: ${JSON.stringify(bucket)}` })
  }
  if (raw.region.trim() === "") {
    return yield* new UsageError({ option: "--region", detail: "must not be empty" })
  }

  const secretFromCli = Option.isSome(raw.secretKey)
  const secret = Option.orElse(raw.secretKey, () => fromEnv.secretKey)
  const accessKeyId = Option.getOrUndefined(raw.accessKey)
  if (Option.isSome(secret) !== (accessKeyId !== undefined)) {
    return yield* new UsageError({
      option: Option.isSome(secret) ? "--access-key" : "--secret-key",
      detail: `access key and secret key go together: give both (or ${env.accessKey} and ${env.secretKey}), or neither to use the AWS default credential chain`
    })
  }
  if (secretFromCli) {
    warnings.push(
      `--secret-key on the command line is visible to other users in the process list; set ${env.secretKey} instead`
    )
  }

  const uploadChunkKiB = yield* positive("--upload-chunk-size", raw.uploadChunkSize, 5 * 1024 * 1024)
  if (uploadChunkKiB < minUploadChunkKiB) {
    return yield* new UsageError({
      option: "--upload-chunk-size",
      detail: `must be at least ${minUploadChunkKiB} KiB (5 MiB, the S3 minimum part size), got ${uploadChunkKiB}`
    })
  }
  const tempDir = Option.getOrElse(raw.tempDir, () => tmpdir())
  if (tempDir.trim() === "") {
    return yield* new UsageError({ option: "--temp-dir", detail: "must not be empty" })
  }
  const reports = yield* resolveReports(raw)
  if (reports.length > 1) {
    return yield* new UsageError({
      option: "--report",
      detail: `is given ${reports.length} times; this command writes one report (only status reads several)`
    })
  }
  const report = reports[0]
  const shard = yield* resolveShard(raw)
  if (shard === undefined && Option.isSome(raw.shards)) {
    warnings.push(
      `--shards ${raw.shards.value} without --shard I/N or ${env.jobCompletionIndex}: this process takes the whole table`
    )
  }

  const rate = (option: string, value: Option.Option<number>) =>
    Option.isNone(value) || (Number.isFinite(value.value) && value.value > 0 && value.value <= 1e12)
      ? Effect.succeed(Option.getOrUndefined(value))
      : Effect.fail(new UsageError({ option, detail: `must be a positive number, got ${value.value}` }))
  const maxObjectsPerSecond = yield* rate("--max-objects-per-second", raw.maxObjectsPerSecond)
  const maxBandwidthMiB = yield* rate("--max-bandwidth", raw.maxBandwidth)

  let metrics: MigratorConfig["metrics"] = undefined
  if (Option.isSome(raw.metricsPort)) {
    const port = raw.metricsPort.value
    if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
      return yield* new UsageError({ option: "--metrics-port", detail: `must be a port from 0 to 65535, got ${port}` })
    }
    if (raw.metricsHost.trim() === "") {
      return yield* new UsageError({ option: "--metrics-host", detail: "must not be empty" })
    }
    metrics = { host: raw.metricsHost.trim(), port }
  }
  if (!Number.isSafeInteger(raw.metricsLinger) || raw.metricsLinger < 0 || raw.metricsLinger > 86_400) {
    return yield* new UsageError({
      option: "--metrics-linger",
      detail: `must be a whole number of seconds from 0 to 86400, got ${raw.metricsLinger}`
    })
  }

  return {
    pgUrl,
    pgPasswordSource,
    s3Url,
    bucket,
    region: raw.region,
    pathStyle: raw.pathStyle,
    accessKeyId,
    secretAccessKey: Option.getOrUndefined(secret),
    secretSource: Option.isNone(secret) ? "default chain" : secretFromCli ? "command line" : "environment",
    receiverThreads: yield* positive("--receiver-threads", raw.receiverThreads, 1024),
    storerThreads: yield* positive("--storer-threads", raw.storerThreads, 1024),
    committerThreads: yield* positive("--committer-threads", raw.committerThreads, 1024),
    receiverQueue: yield* positive("--receiver-queue", raw.receiverQueue, 10_000_000),
    storerQueue: yield* positive("--storer-queue", raw.storerQueue, 10_000_000),
    committerQueue: yield* positive("--committer-queue", raw.committerQueue, 10_000_000),
    inMemMax: (yield* positive("--in-mem-max", raw.inMemMax, 4 * 1024 * 1024)) * 1024,
    uploadChunkSize: uploadChunkKiB * 1024,
    commitChunk: yield* positive("--commit-chunk", raw.commitChunk, 100_000),
    interval: yield* positive("--interval", raw.interval, 86_400),
    gracePeriod: yield* positive("--grace-period", raw.gracePeriod, 86_400),
    retryBudget: yield* positive("--retry-budget", raw.retryBudget, 7 * 86_400),
    requestTimeout: yield* positive("--request-timeout", raw.requestTimeout, 86_400),
    pgStatementTimeout: yield* positive("--pg-statement-timeout", raw.pgStatementTimeout, 86_400),
    connectTimeout: yield* positive("--connect-timeout", raw.connectTimeout, 86_400),
    maxInMemoryBytes: (yield* positive("--max-in-memory", raw.maxInMemory, 1024 * 1024)) * 1024 * 1024,
    maxInFlightBytes: Option.isNone(raw.maxInFlight)
      ? undefined
      : (yield* positive("--max-in-flight", raw.maxInFlight.value, 1024 * 1024)) * 1024 * 1024,
    finalize: raw.finalize,
    dryRun: raw.dryRun,
    report,
    logFormat: raw.logFormat,
    tempDir,
    skipBatchJobCheck: raw.skipBatchJobCheck,
    maxObjectsPerSecond,
    maxBytesPerSecond: maxBandwidthMiB === undefined ? undefined : maxBandwidthMiB * 1024 * 1024,
    metrics,
    metricsLinger: raw.metricsLinger,
    shard,
    warnings
  } satisfies MigratorConfig
})

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


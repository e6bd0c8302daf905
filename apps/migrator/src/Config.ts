/**
 * The validated configuration of one run, resolved from the parsed flags and the environment (the checks of one
 * value: ConfigValues.ts; the shard: ConfigShard.ts; the printed block: ConfigRender.ts).
 *
 * `resolve` is the single place that decides whether the options are usable: every rule names the option it is about,
 * and it runs before anything connects. Secrets stay `Redacted` from the command line or the environment to the layer
 * that needs them.
 */
import type { Shard } from "@lo-migrate/core"
// the subpath, not the barrel: option resolution must not load the PostgreSQL driver (start-up of --help, usage errors)
import * as PgUrl from "@lo-migrate/postgres/url"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { tmpdir } from "node:os"
import { type OtlpConfig, resolveOtlp } from "./ConfigOtlp.ts"
import { resolveShard } from "./ConfigShard.ts"
import { hasPassword, parseUrl, positive, redactUrl, required, UsageError } from "./ConfigValues.ts"
import { env, type LogFormat, minUploadChunkKiB, type RawOptions } from "./Options.ts"

export type SecretSource = "command line" | "environment" | "default chain"

export interface MigratorConfig {
  readonly pgUrl: Redacted.Redacted<string>
  /** The URL read as libpq reads it: TLS, the password from PGPASSWORD / the password file (`PgUrl.ts`). */
  readonly pgOptions: PgUrl.PgConnectionOptions
  /** Where the PostgreSQL password came from, if the URL carries one. */
  readonly pgPasswordSource: Exclude<SecretSource, "default chain"> | undefined
  /** `--pg-transaction-pooler`: statements are sent unnamed (`PgDatabase`'s `preparedStatements` off). */
  readonly pgTransactionPooler: boolean
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
  /** OTLP metrics export from the `OTEL_*` environment (ConfigOtlp.ts); absent: none. */
  readonly otlp: OtlpConfig | undefined
  /** `--shard I/N` (or `JOB_COMPLETION_INDEX` with `--shards N`); `undefined`: the whole table. */
  readonly shard: Shard | undefined
  /** Warnings to print once the logger is set up (e.g. a secret on the command line). */
  readonly warnings: ReadonlyArray<string>
}

/** The environment variables that `resolve` reads itself (the other options read theirs through their flags). */
const secretEnv = Config.all({
  pgUrl: Config.Redacted(env.pgUrl).pipe(Config.option),
  secretKey: Config.Redacted(env.secretKey).pipe(Config.option)
})

const readSecretEnv = secretEnv.pipe(
  Effect.mapError((e) => new UsageError({ option: "environment", detail: e.message }))
)

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

/** libpq's environment variables (`PGPASSWORD`, `PGSSLMODE`, ...), `HOME` and `USER`, read through `Config`. */
const readPgEnvironment = Effect.gen(function*() {
  const env: Record<string, string | undefined> = {}
  for (const name of [...PgUrl.environmentVariables, ...PgUrl.ignoredEnvironmentVariables, "HOME", "USER"]) {
    const value = yield* Config.String(name).pipe(
      Config.option,
      Effect.mapError((e) => new UsageError({ option: "environment", detail: `${name}: ${e.message}` }))
    )
    if (Option.isSome(value)) env[name] = value.value
  }
  return PgUrl.environmentOf(env)
})

const resolvePg = Effect.fn("Config.resolvePg")(function*(
  raw: RawOptions,
  pgFromEnv: Option.Option<Redacted.Redacted<string>>,
  warnings: Array<string>
) {
  const pgFromCli = Option.isSome(raw.pgUrl)
  const given = yield* required("--pg-url", env.pgUrl, Option.orElse(raw.pgUrl, () => pgFromEnv))
  // libpq's `postgresql://user@/db` (a Unix socket, or PGHOST) in a form the URL parser reads
  const pgUrl = Redacted.make(PgUrl.normalize(Redacted.value(given)))
  const pgParsed = yield* parseUrl(
    "--pg-url",
    Redacted.value(pgUrl),
    ["postgres:", "postgresql:"],
    redactUrl(Redacted.value(pgUrl)),
    true
  )
  const pgPasswordSource: "command line" | "environment" | undefined = hasPassword(pgParsed)
    ? (pgFromCli ? "command line" : "environment")
    : undefined
  if (pgPasswordSource === "command line") {
    warnings.push(
      `--pg-url carries a password on the command line, where other users can read it in the process list; set ${env.pgUrl}, PGPASSWORD or use ~/.pgpass instead`
    )
  }
  const pgOptions = yield* PgUrl.resolve(pgUrl, yield* readPgEnvironment).pipe(
    Effect.mapError((e) => new UsageError({ option: "--pg-url", detail: e.message }))
  )
  warnings.push(...pgOptions.warnings)

  return { pgUrl, pgPasswordSource, pgOptions }
})

/** The part of the configuration `finalize` needs: only the database. */
export interface DatabaseConfig {
  readonly pgUrl: Redacted.Redacted<string>
  readonly pgOptions: PgUrl.PgConnectionOptions
  readonly pgTransactionPooler: boolean
  readonly logFormat: LogFormat
  /** `--retry-budget`, seconds: how long connecting and each statement may keep failing on an unavailable server. */
  readonly retryBudget: number
  /** `--connect-timeout`, seconds: to open one connection (each failed attempt is retried within the budget). */
  readonly connectTimeout: number
  readonly warnings: ReadonlyArray<string>
}

/** Like `resolve`, for the subcommands that only talk to PostgreSQL (S3 options are ignored). */
export const resolveDatabase = Effect.fn("Config.resolveDatabase")(function*(
  raw: RawOptions
): Effect.fn.Return<DatabaseConfig, UsageError> {
  const warnings: Array<string> = []
  const fromEnv = yield* readSecretEnv
  const { pgOptions, pgUrl } = yield* resolvePg(raw, fromEnv.pgUrl, warnings)
  const retryBudget = yield* positive("--retry-budget", raw.retryBudget, 7 * 86_400)
  const connectTimeout = yield* positive("--connect-timeout", raw.connectTimeout, 86_400)
  return {
    pgUrl,
    pgOptions,
    pgTransactionPooler: raw.pgTransactionPooler,
    logFormat: raw.logFormat,
    retryBudget,
    connectTimeout,
    warnings
  }
})

/**
 * Validates the parsed options and completes them from the environment. Fails with `UsageError` (exit code 2) naming
 * the first offending option.
 */
export const resolve = Effect.fn("Config.resolve")(function*(
  raw: RawOptions
): Effect.fn.Return<MigratorConfig, UsageError> {
  const warnings: Array<string> = []
  const fromEnv = yield* readSecretEnv

  const { pgOptions, pgPasswordSource, pgUrl } = yield* resolvePg(raw, fromEnv.pgUrl, warnings)

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
    pgOptions,
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
    pgTransactionPooler: raw.pgTransactionPooler,
    maxObjectsPerSecond,
    maxBytesPerSecond: maxBandwidthMiB === undefined ? undefined : maxBandwidthMiB * 1024 * 1024,
    metrics,
    metricsLinger: raw.metricsLinger,
    otlp: yield* resolveOtlp,
    shard,
    warnings
  } satisfies MigratorConfig
})

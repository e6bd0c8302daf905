/**
 * The command-line options. The original tool's options keep their names and meaning (`-p/--pg-url`, `-u/--s3-url`,
 * `--receiver-threads`, `--in-mem-max` in KiB, ...); each option also reads an environment variable, and the help text
 * names it and the default.
 *
 * Flags only parse (type errors such as `--storer-threads abc` are reported by effect/cli); the rules that need more than
 * one value or a range (positive sizes, the 5 MiB part minimum, URLs) are checked by `Config.resolve`, before anything
 * connects, so that an invalid value always ends with exit code 2 and names the option.
 */
import { defaultPipelineConfig } from "@lo-migrate/pipeline"
import { defaultS3StoreConfig, minPartSize } from "@lo-migrate/s3"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Flag from "effect/cli/Flag"

/**
 * Defaults of the original tool (`lo_migrate_cli`) plus the options this rewrite adds. Where a library owns a value
 * (the pipeline's threads and queues, the S3 store's part size, timeouts and addressing) it is read from there, so
 * that the CLI and the libraries cannot disagree; the flags' units (KiB, seconds) are converted here.
 */
export const defaults = {
  receiverThreads: defaultPipelineConfig.readers,
  /** 5 in the original tool; 32 measured 1.4x faster against Ceph RGW (see tools/bench/README.md). */
  storerThreads: defaultPipelineConfig.storers,
  committerThreads: defaultPipelineConfig.committers,
  receiverQueue: defaultPipelineConfig.readQueue,
  storerQueue: defaultPipelineConfig.storeQueue,
  committerQueue: defaultPipelineConfig.commitQueue,
  /** KiB. Objects up to this size are held in memory; larger ones are spilled to a temp file. */
  inMemMax: 1024,
  /** KiB. S3 multipart part size; objects larger than one part are uploaded in parts. */
  uploadChunkSize: defaultS3StoreConfig.partSize / 1024,
  commitChunk: defaultPipelineConfig.commitChunk,
  /** MiB. Cap on the bytes of objects held in memory between read and upload (spilled objects do not count). */
  maxInMemory: 32,
  /** Seconds between two status blocks. */
  interval: 10,
  /** Seconds allowed, after Ctrl-C/SIGTERM, to finish and commit what is already in flight. */
  gracePeriod: 30,
  /**
   * Seconds an operation may keep failing on an unavailable dependency (S3, PostgreSQL, a full --temp-dir) before the
   * run gives up with exit 3: gateway restarts and database failovers typically take 15-60 s; 5 minutes leaves margin.
   */
  retryBudget: Duration.toSeconds(Duration.fromInputUnsafe(defaultPipelineConfig.retry.budget)),
  /** Seconds an S3 request may go without progress (waiting for the first byte, or a stalled body) before it is retried. */
  requestTimeout: (defaultS3StoreConfig.socketTimeoutMs ?? 20_000) / 1000,
  /**
   * Seconds one of the migrator's own PostgreSQL statements (a read of a row or a batch, one chunk of a streamed read,
   * a commit batch, a page of pending rows) may go unanswered before it is cancelled and retried on a fresh
   * connection. Each is bounded work that takes milliseconds; a minute leaves room for a loaded server or a lock held
   * a while by the application. Never applied to the count of all rows.
   */
  pgStatementTimeout: 60,
  /** Seconds to open one connection (TCP, TLS, PostgreSQL authentication). */
  connectTimeout: (defaultS3StoreConfig.connectionTimeoutMs ?? 5_000) / 1000,
  region: defaultS3StoreConfig.region,
  logFormat: "text" as LogFormat,
  pathStyle: defaultS3StoreConfig.forcePathStyle,
  metricsHost: "127.0.0.1",
  /** Seconds the metrics endpoint stays up after the run. */
  metricsLinger: 0
} as const

/**
 * `--log-format`: `text` logs as text lines and the status as the original tool's block (redrawn in place on a
 * terminal); `json` logs as JSON lines and the status as one JSON object per interval on stdout; `line` logs as text
 * and the status as one line of text per interval (for pipes and plain log files).
 */
export const logFormats = ["text", "json", "line"] as const
export type LogFormat = (typeof logFormats)[number]

/** S3's smallest allowed multipart part (except the last), in KiB. */
export const minUploadChunkKiB = minPartSize / 1024

/** Environment variables, one per option. Credentials use the names the AWS tools use. */
export const env = {
  pgUrl: "PG_URL",
  s3Url: "S3_URL",
  bucket: "S3_BUCKET",
  accessKey: "AWS_ACCESS_KEY_ID",
  secretKey: "AWS_SECRET_ACCESS_KEY",
  region: "AWS_REGION",
  receiverThreads: "LO_MIGRATE_RECEIVER_THREADS",
  storerThreads: "LO_MIGRATE_STORER_THREADS",
  committerThreads: "LO_MIGRATE_COMMITTER_THREADS",
  receiverQueue: "LO_MIGRATE_RECEIVER_QUEUE",
  storerQueue: "LO_MIGRATE_STORER_QUEUE",
  committerQueue: "LO_MIGRATE_COMMITTER_QUEUE",
  inMemMax: "LO_MIGRATE_IN_MEM_MAX",
  uploadChunkSize: "LO_MIGRATE_UPLOAD_CHUNK_SIZE",
  commitChunk: "LO_MIGRATE_COMMIT_CHUNK",
  interval: "LO_MIGRATE_INTERVAL",
  gracePeriod: "LO_MIGRATE_GRACE_PERIOD",
  retryBudget: "LO_MIGRATE_RETRY_BUDGET",
  requestTimeout: "LO_MIGRATE_REQUEST_TIMEOUT",
  pgStatementTimeout: "LO_MIGRATE_PG_STATEMENT_TIMEOUT",
  connectTimeout: "LO_MIGRATE_CONNECT_TIMEOUT",
  maxInFlight: "LO_MIGRATE_MAX_IN_FLIGHT",
  maxInMemory: "LO_MIGRATE_MAX_IN_MEMORY",
  finalize: "LO_MIGRATE_FINALIZE",
  dryRun: "LO_MIGRATE_DRY_RUN",
  report: "LO_MIGRATE_REPORT",
  logFormat: "LO_MIGRATE_LOG_FORMAT",
  logLevel: "LO_MIGRATE_LOG_LEVEL",
  tempDir: "LO_MIGRATE_TEMP_DIR",
  pathStyle: "LO_MIGRATE_PATH_STYLE",
  skipBatchJobCheck: "LO_MIGRATE_SKIP_BATCH_JOB_CHECK",
  maxObjectsPerSecond: "LO_MIGRATE_MAX_OBJECTS_PER_SECOND",
  maxBandwidth: "LO_MIGRATE_MAX_BANDWIDTH",
  metricsPort: "LO_MIGRATE_METRICS_PORT",
  metricsHost: "LO_MIGRATE_METRICS_HOST",
  metricsLinger: "LO_MIGRATE_METRICS_LINGER",
  shard: "LO_MIGRATE_SHARD",
  shards: "LO_MIGRATE_SHARDS",
  /** Set by Kubernetes in every pod of an Indexed Job (0 to completions - 1): the shard index when --shard is absent. */
  jobCompletionIndex: "JOB_COMPLETION_INDEX"
} as const

const describe = (text: string, envName: string, defaultValue?: string | number | boolean) =>
<A>(self: Flag.Flag<A>): Flag.Flag<A> =>
  Flag.withDescription(self, `${text} [env ${envName}]${defaultValue === undefined ? "" : ` (default: ${defaultValue})`}`)

const int = (name: string, key: keyof typeof env & keyof typeof defaults, text: string) =>
  Flag.Int(name).pipe(
    describe(text, env[key], defaults[key] as number),
    Flag.withFallbackConfig(Config.Int(env[key])),
    Flag.withDefault(defaults[key] as number)
  )

const bool = (name: string, key: keyof typeof env, text: string, defaultValue = false) =>
  Flag.Boolean(name).pipe(
    describe(text, env[key], defaultValue),
    Flag.withFallbackConfig(Config.Boolean(env[key])),
    Flag.withDefault(defaultValue)
  )

/**
 * Every option, shared by the default command (`migrate`) and the subcommands. Secrets (`--secret-key`, a password in
 * `--pg-url`) are read from the command line here without an environment fallback: `Config.resolve` reads their
 * environment variables itself, so that it knows where a secret came from and can warn about the process list.
 */
export const flags = {
  pgUrl: Flag.Redacted("pg-url").pipe(
    Flag.withAlias("p"),
    Flag.withMetavar("URL"),
    Flag.withDescription(
      `PostgreSQL URL, postgresql://USER[:PASS]@HOST[:PORT]/DB_NAME (required) [env ${env.pgUrl}; prefer the env or ~/.pgpass for the password]`
    ),
    Flag.optional
  ),
  s3Url: Flag.String("s3-url").pipe(
    Flag.withAlias("u"),
    Flag.withMetavar("URL"),
    Flag.withDescription(`URL of the S3 endpoint, e.g. https://rgw.example (required) [env ${env.s3Url}]`),
    Flag.withFallbackConfig(Config.String(env.s3Url)),
    Flag.optional
  ),
  accessKey: Flag.String("access-key").pipe(
    Flag.withAlias("k"),
    Flag.withMetavar("KEY"),
    Flag.withDescription(
      `S3 access key id [env ${env.accessKey}] (default: the AWS default credential chain)`
    ),
    Flag.withFallbackConfig(Config.String(env.accessKey)),
    Flag.optional
  ),
  secretKey: Flag.Redacted("secret-key").pipe(
    Flag.withAlias("s"),
    Flag.withMetavar("KEY"),
    Flag.withDescription(
      `S3 secret key [env ${env.secretKey}; on the command line it is visible in the process list and prints a warning]`
    ),
    Flag.optional
  ),
  bucket: Flag.String("bucket").pipe(
    Flag.withAlias("b"),
    Flag.withMetavar("NAME"),
    Flag.withDescription(`Name of the S3 bucket (required) [env ${env.bucket}]`),
    Flag.withFallbackConfig(Config.String(env.bucket)),
    Flag.optional
  ),
  region: Flag.String("region").pipe(
    describe("S3 region (signature scope)", env.region, defaults.region),
    Flag.withFallbackConfig(Config.String(env.region)),
    Flag.withDefault(defaults.region)
  ),
  pathStyle: bool(
    "path-style",
    "pathStyle",
    "Path-style S3 URLs (endpoint/bucket/key), as Ceph RGW and MinIO want; --no-path-style for virtual hosts",
    defaults.pathStyle
  ),
  receiverThreads: int("receiver-threads", "receiverThreads", "Number of receiver (large-object reader) workers"),
  storerThreads: int("storer-threads", "storerThreads", "Number of storer (S3 upload) workers"),
  committerThreads: int("committer-threads", "committerThreads", "Number of committer (sha2 UPDATE) workers"),
  receiverQueue: int("receiver-queue", "receiverQueue", "Size of the receiver queue (rows waiting to be read)"),
  storerQueue: int("storer-queue", "storerQueue", "Size of the storer queue (objects waiting to be uploaded)"),
  committerQueue: int("committer-queue", "committerQueue", "Size of the committer queue (hashes waiting to be committed)"),
  inMemMax: int("in-mem-max", "inMemMax", "Max. size of a Large Object kept in memory, in KiB (larger ones go to --temp-dir)"),
  uploadChunkSize: int("upload-chunk-size", "uploadChunkSize", "S3 multipart part size, in KiB (at least 5120 = 5 MiB)"),
  commitChunk: int("commit-chunk", "commitChunk", "Number of SHA-2 hashes committed per DB transaction"),
  interval: int("interval", "interval", "Interval in which the status is shown, in seconds").pipe(Flag.withAlias("i")),
  gracePeriod: int(
    "grace-period",
    "gracePeriod",
    "After Ctrl-C/SIGTERM: seconds to finish and commit what is in flight before giving up"
  ),
  retryBudget: int(
    "retry-budget",
    "retryBudget",
    "Seconds an operation may keep failing on an unavailable S3, PostgreSQL or full --temp-dir (retried with backoff) " +
      "before the run ends with exit 3"
  ),
  requestTimeout: int(
    "request-timeout",
    "requestTimeout",
    "Seconds an S3 request may go without progress (no first byte yet, or a stalled body) before it is aborted and " +
      "retried on a fresh connection"
  ),
  pgStatementTimeout: int(
    "pg-statement-timeout",
    "pgStatementTimeout",
    "Seconds one of the migrator's PostgreSQL statements (a read, a commit batch, a page of pending rows; never the " +
      "count of all rows) may go unanswered before it is cancelled and retried on a fresh connection"
  ),
  connectTimeout: int(
    "connect-timeout",
    "connectTimeout",
    "Seconds to open one connection to S3 or PostgreSQL (a failed connect is retried within --retry-budget)"
  ),
  maxInMemory: int(
    "max-in-memory",
    "maxInMemory",
    "Cap on the bytes of objects held in memory between read and upload, in MiB (objects above --in-mem-max are " +
      "spilled to --temp-dir and not counted): memory stays bounded whatever the object sizes"
  ),
  maxInFlight: Flag.Int("max-in-flight").pipe(
    Flag.withMetavar("MiB"),
    Flag.withDescription(
      `Cap on the bytes read and not yet uploaded, memory and temp files alike, in MiB [env ${env.maxInFlight}] ` +
        "(default: none; an object larger than the cap waits until it is alone). Bounds temp-dir space"
    ),
    Flag.withFallbackConfig(Config.Int(env.maxInFlight)),
    Flag.optional
  ),
  finalize: bool(
    "finalize",
    "finalize",
    "After a complete migration, add the NOT NULL constraint and the UNIQUE index on sha2"
  ).pipe(Flag.withAlias("f")),
  dryRun: bool(
    "dry-run",
    "dryRun",
    "Check schema, batch job, bucket and credentials; print rows and bytes left; write nothing"
  ),
  // Repeatable for `status`, which reads several reports; migrate and verify write one (checked by Config.resolve,
  // which also reads the environment variable: a repeatable flag has no fallback of its own).
  report: Flag.String("report").pipe(
    Flag.withMetavar("FILE"),
    Flag.withDescription(
      `Write every failed row as a JSON line {hash, oid, reason, detail} to FILE; status: count the rows of the ` +
        `reports given (repeatable) [env ${env.report}]`
    ),
    Flag.atLeast(0)
  ),
  logFormat: Flag.Literals("log-format", logFormats).pipe(
    describe(
      "Logs on stderr and status on stdout: text (the status block), json (JSON log lines, one JSON status object per " +
        "--interval), line (text logs, one status line per --interval)",
      env.logFormat,
      defaults.logFormat
    ),
    Flag.withFallbackConfig(Config.Literals(logFormats, env.logFormat)),
    Flag.withDefault(defaults.logFormat)
  ),
  tempDir: Flag.String("temp-dir").pipe(
    Flag.withMetavar("DIR"),
    Flag.withDescription(`Directory for objects larger than --in-mem-max [env ${env.tempDir}] (default: the OS temp dir)`),
    Flag.withFallbackConfig(Config.String(env.tempDir)),
    Flag.optional
  ),
  skipBatchJobCheck: bool(
    "skip-batch-job-check",
    "skipBatchJobCheck",
    "Skip the pre-flight that refuses to run while the application's binary batch job is enabled"
  ),
  maxObjectsPerSecond: Flag.Finite("max-objects-per-second").pipe(
    Flag.withMetavar("N"),
    Flag.withDescription(
      `Throttle: at most N rows enter the read stage per second, this process (bursts of at most one second's worth ` +
        `after idle time; with K shards each process gets 1/K of the total) [env ${env.maxObjectsPerSecond}] (default: none)`
    ),
    Flag.withFallbackConfig(Config.Finite(env.maxObjectsPerSecond)),
    Flag.optional
  ),
  maxBandwidth: Flag.Finite("max-bandwidth").pipe(
    Flag.withMetavar("MiB/s"),
    Flag.withDescription(
      `Throttle: at most this many MiB per second read from PostgreSQL (and so uploaded), this process, charged by ` +
        `the rows' sizes when their read starts [env ${env.maxBandwidth}] (default: none)`
    ),
    Flag.withFallbackConfig(Config.Finite(env.maxBandwidth)),
    Flag.optional
  ),
  metricsPort: Flag.Int("metrics-port").pipe(
    Flag.withMetavar("PORT"),
    Flag.withDescription(
      `Serve Prometheus metrics on http://--metrics-host:PORT/metrics during the run (0: any free port, logged) ` +
        `[env ${env.metricsPort}] (default: no endpoint)`
    ),
    Flag.withFallbackConfig(Config.Int(env.metricsPort)),
    Flag.optional
  ),
  metricsHost: Flag.String("metrics-host").pipe(
    Flag.withMetavar("ADDRESS"),
    describe("Address the metrics endpoint listens on (0.0.0.0: every interface)", env.metricsHost, defaults.metricsHost),
    Flag.withFallbackConfig(Config.String(env.metricsHost)),
    Flag.withDefault(defaults.metricsHost)
  ),
  metricsLinger: Flag.Int("metrics-linger").pipe(
    Flag.withMetavar("SECS"),
    describe(
      "Seconds the metrics endpoint stays up after the run has ended, so that a last scrape sees the final counts " +
        "(a signal ends the wait)",
      env.metricsLinger,
      defaults.metricsLinger
    ),
    Flag.withFallbackConfig(Config.Int(env.metricsLinger)),
    Flag.withDefault(defaults.metricsLinger)
  ),
  shard: Flag.String("shard").pipe(
    Flag.withMetavar("I/N"),
    Flag.withDescription(
      `Take only the rows whose hash falls in the I-th of N equal ranges of the SHA-1 key space (0 <= I < N); ` +
        `N processes with 0/N .. N-1/N split the table without a coordinator [env ${env.shard}] (default: the whole ` +
        `table, or ${env.jobCompletionIndex}/--shards in a Kubernetes Indexed Job). verify: ranges of the SHA-256 keys`
    ),
    Flag.withFallbackConfig(Config.String(env.shard)),
    Flag.optional
  ),
  shards: Flag.Int("shards").pipe(
    Flag.withMetavar("N"),
    Flag.withDescription(
      `Number of shards: with ${env.jobCompletionIndex} (set by a Kubernetes Indexed Job) this process takes shard ` +
        `${env.jobCompletionIndex}/N; for status, show the N shards [env ${env.shards}]`
    ),
    Flag.withFallbackConfig(Config.Int(env.shards)),
    Flag.optional
  )
} as const

/** What the flags parse to, before `Config.resolve` validates and completes it. */
export interface RawOptions {
  readonly pgUrl: Option.Option<Redacted.Redacted<string>>
  readonly s3Url: Option.Option<string>
  readonly accessKey: Option.Option<string>
  readonly secretKey: Option.Option<Redacted.Redacted<string>>
  readonly bucket: Option.Option<string>
  readonly region: string
  readonly pathStyle: boolean
  readonly receiverThreads: number
  readonly storerThreads: number
  readonly committerThreads: number
  readonly receiverQueue: number
  readonly storerQueue: number
  readonly committerQueue: number
  readonly inMemMax: number
  readonly uploadChunkSize: number
  readonly commitChunk: number
  readonly interval: number
  readonly gracePeriod: number
  readonly retryBudget: number
  readonly requestTimeout: number
  readonly pgStatementTimeout: number
  readonly connectTimeout: number
  readonly maxInMemory: number
  readonly maxInFlight: Option.Option<number>
  readonly finalize: boolean
  readonly dryRun: boolean
  /** `--report FILE`, as often as given (none: `LO_MIGRATE_REPORT`, read by `Config.resolve`). */
  readonly report: ReadonlyArray<string>
  readonly logFormat: LogFormat
  readonly tempDir: Option.Option<string>
  readonly skipBatchJobCheck: boolean
  readonly shard: Option.Option<string>
  readonly shards: Option.Option<number>
  readonly maxObjectsPerSecond: Option.Option<number>
  readonly maxBandwidth: Option.Option<number>
  readonly metricsPort: Option.Option<number>
  readonly metricsHost: string
  readonly metricsLinger: number
}

/**
 * What the flags parse to when none is given and no environment variable is set. A program that configures a run
 * without a command line (the bench's stage profile) starts from it and goes through `Config.resolve` like the CLI.
 */
export const defaultRawOptions: RawOptions = {
  pgUrl: Option.none(),
  s3Url: Option.none(),
  accessKey: Option.none(),
  secretKey: Option.none(),
  bucket: Option.none(),
  region: defaults.region,
  pathStyle: defaults.pathStyle,
  receiverThreads: defaults.receiverThreads,
  storerThreads: defaults.storerThreads,
  committerThreads: defaults.committerThreads,
  receiverQueue: defaults.receiverQueue,
  storerQueue: defaults.storerQueue,
  committerQueue: defaults.committerQueue,
  inMemMax: defaults.inMemMax,
  uploadChunkSize: defaults.uploadChunkSize,
  commitChunk: defaults.commitChunk,
  interval: defaults.interval,
  gracePeriod: defaults.gracePeriod,
  retryBudget: defaults.retryBudget,
  requestTimeout: defaults.requestTimeout,
  connectTimeout: defaults.connectTimeout,
  pgStatementTimeout: defaults.pgStatementTimeout,
  maxInMemory: defaults.maxInMemory,
  maxInFlight: Option.none(),
  finalize: false,
  dryRun: false,
  report: [],
  logFormat: defaults.logFormat,
  tempDir: Option.none(),
  skipBatchJobCheck: false,
  shard: Option.none(),
  shards: Option.none(),
  maxObjectsPerSecond: Option.none(),
  maxBandwidth: Option.none(),
  metricsPort: Option.none(),
  metricsHost: defaults.metricsHost,
  metricsLinger: defaults.metricsLinger
}

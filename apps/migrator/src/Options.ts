/**
 * What the command-line options are: their defaults, their environment variables, and what they parse to
 * (`RawOptions`). The flags themselves (effect/cli) are in Flags.ts. The original tool's options keep their names and
 * meaning (`-p/--pg-url`, `-u/--s3-url`, `--receiver-threads`, `--in-mem-max` in KiB, ...); each option also reads an
 * environment variable, and the help text names it and the default.
 *
 * Flags only parse (type errors such as `--storer-threads abc` are reported by effect/cli); the rules that need more than
 * one value or a range (positive sizes, the 5 MiB part minimum, URLs) are checked by `Config.resolve`, before anything
 * connects, so that an invalid value always ends with exit code 2 and names the option.
 */
import { defaultPipelineConfig } from "@lo-migrate/pipeline/config"
import { defaultS3StoreConfig, minPartSize } from "@lo-migrate/s3/config"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"

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
  pgTransactionPooler: "LO_MIGRATE_PG_TRANSACTION_POOLER",
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
  readonly pgTransactionPooler: boolean
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
  pgTransactionPooler: false,
  shard: Option.none(),
  shards: Option.none(),
  maxObjectsPerSecond: Option.none(),
  maxBandwidth: Option.none(),
  metricsPort: Option.none(),
  metricsHost: defaults.metricsHost,
  metricsLinger: defaults.metricsLinger
}

/**
 * The command-line flags (effect/cli), shared by the default command (`migrate`) and the subcommands: each with its
 * environment variable and default from Options.ts, named in its help text. Flags only parse; `Config.resolve` checks.
 */
import * as Config from "effect/Config"
import * as Flag from "effect/cli/Flag"
import { defaults, env, logFormats } from "./Options.ts"

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
      `PostgreSQL URL as libpq reads it, postgresql://USER[:PASS]@HOST[:PORT]/DB_NAME[?sslmode=...], or over a Unix socket postgresql://USER@/DB_NAME?host=/var/run/postgresql (required) [env ${env.pgUrl}; password: prefer PGPASSWORD or ~/.pgpass (PGPASSFILE) to the command line]`
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
  pgTransactionPooler: bool(
    "pg-transaction-pooler",
    "pgTransactionPooler",
    "PostgreSQL is reached through a pooler in transaction mode (PgBouncer's pool_mode = transaction before 1.21 or " +
      "without max_prepared_statements, and the like), which does not keep a connection's prepared statements from " +
      "one transaction to the next: send every statement unnamed (PostgreSQL then parses and plans each one). " +
      "Automatic when the pooler refuses the startup parameter statement_timeout"
  ),
  maxObjectsPerSecond: Flag.Finite("max-objects-per-second").pipe(
    Flag.withMetavar("N"),
    Flag.withDescription(
      `Throttle: at most N rows enter the read stage per second, this process (bursts of at most one second's worth ` +
        `after idle time; with K shards each process gets 1/K of the total); verify: downloads or HEADs per second ` +
        `[env ${env.maxObjectsPerSecond}] (default: none)`
    ),
    Flag.withFallbackConfig(Config.Finite(env.maxObjectsPerSecond)),
    Flag.optional
  ),
  maxBandwidth: Flag.Finite("max-bandwidth").pipe(
    Flag.withMetavar("MiB/s"),
    Flag.withDescription(
      `Throttle: at most this many MiB per second read from PostgreSQL (and so uploaded), this process, charged by ` +
        `the rows' sizes when their read starts; verify --deep: MiB per second downloaded [env ${env.maxBandwidth}] ` +
        `(default: none)`
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

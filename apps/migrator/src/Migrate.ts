/**
 * What `migrate`, `migrate --dry-run` and `finalize` do, over the five ports plus `SchemaTasks`, `FailureReport` and
 * `Shutdown`. Every outcome becomes an exit code here; messages go to stderr, the configuration and the status blocks
 * to stdout.
 */
import {
  defaultRetry,
  DatabaseError,
  formatBytes,
  type HashCommitter,
  type InfrastructureError,
  type LocalFileError,
  type LoReader,
  LoSource,
  Metrics,
  type MetricsSnapshot,
  ObjectStore,
  type RowCounts,
  renderShard,
  type Shard,
  type StorageError
} from "@lo-migrate/core"
import {
  defaultPipelineConfig,
  defaultReadBatchRows,
  inFlightBound,
  type MigrationSummary,
  type PipelineConfig,
  renderStatus,
  renderStatusLine,
  runMigration,
  runMonitor,
  type StatusLimits,
  statusRecord
} from "@lo-migrate/pipeline"
import { type FinalizeRefused, type PreflightFailed, type SchemaNotPermitted, SchemaTasks } from "@lo-migrate/postgres"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { DatabaseConfig, MigratorConfig } from "./Config.ts"
import { render } from "./ConfigRender.ts"
import { describeShard } from "./ConfigShard.ts"
import { redactUrl } from "./ConfigValues.ts"
import { ExitCode } from "./ExitCode.ts"
import type { LogFormat } from "./Options.ts"
import { Leftovers } from "./Leftovers.ts"
import { MetricsServer, type MetricsServerError } from "./MetricsServer.ts"
import { FailureReport, ReportError } from "./Report.ts"
import { Shutdown } from "./Shutdown.ts"
import { buildAtStartup, startupCheck, type StartupRefused, startupStep } from "./Startup.ts"
import { appendOnly, makeStatusWriter, stdoutTerminal } from "./StatusWriter.ts"

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
  retry: { ...defaultRetry, budget: `${config.retryBudget} seconds` },
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

/**
 * The status renderer of a `--log-format` (Options.ts `logFormats`). With a shard, a JSON status has a `shard` field
 * (`"1/4"`) and a status line starts with `shard 1/4: `.
 */
export const statusRendererFor = (format: LogFormat, limits?: StatusLimits, shard?: Shard) =>
(current: MetricsSnapshot, previous?: MetricsSnapshot): string =>
  format === "json"
    ? JSON.stringify({ ...(shard === undefined ? {} : { shard: renderShard(shard) }), ...statusRecord(current, previous, limits) })
    : format === "line"
    ? `${shard === undefined ? "" : `shard ${renderShard(shard)}: `}${renderStatusLine(current, previous, limits)}`
    : renderStatus(current, previous, limits)

const resumeHint = "Nothing is lost: objects uploaded but not yet recorded are found again. Run again to resume."

/** Where a fatal error happened, without secrets; a local file error names the option that sets the directory. */
const fatal = (where: { readonly pg: string; readonly s3: string }) => (error: InfrastructureError) =>
  Console.error(
    `fatal: ${error.message}\n  at ${
      error._tag === "DatabaseError"
        ? `PostgreSQL ${where.pg}`
        : error._tag === "StorageError"
        ? `S3 ${where.s3}`
        : `--temp-dir ${error.directory} (the local spill directory; free space or fix its permissions, or choose another with --temp-dir)`
    }\n${resumeHint}`
  ).pipe(Effect.as(ExitCode.Fatal))

const refusedPreflight = (error: PreflightFailed) =>
  Console.error(`error: ${error.message}\nRefusing to start (use --skip-batch-job-check to override).`).pipe(
    Effect.as(ExitCode.Usage)
  )

const refusedPrivileges = (error: SchemaNotPermitted) =>
  Console.error(`error: ${error.message}\nRefusing to start (the README lists the grants the migrator needs).`).pipe(
    Effect.as(ExitCode.Usage)
  )

/** The partial index is an optimisation: a role that may not build it is told what that costs and goes on. */
const pendingIndexWarning = (error: SchemaNotPermitted) =>
  `going on without the index of rows still to migrate: role ${error.role} may not create it on _nice_binary (only ` +
  `the table's owner may). The cost: every run then walks the already migrated rows of the hash index to find the ` +
  `pending ones (measured on 1M rows, 90% migrated: first page 1.6 s instead of 4 ms, the 100 000 pending rows in ` +
  `3.5 s instead of 0.6 s). A DBA can build it while the application runs:\n  ${error.statement};`

const refusedStartup = (where: { readonly pg: string; readonly s3: string }) => (error: StartupRefused) =>
  Console.error(
    `error: ${error.message}\n  at ${error.dependency === "S3" ? `S3 ${where.s3}` : `PostgreSQL ${where.pg}`}\n` +
      `Refusing to start: a start-up check failed in a way that waiting does not cure (check the URL, the bucket, ` +
      `the credentials and the grants).`
  ).pipe(Effect.as(ExitCode.Usage))

const refusedFinalize = (error: FinalizeRefused) =>
  Console.error(`error: ${error.message}`).pipe(Effect.as(ExitCode.RowsFailed))

const describeCounts = (counts: RowCounts) =>
  `${counts.remaining} of ${counts.total} rows left to migrate, ${formatBytes(counts.remainingBytes)} ` +
  `(${counts.remainingBytes} bytes); largest object ${formatBytes(counts.largest)} (${counts.largest} bytes)`

/** `" (shard 1/4)"`, or nothing without a shard: what the counts and the summary are about. */
const ofShard = (shard: Shard | undefined) => (shard === undefined ? "" : ` (shard ${renderShard(shard)})`)

/** Each status block opens with the shard, so that N interleaved logs (or pods) tell which process they are. */
const withShardLine = (shard: Shard | undefined, status: (block: string) => Effect.Effect<void>) =>
  shard === undefined ? status : (block: string) => status(`shard: ${describeShard(shard)}\n${block}`)

/** Everything `--dry-run` checks; writes nothing. */
const dryRun = Effect.fn("Migrate.dryRun")(function*(config: MigratorConfig) {
  const schema = yield* SchemaTasks
  const store = yield* ObjectStore
  const source = yield* LoSource
  const check = (name: string) => startupCheck(name, config.retryBudget)
  yield* Console.log("dry run: checking; nothing will be written")
  if (config.skipBatchJobCheck) {
    yield* Console.log("  batch job:   check skipped (--skip-batch-job-check)")
  } else {
    yield* schema.checkBatchJob.pipe(check("batch job check"))
    yield* Console.log("  batch job:   not active")
  }
  if (!(yield* schema.tableExists.pipe(check("schema check")))) {
    return yield* new DatabaseError({
      operation: "dry run",
      detail: "table _nice_binary does not exist (is this the application's database?)",
      retryable: false
    })
  }
  const hasColumn = yield* schema.sha2ColumnExists.pipe(check("schema check"))
  yield* Console.log(
    `  schema:      _nice_binary.sha2 ${hasColumn ? "present" : "missing (a migration adds it: char(64), nullable)"}`
  )
  yield* schema.checkPrivileges.pipe(check("privilege check"))
  yield* Console.log(`  privileges:  ${hasColumn ? "SELECT and UPDATE (sha2) on _nice_binary" : "may add sha2"}`)
  yield* store.check.pipe(check("bucket check"))
  yield* Console.log(`  bucket:      ${config.bucket} reachable, credentials accepted`)
  const counts = yield* (hasColumn ? source.count : schema.countAll).pipe(startupStep("count rows", config.retryBudget))
  const about = hasColumn ? ofShard(config.shard) : config.shard === undefined ? "" : " (whole table: no sha2 column yet)"
  yield* Console.log(`  ${`rows${about}:`.padEnd(12)} ${describeCounts(counts)}`)
  return ExitCode.Ok
})

const summaryLine = (s: MigrationSummary) =>
  `${s.migrated} objects migrated (${formatBytes(s.migratedBytes)}), ${s.alreadyPresent} already in the bucket, ` +
  `${s.failed} failed, ${s.vanished} vanished (deleted by the application during the run)`

/** The migration proper: pre-flights, the pipeline with its monitor, the final status, optionally finalize. */
const migrateRun = Effect.fn("Migrate.migrateRun")(function*(config: MigratorConfig) {
  const schema = yield* SchemaTasks
  const store = yield* ObjectStore
  const metrics = yield* Metrics
  const report = yield* FailureReport
  const shutdown = yield* Shutdown

  // Everything is checked before the first write (the sha2 column); an outage meanwhile is waited out (Startup.ts).
  // Checks of the configuration refuse with exit 2 when they fail for good; the other steps are retried only.
  const check = (name: string) => startupCheck(name, config.retryBudget)
  const step = (name: string) => startupStep(name, config.retryBudget)
  if (!config.skipBatchJobCheck) yield* schema.checkBatchJob.pipe(check("batch job check"))
  yield* store.check.pipe(check("bucket check"))
  // What killed runs left behind: their spill directories and incomplete multipart uploads.
  yield* (yield* Leftovers).sweep.pipe(step("clean-up of killed runs"))
  if (yield* schema.ensureSha2Column.pipe(step("sha2 column"))) {
    yield* Effect.logInfo("added column _nice_binary.sha2 char(64)")
  }
  const indexBuilt = yield* schema.ensurePendingIndex.pipe(
    step("index of pending rows"),
    Effect.catchTag("SchemaNotPermitted", (e) => Effect.as(Effect.logWarning(pendingIndexWarning(e)), false))
  )
  if (indexBuilt) {
    yield* Effect.logInfo("built the index of rows still to migrate (_nice_binary (hash) WHERE sha2 IS NULL)")
  }

  // (The pipeline counts the rows left beside the migration, for the monitor's progress and ETA.)
  const before = yield* metrics.snapshot
  const graceExpired = shutdown.requested.pipe(
    Effect.andThen(Effect.sleep(Duration.seconds(config.gracePeriod))),
    Effect.as(Option.none<MigrationSummary>())
  )
  const output = yield* StatusOutput
  // the text block opens with the shard line; a one-line status carries the shard itself (statusRendererFor)
  const status = config.logFormat === "text" ? withShardLine(config.shard, output) : appendOnly(output)
  const render = statusRendererFor(config.logFormat, {
    objectsPerSecond: config.maxObjectsPerSecond,
    bytesPerSecond: config.maxBytesPerSecond
  }, config.shard)
  const result = yield* Effect.gen(function*() {
    yield* Effect.forkScoped(runMonitor(Duration.seconds(config.interval), status, render))
    return yield* shutdown.graceful(
      Effect.raceFirst(
        runMigration(pipelineConfigOf(config), {
          stop: shutdown.requested,
          onRowFailed: (failure) => report.record(failure).pipe(Effect.orDie)
        }).pipe(Effect.map(Option.some)),
        graceExpired
      )
    )
  }).pipe(
    Effect.scoped,
    // The final status block, however the run ends (done, stopped, failed, interrupted by a second signal).
    Effect.ensuring(Effect.flatMap(metrics.snapshot, (now) => status(render(now, before))))
  )

  if (Option.isNone(result)) {
    yield* Console.error(
      `the grace period (${config.gracePeriod} s) ran out before the work in flight was committed.\n` +
        `interrupted; run again to resume. ${resumeHint}`
    )
    return ExitCode.Interrupted
  }
  const summary = result.value
  yield* Console.log(`${summaryLine(summary)}${ofShard(config.shard)}`)
  if (summary.stopped) {
    yield* Console.error("interrupted; run again to resume")
    return ExitCode.Interrupted
  }
  if (summary.failed > 0) {
    yield* Console.error(
      `${summary.failed} row(s) failed and were skipped` +
        (config.report === undefined ? " (logged above; --report FILE lists them as JSON lines)" : ` (listed in ${config.report})`) +
        (config.finalize ? "; finalize skipped" : "")
    )
    return ExitCode.RowsFailed
  }
  yield* Console.log(`migration completed${ofShard(config.shard)}`)
  if (config.finalize) {
    yield* Console.log("adding NOT NULL constraint and UNIQUE INDEX on _nice_binary.sha2 ...")
    yield* schema.finalize
    yield* Console.log("finalize: done")
  }
  return ExitCode.Ok
})

const unexpected = (cause: Cause.Cause<unknown>) => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
  const error = Cause.squash(cause)
  if (error instanceof ReportError) {
    return Console.error(`fatal: ${error.message}\n${resumeHint}`).pipe(Effect.as(ExitCode.Fatal))
  }
  return Console.error(`fatal: unexpected error (a bug?)\n${Cause.pretty(cause)}\n${resumeHint}`).pipe(
      Effect.as(ExitCode.Fatal)
    )
}

/**
 * Runs `self` with the Prometheus endpoint up when `--metrics-port` is set: it listens before the run starts (a port
 * that cannot be bound ends the run before anything is written) and, with `--metrics-linger`, stays up that long after
 * the run (a signal ends the wait) so a last scrape sees the final counts.
 */
const withMetricsEndpoint = <A, E, R>(
  config: MigratorConfig,
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | MetricsServerError, R | Metrics | Shutdown> => {
  const endpoint = config.metrics
  if (endpoint === undefined) return self
  return Effect.gen(function*() {
    const server = yield* MetricsServer
    yield* Effect.logInfo(`serving Prometheus metrics on ${server.url}`)
    const result = yield* self
    if (config.metricsLinger > 0) {
      // a signal ends the wait; the run's own exit code stands
      const shutdown = yield* Shutdown
      yield* shutdown.graceful(Effect.raceFirst(Effect.sleep(Duration.seconds(config.metricsLinger)), shutdown.requested))
    }
    return result
  }).pipe(
    Effect.provide(MetricsServer.layer({ host: endpoint.host, port: endpoint.port, shard: config.shard === undefined ? "0/1" : renderShard(config.shard) }))
  )
}

/** The services `migrate` needs besides `Shutdown`. */
export type Services =
  | SchemaTasks
  | LoSource
  | ObjectStore
  | Metrics
  | FailureReport
  | Shutdown
  | HashCommitter
  | LoReader
  | Leftovers

const where = (config: { readonly pgUrl: Redacted.Redacted<string> }, s3: string) => ({
  pg: redactUrl(Redacted.value(config.pgUrl)),
  s3
})

/**
 * `migrate` (and `--dry-run`): prints the configuration, builds the services (`layer`: connecting may fail), runs.
 * Every failure becomes an exit code.
 */
export const migrate = (
  config: MigratorConfig,
  layer: Layer.Layer<Exclude<Services, Shutdown>, DatabaseError | ReportError>
): Effect.Effect<ExitCode, never, Shutdown> => {
  const at = where(config, `${config.s3Url.toString()} bucket ${config.bucket}`)
  const bound = inFlightBound(pipelineConfigOf(config), config.inMemMax)
  return Console.log(
    `${render(config)}\n    in-flight bound:     ${bound.objects} objects, ${formatBytes(bound.bytes)} in memory at most ` +
      `(from --max-in-memory, the queue sizes, threads and --in-mem-max)`
  ).pipe(
    Effect.andThen(
      buildAtStartup(layer, "connect", config.retryBudget).pipe(
        Effect.flatMap((services) =>
          Effect.provide(config.dryRun ? dryRun(config) : withMetricsEndpoint(config, migrateRun(config)), services)
        ),
        Effect.scoped
      )
    ),
    Effect.catchTags({
      PreflightFailed: refusedPreflight,
      StartupRefused: refusedStartup(at),
      SchemaNotPermitted: refusedPrivileges,
      FinalizeRefused: refusedFinalize,
      ReportError: (e: ReportError) =>
        Console.error(`error: --report: ${e.message}`).pipe(Effect.as(ExitCode.Usage)),
      MetricsServerError: (e: MetricsServerError) =>
        Console.error(`error: --metrics-port/--metrics-host: ${e.message}`).pipe(Effect.as(ExitCode.Usage)),
      DatabaseError: (e: DatabaseError) => fatal(at)(e),
      StorageError: (e: StorageError) => fatal(at)(e),
      LocalFileError: (e: LocalFileError) => fatal(at)(e)
    }),
    Effect.catchCause(unexpected)
  )
}

export const finalizeCommand = Effect.fn("Migrate.finalizeCommand")(
  function*(config: DatabaseConfig, layer: Layer.Layer<SchemaTasks, DatabaseError>) {
    const schema = yield* SchemaTasks
    yield* Console.log("adding NOT NULL constraint and UNIQUE INDEX on _nice_binary.sha2 ...")
    yield* schema.finalize
    yield* Console.log("finalize: done")
    return ExitCode.Ok
  },
  (self, config, layer) =>
    self.pipe(
      Effect.provide(layer),
      (self) => Console.log(`finalize: ${redactUrl(Redacted.value(config.pgUrl))}`).pipe(Effect.andThen(self)),
      Effect.catchTags({
        FinalizeRefused: refusedFinalize,
        DatabaseError: (e: DatabaseError) => fatal(where(config, "-"))(e)
      }),
      Effect.catchCause(unexpected)
    )
)

/**
 * What `migrate`, `migrate --dry-run` and `finalize` do, over the five ports plus `SchemaTasks`, `FailureReport` and
 * `Shutdown`. Every outcome becomes an exit code here; messages go to stderr, the configuration and the status blocks
 * to stdout.
 */
import {
  type DatabaseError,
  type HashCommitter,
  type LocalFileError,
  type LoReader,
  LoSource,
  Metrics,
  ObjectStore,
  renderShard,
  RetryPolicy,
  type StorageError
} from "@lo-migrate/core"
import { inFlightBound, type MigrationSummary, runMigration, runMonitor } from "@lo-migrate/pipeline"
import { dropIndexStatement, missingTable, PendingIndex, SchemaTasks } from "@lo-migrate/postgres"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { DatabaseConfig, MigratorConfig } from "./Config.ts"
import { redactUrl } from "./ConfigValues.ts"
import { ExitCode } from "./ExitCode.ts"
import { printStderr } from "./Stderr.ts"
import {
  fatal,
  pendingIndexCancelledWarning,
  pendingIndexUnfinished,
  pendingIndexWarning,
  refusedFinalize,
  refusedPreflight,
  refusedPrivileges,
  refusedBeforeUpload,
  refusedStartup,
  resumeHint,
  retriedFor,
  unexpected,
  where
} from "./Outcomes.ts"
import { pipelineConfigOf, StatusOutput, statusRendererFor, throttleLimitsOf, withShardLine } from "./RunSettings.ts"
import { Leftovers } from "./Leftovers.ts"
import type { MetricsServerError } from "./MetricsServerError.ts"
import { FailureReport, ReportError } from "./Report.ts"
import {
  ofShard,
  printCheck,
  printConfiguration,
  printCounts,
  printFinalize,
  printSummary
} from "./RunOutput.ts"
import { Shutdown } from "./Shutdown.ts"
import { buildAtStartup, provideRetried, retriedStep, retryPolicyOf, startupCheck, startupStep } from "./Startup.ts"
import { appendOnly } from "./StatusWriter.ts"
import { version } from "./Version.ts"

/** Everything `--dry-run` checks; writes nothing. */
const dryRun = Effect.fn("Migrate.dryRun")(function*(config: MigratorConfig) {
  const schema = yield* SchemaTasks
  const store = yield* ObjectStore
  const source = yield* LoSource
  const check = (name: string) => startupCheck(name, config.retryBudget)
  const passed = (name: string, result: string) => printCheck(config, name, result)
  if (config.logFormat !== "json") yield* Console.log("dry run: checking; nothing will be written")
  if (config.skipBatchJobCheck) {
    yield* passed("batch job", "check skipped (--skip-batch-job-check)")
  } else {
    yield* schema.checkBatchJob.pipe(check("batch job check"))
    yield* passed("batch job", "not active")
  }
  if (!(yield* schema.tableExists.pipe(check("schema check")))) {
    return yield* missingTable("dry run")
  }
  const hasColumn = yield* schema.sha2ColumnExists.pipe(check("schema check"))
  yield* passed("schema", `_nice_binary.sha2 ${hasColumn ? "present" : "missing (a migration adds it: char(64), nullable)"}`)
  yield* schema.checkPrivileges.pipe(check("privilege check"))
  yield* passed("privileges", hasColumn ? "SELECT and UPDATE (sha2) on _nice_binary" : "may add sha2")
  yield* store.check.pipe(check("bucket check"))
  yield* passed("bucket", `${config.bucket} reachable, credentials accepted`)
  const counts = yield* (hasColumn ? source.count : schema.countAll).pipe(startupStep("count rows", config.retryBudget))
  const about = hasColumn ? ofShard(config.shard) : config.shard === undefined ? "" : " (whole table: no sha2 column yet)"
  yield* printCounts(config, about, counts)
  return ExitCode.Ok
})

/** How long a run that ended waits for its index build still running (see `migrateRun`). */
const pendingIndexFinishing = Duration.seconds(10)

/** The migration proper: pre-flights, the pipeline with its monitor, the final status, optionally finalize. */
const migrateRun = Effect.fn("Migrate.migrateRun")(function*(config: MigratorConfig) {
  const schema = yield* SchemaTasks
  const source = yield* LoSource
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
  // The optional index of pending rows is built beside the migration (below): it only makes a later run find its
  // pending rows sooner, and its CREATE INDEX CONCURRENTLY waits for every older transaction of the database (an
  // application's long report too), which the migration must not wait for.
  const pendingIndex = schema.ensurePendingIndex.pipe(
    step("index of pending rows"),
    Effect.flatMap((built) =>
      built
        ? Effect.logInfo("built the index of rows still to migrate (_nice_binary (hash) WHERE sha2 IS NULL)")
        : Effect.void
    ),
    Effect.catchTag("SchemaNotPermitted", (e) => Effect.logWarning(pendingIndexWarning(e))),
    Effect.catchTag("IndexBuildCancelled", (e) => Effect.logWarning(pendingIndexCancelledWarning(e))),
    Effect.catch((e) => Effect.logWarning(`going on without the index of rows still to migrate: ${e.message}`)),
    Effect.onInterrupt(() => Effect.logWarning(pendingIndexUnfinished(dropIndexStatement(PendingIndex))))
  )

  // (The pipeline counts the rows left beside the migration, for the monitor's progress and ETA.)
  const before = yield* metrics.snapshot
  const graceExpired = shutdown.requested.pipe(
    Effect.andThen(Effect.sleep(Duration.seconds(config.gracePeriod))),
    Effect.as(Option.none<MigrationSummary>())
  )
  const output = yield* StatusOutput
  // the text block opens with the shard line; a one-line status carries the shard itself (statusRendererFor)
  const status = config.logFormat === "text" ? withShardLine(config.shard, output) : appendOnly(output)
  const render = statusRendererFor(config.logFormat, throttleLimitsOf(config), config.shard)
  const result = yield* Effect.gen(function*() {
    yield* Effect.forkScoped(runMonitor(Duration.seconds(config.interval), status, render))
    const indexBuild = (yield* schema.pendingIndexValid.pipe(step("index of pending rows")))
      ? undefined
      : yield* Effect.forkScoped(pendingIndex)
    const ended = yield* shutdown.graceful(
      Effect.raceFirst(
        runMigration(pipelineConfigOf(config), {
          stop: shutdown.requested,
          onRowFailed: (failure) => report.record(failure).pipe(Effect.orDie)
        }).pipe(Effect.map(Option.some)),
        graceExpired
      )
    )
    // A build still running when a run ends that was not stopped gets a moment to finish (a short run over a small
    // table ends before its build does); one that waits for an older transaction is then given up with the scope.
    if (indexBuild !== undefined && Option.isSome(ended) && !ended.value.stopped) {
      yield* Effect.timeoutOption(Fiber.join(indexBuild), pendingIndexFinishing)
    }
    return ended
  }).pipe(
    Effect.scoped,
    // The final status block, however the run ends (done, stopped, failed, interrupted by a second signal).
    Effect.ensuring(Effect.flatMap(metrics.snapshot, (now) => status(render(now, before))))
  )

  if (Option.isNone(result)) {
    yield* printStderr(
      `the grace period (${config.gracePeriod} s) ran out before the work in flight was committed.\n` +
        `interrupted; run again to resume. ${resumeHint}`
    )
    return ExitCode.Interrupted
  }
  const summary = result.value
  // A pass takes the rows in hash order, so rows the application inserted meanwhile behind it are left for the next
  // run: counted now, so that "completed" does not read as "nothing left" (a count that fails only loses the line)
  const leftBehind = summary.stopped || summary.failed > 0 ? undefined : yield* source.pending.pipe(
    Effect.catch((e) => Effect.as(Effect.logWarning(`the rows left after the pass were not counted: ${e.message}`), undefined))
  )
  yield* printSummary(config, summary, leftBehind)
  if (summary.stopped) {
    yield* printStderr("interrupted; run again to resume", "Warn")
    return ExitCode.Interrupted
  }
  if (summary.failed > 0) {
    yield* printStderr(
      `${summary.failed} row(s) failed and were skipped` +
        (config.report === undefined ? " (logged above; --report FILE lists them as JSON lines)" : ` (listed in ${config.report})`) +
        (config.finalize ? "; finalize skipped" : "")
    )
    return ExitCode.RowsFailed
  }
  if (config.finalize) {
    yield* printFinalize(config, "started")
    yield* schema.finalize.pipe(retriedStep("finalize", config.retryBudget))
    yield* printFinalize(config, "done")
  }
  return ExitCode.Ok
})

/**
 * Runs `self` with the OTLP metrics export on when the `OTEL_*` environment asks for it (OtlpExport.ts): started
 * before the run, its last export sent when the run has ended, whatever the ending.
 */
const withOtlpExport = <A, E, R>(
  config: MigratorConfig,
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | Metrics> => {
  const otlp = config.otlp
  if (otlp === undefined) return self
  // loaded only here, as the Prometheus endpoint's modules are
  return Effect.flatMap(Effect.promise(() => import("./OtlpExport.ts")), ({ startOtlpExport }) =>
    Effect.scoped(Effect.andThen(startOtlpExport(otlp, shardLabel(config), version), self)))
}

/** The shard label of the metrics: `I/N`, or `0/1` for the whole table. */
const shardLabel = (config: MigratorConfig) => config.shard === undefined ? "0/1" : renderShard(config.shard)

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
  const options = { host: endpoint.host, port: endpoint.port, shard: shardLabel(config) }
  // loaded only here: a run without the endpoint does not pay for the HTTP server's modules at start-up
  return Effect.flatMap(Effect.promise(() => import("./MetricsServer.ts")), ({ MetricsServer }) =>
    Effect.gen(function*() {
      const server = yield* MetricsServer
      yield* Effect.logInfo(`serving Prometheus metrics on ${server.url}`)
      const result = yield* self
      if (config.metricsLinger > 0) {
        // a signal ends the wait; the run's own exit code stands
        const shutdown = yield* Shutdown
        yield* shutdown.graceful(Effect.raceFirst(Effect.sleep(Duration.seconds(config.metricsLinger)), shutdown.requested))
      }
      return result
    }).pipe(Effect.provide(MetricsServer.layer(options))))
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
  return printConfiguration(config, bound).pipe(
    Effect.andThen(
      buildAtStartup(layer, "connect", config.retryBudget).pipe(
        Effect.flatMap((services) =>
          Effect.provide(
            config.dryRun ? dryRun(config) : withMetricsEndpoint(config, withOtlpExport(config, migrateRun(config))),
            services
          )
        ),
        Effect.scoped
      )
    ),
    // every retry of the run, the pipeline's and the schema lock's polls alike, within --retry-budget
    Effect.provideService(RetryPolicy, retryPolicyOf(config.retryBudget)),
    Effect.catchTags({
      PreflightFailed: refusedPreflight,
      StartupRefused: refusedStartup(at),
      SchemaNotPermitted: refusedPrivileges,
      ReadOnlySession: refusedBeforeUpload,
      UpdatesNotReplicable: refusedBeforeUpload,
      NoLargeObjects: refusedBeforeUpload,
      RowSecurityActive: refusedBeforeUpload,
      FinalizeRefused: refusedFinalize,
      ReportError: (e: ReportError) =>
        printStderr(`error: --report: ${e.message}`).pipe(Effect.as(ExitCode.Usage)),
      MetricsServerError: (e: MetricsServerError) =>
        printStderr(`error: --metrics-port/--metrics-host: ${e.message}`).pipe(Effect.as(ExitCode.Usage)),
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
    yield* printFinalize(config, "started", { postgres: redactUrl(Redacted.value(config.pgUrl)) })
    // each step can be run again (IF NOT EXISTS, an INVALID index dropped, the schema lock per session): a lost
    // connection or a build still running in an ended session ("busy") is waited out as a whole
    yield* schema.finalize.pipe(retriedStep("finalize", config.retryBudget))
    yield* printFinalize(config, "done")
    return ExitCode.Ok
  },
  (self, config, layer) =>
    self.pipe(
      // connecting is retried like a run's start-up; the schema lock polls with the same budget (`RetryPolicy`)
      provideRetried(layer, "finalize: connect", config.retryBudget),
      Effect.provideService(RetryPolicy, retryPolicyOf(config.retryBudget)),
      // text: the database first, before connecting; JSON: in the "started" record
      (self) =>
        config.logFormat === "json"
          ? self
          : Console.log(`finalize: ${redactUrl(Redacted.value(config.pgUrl))}`).pipe(Effect.andThen(self)),
      Effect.catchTags({
        FinalizeRefused: refusedFinalize,
        // finalize moves no object: the migration's resume hint does not apply
        DatabaseError: fatal(where(config, "-"), (e) =>
          (e.retryable
            ? `${retriedFor(config.retryBudget)}. `
            : "Retrying does not cure this error (it was not retried): fix what it names. ") +
          "Then run finalize again: what it has done stays done, the rest it does.")
      }),
      Effect.catchCause(unexpected)
    )
)

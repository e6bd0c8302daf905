/**
 * `lo-migrate verify`: the live wiring (PostgreSQL pool, S3 client, metrics), the monitor, the report and the exit
 * code of one verify run (see `@lo-migrate/verify` for what is checked and how). What it prints on stdout, as text or
 * as JSON records by `--log-format`: `VerifyOutput.ts` and the sink of `VerifyReport.ts`.
 *
 * Exit codes: 0 every row checked is good; 1 some rows are bad (listed in the report); 2 usage; 3 infrastructure (the
 * message says where, and the `--from-sha2` that resumes the check).
 */
import { type DatabaseError, Metrics, renderShard, RetryPolicy, type StorageError } from "@lo-migrate/core"
import {
  checkRepairable,
  type ReadOnlySession,
  type RowSecurityActive,
  type SchemaNotPermitted,
  type UpdatesNotReplicable
} from "@lo-migrate/postgres"
import type { S3ClientService } from "@lo-migrate/s3"
import {
  checkRowsVisible,
  countMigrated,
  defaultVerifyOptions,
  type OrderViolation,
  Progress,
  type ProgressSample,
  type RepairRefused,
  runVerify,
  sampleOf,
  type VerifyOptions
} from "@lo-migrate/verify"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as SqlClient from "effect/sql/SqlClient"
import { redactUrl } from "./ConfigValues.ts"
import { ExitCode } from "./ExitCode.ts"
import { provideRetried, retriedStep, retryPolicyOf } from "./Startup.ts"
import { printStderr } from "./Stderr.ts"
import { verifyLayer } from "./Live.ts"
import { StatusOutput, throttleLimitsOf } from "./RunSettings.ts"
import type { ReportError } from "./Report.ts"
import type { VerifyConfig } from "./VerifyOptions.ts"
import { printVerifyHeader, printVerifyResult, verifyMonitor } from "./VerifyOutput.ts"
import { openVerifySink } from "./VerifyReport.ts"

export const verifyOptionsOf = (config: VerifyConfig): VerifyOptions => ({
  ...defaultVerifyOptions,
  range: { from: config.fromSha2, to: config.toSha2 },
  deep: config.deep,
  concurrency: config.concurrency,
  sample: config.sample,
  seed: config.seed,
  contentType: config.contentType,
  repair: config.repair,
  repairBatch: config.repairBatch,
  throttle: throttleLimitsOf(config.connection)
})

/**
 * Where a rerun resumes: after the last row checked, or, with `--repair`, at the first bad row not yet reset (resuming
 * after it would leave it unrepaired for good).
 */
const resumeHint = (config: VerifyConfig, progress: Progress) => {
  if (progress.lastSha2 === undefined) return "Nothing was checked yet; run again."
  const from = progress.unrepaired ?? progress.lastSha2
  return `Rows up to sha2 ${progress.lastSha2} were checked` +
    (progress.unrepaired === undefined ? "" : `; bad rows from sha2 ${progress.unrepaired} on were not repaired yet`) +
    `; resume with ${config.shard === undefined ? "" : `--shard ${renderShard(config.shard)} `}--from-sha2 ${from}.`
}

const fatal = (config: VerifyConfig, progress: Progress) => (error: DatabaseError | StorageError | OrderViolation) =>
  printStderr(
    `fatal: ${error.message}\n  at ${
      error._tag === "DatabaseError"
        ? `PostgreSQL ${redactUrl(Redacted.value(config.connection.pgUrl))}`
        : `S3 ${config.connection.s3Url.toString()} bucket ${config.connection.bucket}`
    }\n${resumeHint(config, progress)}`
  ).pipe(Effect.as(ExitCode.Fatal))

/** `--repair` cannot reset rows with this role or session: a configuration error (exit 2), found before any check. */
const repairRefused = (e: RepairRefused) =>
  printStderr(
    `error: verify --repair sets the sha2 of bad rows back to NULL: ${e.message}\n` +
      "Nothing was checked; without --repair, verify only reads."
  ).pipe(Effect.as(ExitCode.Usage))

/** Runs `verify` with `layer` (the live one in `main.ts`). Every outcome is an exit code. */
export const verifyCommand = (
  config: VerifyConfig,
  layer: Layer.Layer<SqlClient.SqlClient | S3ClientService | Metrics, DatabaseError> = verifyLayer(config)
): Effect.Effect<ExitCode> => {
  const progress = new Progress()
  return Effect.gen(function*() {
    yield* printVerifyHeader(config)
    const metrics = yield* Metrics
    const monitor = verifyMonitor(config, yield* StatusOutput)
    const sink = yield* openVerifySink(
      config.connection.report,
      config.orphans,
      config.connection.logFormat === "json",
      config.shard
    )
    const startedAt = yield* Clock.currentTimeMillis
    let previous: ProgressSample | undefined
    const block = Effect.gen(function*() {
      const now = sampleOf(progress, yield* Clock.currentTimeMillis)
      progress.retries = (yield* metrics.snapshot).retries
      yield* monitor(progress, startedAt, now, previous)
      previous = now
    })
    const options = verifyOptionsOf(config)
    // refused before anything is counted or printed: a count of the rows a policy lets the role see is not the table's
    yield* checkRowsVisible.pipe(retriedStep("verify: row-level security check", config.connection.retryBudget))
    // --repair's rights, before a long check that would end in a refused repair
    if (config.repair) yield* checkRepairable.pipe(retriedStep("verify: --repair pre-flight", config.connection.retryBudget))
    // the rows of the range, counted beside the check for progress and ETA (a count failure only costs the ETA)
    yield* Effect.forkScoped(
      countMigrated(options.range).pipe(
        Effect.tap((n) => Effect.sync(() => void (progress.total = n))),
        Effect.catch((e) => Effect.logWarning(`could not count the rows to check (no ETA): ${e.message}`))
      )
    )
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(Duration.seconds(config.connection.interval)), block)))
    yield* runVerify(options, progress, { onBad: sink.bad, onOrphan: sink.orphan, onRepaired: sink.repaired }).pipe(
      Effect.ensuring(Effect.orDie(block)),
      Effect.onInterrupt(() => printStderr(`interrupted. ${resumeHint(config, progress)}`, "Warn"))
    )
    const elapsed = (yield* Clock.currentTimeMillis) - startedAt
    yield* printVerifyResult(config, progress, elapsed)
    if (progress.badRows > 0) {
      yield* printStderr(
        `${progress.badRows} bad row(s)` +
          (config.connection.report !== undefined
            ? ` (listed in ${config.connection.report})`
            : config.connection.logFormat === "json"
            ? " (the verify-mismatch records on stdout)"
            : " (logged above; --report FILE lists them as JSON lines)")
      )
      return ExitCode.RowsFailed
    }
    return ExitCode.Ok
  }).pipe(
    // connecting is retried like a run's start-up, and every read and listing within the same --retry-budget
    provideRetried(layer, "verify: connect", config.connection.retryBudget),
    Effect.provide(NodeServices.layer),
    Effect.provideService(RetryPolicy, retryPolicyOf(config.connection.retryBudget)),
    Effect.catchTags({
      ReportError: (e: ReportError) => printStderr(`error: --report: ${e.message}`).pipe(Effect.as(ExitCode.Usage)),
      RowSecurityActive: (e: RowSecurityActive) =>
        printStderr(`error: ${e.message}\nNothing was checked.`).pipe(Effect.as(ExitCode.Usage)),
      SchemaNotPermitted: (e: SchemaNotPermitted) => repairRefused(e),
      ReadOnlySession: (e: ReadOnlySession) => repairRefused(e),
      UpdatesNotReplicable: (e: UpdatesNotReplicable) => repairRefused(e),
      DatabaseError: (e: DatabaseError) => fatal(config, progress)(e),
      StorageError: (e: StorageError) => fatal(config, progress)(e),
      OrderViolation: (e: OrderViolation) => fatal(config, progress)(e)
    }),
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.failCause(cause as Cause.Cause<never>)
        : printStderr(`fatal: unexpected error (a bug?)\n${Cause.pretty(cause)}\n${resumeHint(config, progress)}`).pipe(
          Effect.as(ExitCode.Fatal)
        )
    )
  )
}

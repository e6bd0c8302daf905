/**
 * How each ending of a command becomes a message on stderr and an exit code: fatal infrastructure errors (naming where
 * they happened, never a secret), refusals at start-up, a refused finalize, and unexpected failures.
 */
import type { InfrastructureError } from "@lo-migrate/core"
import type {
  FinalizeRefused,
  IndexBuildCancelled,
  PreflightFailed,
  SchemaNotPermitted,
  UploadRefused
} from "@lo-migrate/postgres"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { redactUrl } from "./ConfigValues.ts"
import { ExitCode } from "./ExitCode.ts"
import { printStderr } from "./Stderr.ts"
import { ReportError } from "./Report.ts"
import type { StartupRefused } from "./Startup.ts"

export const resumeHint = "Nothing is lost: objects uploaded but not yet recorded are found again. Run again to resume."

/** After an error that retrying does not cure (it was not retried): a rerun resumes too, once its cause is fixed. */
export const fixThenResumeHint = "Nothing is lost: objects uploaded but not yet recorded are found again. Retrying " +
  "does not cure this error (it was not retried): fix what it names, then run again to resume."

/** A retryable error that ends a command has been retried for the budget. */
export const retriedFor = (budgetSeconds: number) => `Retried for ${budgetSeconds} s (--retry-budget)`

/**
 * Where a fatal error happened, without secrets; a local file error names the option that sets the directory. Then
 * `hint` (by default the migration's: nothing is lost, run again); none where it gives `undefined`.
 */
export const fatal = (
  where: { readonly pg: string; readonly s3: string },
  hint: (error: InfrastructureError) => string | undefined = (error) => error.retryable ? resumeHint : fixThenResumeHint
) =>
(error: InfrastructureError) => {
  const then = hint(error)
  return printStderr(
    `fatal: ${error.message}\n  at ${
      error._tag === "DatabaseError"
        ? `PostgreSQL ${where.pg}`
        : error._tag === "StorageError"
        ? `S3 ${where.s3}`
        : `--temp-dir ${error.directory} (the local spill directory; free space or fix its permissions, or choose another with --temp-dir)`
    }${then === undefined ? "" : `\n${then}`}`
  ).pipe(Effect.as(ExitCode.Fatal))
}

export const refusedPreflight = (error: PreflightFailed) =>
  printStderr(`error: ${error.message}\nRefusing to start (use --skip-batch-job-check to override).`).pipe(
    Effect.as(ExitCode.Usage)
  )

export const refusedPrivileges = (error: SchemaNotPermitted) =>
  printStderr(`error: ${error.message}\nRefusing to start (the README lists the grants the migrator needs).`).pipe(
    Effect.as(ExitCode.Usage)
  )

/** The pre-flight found that uploading would be in vain (`UploadRefused`): exit 2, before anything is uploaded. */
export const refusedBeforeUpload = (error: UploadRefused) =>
  printStderr(`error: ${error.message}\nRefusing to start: nothing was uploaded.`).pipe(Effect.as(ExitCode.Usage))

/** The partial index is an optimisation: a role that may not build it is told what that costs and goes on. */
export const pendingIndexWarning = (error: SchemaNotPermitted) =>
  `going on without the index of rows still to migrate: role ${error.role} may not create it on _nice_binary (only ` +
  `the table's owner may). The cost: every run then walks the already migrated rows of the hash index to find the ` +
  `pending ones (measured on 1M rows, 90% migrated: first page 1.6 s instead of 4 ms, the 100 000 pending rows in ` +
  `3.5 s instead of 0.6 s). A DBA can build it while the application runs:\n  ${error.statement};`

/** The server cancelled the optional index's build: what happened, what it costs, and how a DBA can build it. */
export const pendingIndexCancelledWarning = (error: IndexBuildCancelled) =>
  `going on without the index of rows still to migrate: ${error.message}. The cost: every run then walks the ` +
  `already migrated rows of the hash index to find the pending ones. A DBA can build it on a direct connection ` +
  `(CREATE INDEX CONCURRENTLY cannot run in a transaction, so a pooler in transaction mode cannot lift the timeout ` +
  `for it):\n  SET statement_timeout = 0; ${error.statement};`

/** The run ended before the optional index's build did: it was cancelled; what that leaves, and until when. */
export const pendingIndexUnfinished = (drop: string) =>
  `the index of rows still to migrate was not built when the run ended: its build was given up (CREATE INDEX ` +
  `CONCURRENTLY waits for every transaction of the database older than it). The next run builds it again; if none ` +
  `follows, drop what a cancelled build leaves, if anything (an INVALID index, which the application's writes keep ` +
  `up to date):\n  ${drop};`

export const refusedStartup = (where: { readonly pg: string; readonly s3: string }) => (error: StartupRefused) =>
  printStderr(
    `error: ${error.message}\n  at ${error.dependency === "S3" ? `S3 ${where.s3}` : `PostgreSQL ${where.pg}`}\n` +
      `Refusing to start: a start-up check failed in a way that waiting does not cure (check the URL, the bucket, ` +
      `the credentials and the grants, and for an https endpoint the CA trusted).`
  ).pipe(Effect.as(ExitCode.Usage))

export const refusedFinalize = (error: FinalizeRefused) =>
  printStderr(`error: ${error.message}`).pipe(Effect.as(ExitCode.RowsFailed))

/** A defect or an unexpected failure: printed in full (it is a bug), with the resume hint; interruption passes. */
export const unexpected = (cause: Cause.Cause<unknown>) => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
  const error = Cause.squash(cause)
  if (error instanceof ReportError) {
    return printStderr(`fatal: ${error.message}\n${resumeHint}`).pipe(Effect.as(ExitCode.Fatal))
  }
  return printStderr(`fatal: unexpected error (a bug?)\n${Cause.pretty(cause)}\n${resumeHint}`).pipe(
      Effect.as(ExitCode.Fatal)
    )
}

/** Where the run talks to, for error messages: the PostgreSQL URL without its password, and the S3 endpoint. */
export const where = (config: { readonly pgUrl: Redacted.Redacted<string> }, s3: string) => ({
  pg: redactUrl(Redacted.value(config.pgUrl)),
  s3
})

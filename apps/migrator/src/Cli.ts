/**
 * The command tree: `lo-migrate [options]` (= `migrate`), `lo-migrate migrate [options]`, `lo-migrate finalize
 * [options]`, `lo-migrate verify [options]` (its own options besides the shared ones, see `VerifyOptions.ts`). All options are shared, so they may come before or after the subcommand, as with the original tool.
 *
 * The handlers are injected so that parsing and validation can be tested without any server; `main.ts` passes the
 * live ones. `runCli` turns everything into an exit code: parse errors and invalid values are 2 and name the option.
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as CliError from "effect/cli/CliError"
import * as Command from "effect/cli/Command"
import { type DatabaseConfig, type MigratorConfig, resolve, resolveDatabase } from "./Config.ts"
import type { UsageError } from "./ConfigValues.ts"
import { ExitCode } from "./ExitCode.ts"
import { flags } from "./Flags.ts"
import { env, type LogFormat, type RawOptions } from "./Options.ts"
import { noteOtherOutput } from "./StatusWriter.ts"
import { printStderr, setProcessStderrFormat, StderrFormat } from "./Stderr.ts"
import { resolveStatus, type StatusConfig } from "./StatusOptions.ts"
import { type RawVerifyOptions, resolveVerify, type VerifyConfig, verifyFlags } from "./VerifyOptions.ts"
import { version } from "./Version.ts"

export { version } from "./Version.ts"

export interface Handlers<R> {
  readonly migrate: (config: MigratorConfig) => Effect.Effect<ExitCode, never, R>
  readonly finalize: (config: DatabaseConfig) => Effect.Effect<ExitCode, never, R>
  /** `verify` (absent: the subcommand says it is not available here). */
  readonly verify?: ((config: VerifyConfig) => Effect.Effect<ExitCode, never, R>) | undefined
  /** `status` (absent: the subcommand says it is not available here). */
  readonly status?: ((config: StatusConfig) => Effect.Effect<ExitCode, never, R>) | undefined
}

/** How a handler ended with a non-zero code; carried through effect/cli's error channel to `runCli`. */
class Finished extends Data.TaggedError("Finished")<{ readonly code: ExitCode }> {}

const formatMessage = (message: unknown): string =>
  (Array.isArray(message) ? message : [message])
    .map((part) => (typeof part === "string" ? part : Redacted.isRedacted(part) ? String(part) : JSON.stringify(part)))
    .join(" ")

/** Plain text logs on stderr: `2026-11-22T01:02:03.456Z WARN  message`. */
export const textLogger = Logger.make<unknown, void>(({ cause, date, logLevel, message }) => {
  noteOtherOutput()
  const causeText = cause.reasons.length === 0 ? "" : `\n${Cause.pretty(cause)}`
  console.error(`${date.toISOString()} ${logLevel.toUpperCase().padEnd(5)} ${formatMessage(message)}${causeText}`)
})

/**
 * `json`: JSON lines (through the fiber's `Console`, stderr, as `printStderr`'s closing messages); `text` and `line`:
 * text lines (only the status differs, see Options.ts `logFormats`).
 */
export const loggerFor = (format: LogFormat) =>
  Logger.layer([
    format === "json"
      ? Logger.withConsoleError(Logger.map(Logger.formatJson, (line) => {
        noteOtherOutput()
        return line
      }))
      : textLogger
  ])

/** A usage error, as every closing message (a JSON log line under `--log-format json`). */
const usage = (error: UsageError) =>
  printStderr(`error: ${error.message}\nRun with --help for the options.`).pipe(
    Effect.andThen(Effect.fail(new Finished({ code: ExitCode.Usage })))
  )

const finish = (code: ExitCode) => (code === ExitCode.Ok ? Effect.void : Effect.fail(new Finished({ code })))

export const makeCommand = <R>(handlers: Handlers<R>) => {
  /**
   * One subcommand, in the log format of the parsed command line (the logger, `StderrFormat`, the process runner's
   * notices): resolve its configuration (a usage error is exit 2), print its warnings, run the handler (absent: not
   * available in this build, exit 2), and turn its exit code into the command's result.
   */
  const run = <C>(
    name: string,
    raw: RawOptions,
    resolved: Effect.Effect<C, UsageError>,
    warnings: (config: C) => ReadonlyArray<string>,
    handler: ((config: C) => Effect.Effect<ExitCode, never, R>) | undefined
  ) =>
    Effect.sync(() => setProcessStderrFormat(raw.logFormat)).pipe(
      Effect.andThen(resolved),
      Effect.catchTag("UsageError", usage),
      Effect.flatMap((config) =>
        Effect.forEach(warnings(config), (w) => Effect.logWarning(w), { discard: true }).pipe(
          Effect.andThen(
            handler === undefined
              ? printStderr(`error: ${name} is not available in this build`).pipe(Effect.as(ExitCode.Usage))
              : handler(config)
          )
        )
      ),
      Effect.provideService(StderrFormat, raw.logFormat),
      Effect.provide(loggerFor(raw.logFormat)),
      Effect.flatMap(finish)
    )
  const runMigrate = (raw: RawOptions) => run("migrate", raw, resolve(raw), (c) => c.warnings, handlers.migrate)
  const runFinalize = (raw: RawOptions) =>
    run("finalize", raw, resolveDatabase(raw), (c) => c.warnings, handlers.finalize)
  const runVerify = (raw: RawOptions, options: RawVerifyOptions) =>
    run("verify", raw, resolveVerify(raw, options), (c) => c.connection.warnings, handlers.verify)
  const runStatus = (raw: RawOptions) =>
    run("status", raw, resolveStatus(raw), (c) => c.database.warnings, handlers.status)

  const root = Command.make("lo-migrate").pipe(
    Command.withSharedFlags(flags),
    Command.withDescription(
      "Moves PostgreSQL Large Objects referenced by _nice_binary into S3-compatible storage under their SHA-256, " +
        "recording it in _nice_binary.sha2. Stop it at any moment; a rerun resumes. Without a subcommand: migrate."
    ),
    Command.withHandler(runMigrate)
  )
  const migrate = Command.make("migrate", {}, () => Effect.flatMap(root, runMigrate)).pipe(
    Command.withDescription("Migrate every row whose sha2 is NULL (the default). With --dry-run: check and count only.")
  )
  const finalize = Command.make("finalize", {}, () => Effect.flatMap(root, runFinalize)).pipe(
    Command.withDescription(
      "Add the NOT NULL constraint and the UNIQUE index on sha2; refused while rows are left. Needs only --pg-url."
    )
  )
  const verify = Command.make("verify", verifyFlags, (options) => Effect.flatMap(root, (raw) => runVerify(raw, options))).pipe(
    Command.withDescription(
      "Check that every row with sha2 set has its object in the bucket with the row's size (one listing pass); " +
        "--deep also checks the bytes. Exit 0 all good, 1 some rows bad, 2 usage, 3 infrastructure. Needs read rights only."
    )
  )
  const status = Command.make("status", {}, () => Effect.flatMap(root, runStatus)).pipe(
    Command.withDescription(
      "Rows, migrated, left and bytes left of _nice_binary, for the whole table and per shard of --shards N, and the " +
        "rows of the failure reports given with --report (repeatable); exact, one read-only pass over the table. " +
        "Exit 0 nothing left, 1 rows left, 2 usage, 3 database. Needs only --pg-url."
    )
  )
  return root.pipe(Command.withSubcommands([migrate, finalize, verify, status]))
}

/**
 * `--log-level` is effect/cli's built-in flag; like every other option it also reads an environment variable,
 * `LO_MIGRATE_LOG_LEVEL`, used when the flag is not given (an invalid value is rejected like the flag's).
 */
const withLogLevelFromEnv = (args: ReadonlyArray<string>) =>
  Config.String(env.logLevel).pipe(
    Config.option,
    Effect.map((level) =>
      Option.isSome(level) && !args.some((a) => a === "--log-level" || a.startsWith("--log-level="))
        ? ["--log-level", level.value, ...args]
        : args
    ),
    Effect.orElseSucceed(() => args)
  )

/**
 * Runs the command line `args` (without the program name) and returns the exit code. Never fails: every outcome is a
 * code (see ExitCode.ts).
 */
export const runCli = <R>(handlers: Handlers<R>, args: ReadonlyArray<string>) =>
  withLogLevelFromEnv(args).pipe(
    Effect.flatMap((args) => Command.runWith(makeCommand(handlers), { version })(args)),
    Effect.as<ExitCode>(ExitCode.Ok),
    Effect.catch((error): Effect.Effect<ExitCode> => {
      if (error instanceof Finished) return Effect.succeed(error.code)
      if (CliError.isCliError(error)) {
        // effect/cli has already printed the help and the parse errors.
        return Effect.succeed(error._tag === "ShowHelp" && error.errors.length === 0 ? ExitCode.Ok : ExitCode.Usage)
      }
      return Console.error(`error: ${String(error)}`).pipe(Effect.as(ExitCode.Usage))
    })
  )

export type { DatabaseConfig }

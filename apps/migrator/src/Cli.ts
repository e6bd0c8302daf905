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
import { type DatabaseConfig, type MigratorConfig, resolve, resolveDatabase, type UsageError } from "./Config.ts"
import { ExitCode } from "./ExitCode.ts"
import { env, flags, type LogFormat, type RawOptions } from "./Options.ts"
import { noteOtherOutput } from "./StatusWriter.ts"
import { type RawVerifyOptions, resolveVerify, type VerifyConfig, verifyFlags } from "./VerifyOptions.ts"

export const version = "0.1.0"

export interface Handlers<R> {
  readonly migrate: (config: MigratorConfig) => Effect.Effect<ExitCode, never, R>
  readonly finalize: (config: DatabaseConfig) => Effect.Effect<ExitCode, never, R>
  /** `verify` (absent: the subcommand says it is not available here). */
  readonly verify?: ((config: VerifyConfig) => Effect.Effect<ExitCode, never, R>) | undefined
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

/** `json`: JSON lines; `text` and `line`: text lines (only the status differs, see Options.ts `logFormats`). */
export const loggerFor = (format: LogFormat) =>
  Logger.layer([
    format === "json"
      ? Logger.map(Logger.formatJson, (line) => {
        noteOtherOutput()
        console.error(line)
      })
      : textLogger
  ])

const usage = (error: UsageError) =>
  Console.error(`error: ${error.message}\nRun with --help for the options.`).pipe(
    Effect.andThen(Effect.fail(new Finished({ code: ExitCode.Usage })))
  )

const finish = (code: ExitCode) => (code === ExitCode.Ok ? Effect.void : Effect.fail(new Finished({ code })))

export const makeCommand = <R>(handlers: Handlers<R>) => {
  const runMigrate = (raw: RawOptions) =>
    resolve(raw).pipe(
      Effect.catchTag("UsageError", usage),
      Effect.flatMap((config) =>
        Effect.forEach(config.warnings, (w) => Effect.logWarning(w), { discard: true }).pipe(
          Effect.andThen(handlers.migrate(config)),
          Effect.provide(loggerFor(config.logFormat))
        )
      ),
      Effect.flatMap(finish)
    )
  const runFinalize = (raw: RawOptions) =>
    resolveDatabase(raw).pipe(
      Effect.catchTag("UsageError", usage),
      Effect.flatMap((config) =>
        Effect.forEach(config.warnings, (w) => Effect.logWarning(w), { discard: true }).pipe(
          Effect.andThen(handlers.finalize(config)),
          Effect.provide(loggerFor(config.logFormat))
        )
      ),
      Effect.flatMap(finish)
    )

  const runVerify = (raw: RawOptions, options: RawVerifyOptions) =>
    resolveVerify(raw, options).pipe(
      Effect.catchTag("UsageError", usage),
      Effect.flatMap((config) =>
        Effect.forEach(config.connection.warnings, (w) => Effect.logWarning(w), { discard: true }).pipe(
          Effect.andThen(
            handlers.verify === undefined
              ? Console.error("error: verify is not available in this build").pipe(Effect.as(ExitCode.Usage))
              : handlers.verify(config)
          ),
          Effect.provide(loggerFor(config.connection.logFormat))
        )
      ),
      Effect.flatMap(finish)
    )

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
  return root.pipe(Command.withSubcommands([migrate, finalize, verify]))
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

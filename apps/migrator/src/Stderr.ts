/**
 * The messages a command ends with on stderr (fatal errors, refusals, an interruption, the count of failed or bad
 * rows, a usage error): plain text under `--log-format text|line`; under `json` JSON log lines like every other line
 * of stderr, so a JSON log pipeline can parse all of it. The format is known once the command line is parsed: `Cli.ts`
 * provides it (`StderrFormat`) to the command and sets it for the process runner's own notices (`Runner.ts`), which
 * are printed outside any fiber. Only what effect/cli's parser prints itself (an unknown option, say) stays text.
 */
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type { LogFormat } from "./Options.ts"

export type StderrLevel = "Error" | "Warn"

/** The log format of the command running in this fiber (text until its options are resolved). */
export const StderrFormat = Context.Reference<LogFormat>("lo-migrate/StderrFormat", { defaultValue: () => "text" })

/** A closing message: `text` as it is, or under `json` a log line at `level` through the command's JSON logger. */
export const printStderr = (text: string, level: StderrLevel = "Error"): Effect.Effect<void> =>
  Effect.flatMap(StderrFormat, (format) => format === "json" ? Effect.logWithLevel(level)(text) : Console.error(text))

let processFormat: LogFormat = "text"

/** Sets the format of the process runner's notices (`stderrLineUnsafe`): the command's, once it is known. */
export const setProcessStderrFormat = (format: LogFormat): void => {
  processFormat = format
}

/**
 * A notice of the process runner (signals, the last word on an interrupted or crashed program), outside any fiber: the
 * text with a newline (after an empty line with `separate`, to leave a status line being drawn), or under `json` a line
 * with the JSON logger's `message`, `level` and `timestamp` fields.
 */
export const stderrLineUnsafe = (text: string, level: StderrLevel, separate = false): string =>
  processFormat === "json"
    ? `${JSON.stringify({ message: text, level: level.toUpperCase(), timestamp: new Date().toISOString() })}\n`
    : `${separate ? "\n" : ""}${text}\n`

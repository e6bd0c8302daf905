/**
 * Where the status blocks go. Piped or redirected, every block is printed in full, one after the other (a log file
 * keeps the history). On a terminal the new block replaces the previous one in place, but only if nothing else was
 * printed since (a warning or a log line between two blocks is never overwritten).
 */
import * as Effect from "effect/Effect"

let otherOutput = 0

/** Loggers and notices call this whenever they print, so the next status block does not overwrite them. */
export const noteOtherOutput = (): void => {
  otherOutput += 1
}

export interface Terminal {
  readonly isTTY: boolean
  readonly columns: number | undefined
  readonly write: (text: string) => void
}

/** Rows a block takes on a terminal `columns` wide (long lines wrap). */
export const rowsOf = (block: string, columns: number | undefined): number =>
  block.split("\n").reduce(
    (rows, line) => rows + (columns === undefined || columns <= 0 ? 1 : Math.max(1, Math.ceil(line.length / columns))),
    0
  )

export const makeStatusWriter = (out: Terminal, epoch: () => number = () => otherOutput) => {
  let previousRows = 0
  let previousEpoch = -1
  return (block: string): Effect.Effect<void> =>
    Effect.sync(() => {
      const redraw = out.isTTY && previousRows > 0 && previousEpoch === epoch()
      // ESC[nF: cursor to the start of the line n rows up; ESC[0J: clear from there to the end of the screen
      out.write(`${redraw ? `\u001b[${previousRows}F\u001b[0J` : ""}${block}\n`)
      previousRows = rowsOf(block, out.columns)
      previousEpoch = epoch()
    })
}

/**
 * For one-line statuses (`--log-format json|line`): every status is kept, never redrawn in place, even on a terminal
 * (a log collector or a scrollback wants each line).
 */
export const appendOnly = (write: (block: string) => Effect.Effect<void>) => (line: string): Effect.Effect<void> =>
  Effect.andThen(Effect.sync(noteOtherOutput), write(line))

/** The process's stdout as a status terminal. */
export const stdoutTerminal: Terminal = {
  get isTTY() {
    return process.stdout.isTTY === true
  },
  get columns() {
    return process.stdout.columns
  },
  write: (text) => void process.stdout.write(text)
}

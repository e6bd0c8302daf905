/**
 * The process runner: like `NodeRuntime.runMain`, but with the signal handling of `Shutdown.ts` (a first Ctrl-C or
 * SIGTERM asks the migration to stop gracefully instead of interrupting it) and the exit code chosen by the program.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { ExitCode } from "./ExitCode.ts"
import { makeSignalController, type Shutdown } from "./Shutdown.ts"
import { noteOtherOutput } from "./StatusWriter.ts"
import { stderrLineUnsafe } from "./Stderr.ts"

/** After a second signal, finalizers get this long before the process exits regardless. */
const hardDeadlineMillis = 5_000

export const runMain = (program: (shutdown: Shutdown["Service"]) => Effect.Effect<ExitCode>): void => {
  let fiber: Fiber.Fiber<ExitCode> | undefined
  const controller = makeSignalController({
    interrupt: () => fiber?.interruptUnsafe(),
    armDeadline: () => void setTimeout(() => process.exit(ExitCode.Interrupted), hardDeadlineMillis).unref(),
    exitNow: () => process.exit(ExitCode.Interrupted),
    notify: (message) => {
      noteOtherOutput()
      process.stderr.write(stderrLineUnsafe(message, "Warn", true))
    }
  })
  // A closed stdout/stderr (`lo-migrate | head`, a supervisor that went away) must not crash a migration in the middle:
  // the status is lost, the work goes on.
  const ignoreBrokenPipe = (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error
  }
  process.stdout.on("error", ignoreBrokenPipe)
  process.stderr.on("error", ignoreBrokenPipe)
  const onSignal = (signal: NodeJS.Signals) => controller.onSignal(signal)
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)

  // Keeps the event loop alive while the program waits on timers only (as runMain does).
  const keepAlive = setInterval(() => {}, 2_147_483_647)
  fiber = Effect.runFork(program(controller.service))
  fiber.addObserver((exit) => {
    clearInterval(keepAlive)
    process.removeListener("SIGINT", onSignal)
    process.removeListener("SIGTERM", onSignal)
    let code: number
    if (Exit.isSuccess(exit)) {
      code = exit.value
    } else if (Cause.hasInterruptsOnly(exit.cause)) {
      process.stderr.write(stderrLineUnsafe("interrupted; run again to resume", "Warn"))
      code = ExitCode.Interrupted
    } else {
      process.stderr.write(stderrLineUnsafe(`fatal: unexpected error\n${Cause.pretty(exit.cause)}`, "Error"))
      code = ExitCode.Fatal
    }
    process.exitCode = code
    // Let stdout/stderr drain, then leave even if a library left a handle open.
    setTimeout(() => process.exit(code), 200).unref()
  })
}

/**
 * Ctrl-C and SIGTERM, handled on purpose instead of by `NodeRuntime.runMain` (which interrupts the main fiber on the
 * first signal):
 *
 * - Inside `graceful` (the migration itself), the first signal completes `requested`: the pipeline stops taking new
 *   rows, finishes what is already read or uploaded, commits it, and the run ends with the final status and
 *   "interrupted; run again to resume" within the grace period.
 * - Outside `graceful` (start-up, pre-flights, dry run, finalize) the first signal interrupts the program: there is
 *   nothing in flight worth finishing.
 * - A second signal interrupts the program at once (finalizers still run: multipart uploads are aborted, temp files
 *   removed, connections closed; after a short deadline the process exits regardless), and a third exits immediately.
 *   Nothing is ever committed without its object: the pipeline only commits rows whose upload completed, so stopping
 *   anywhere is safe.
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

export class Shutdown extends Context.Service<Shutdown, {
  /** Completes when the operator asked to stop (the first SIGINT/SIGTERM). */
  readonly requested: Effect.Effect<void>
  readonly isRequested: Effect.Effect<boolean>
  /** While `self` runs, the first signal only completes `requested` instead of interrupting. */
  readonly graceful: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}>()("lo-migrate/Shutdown") {}

export interface SignalHooks {
  /** Interrupts the main program (its finalizers run). */
  readonly interrupt: () => void
  /** Called at the second signal, after `interrupt`: arms a deadline after which the process exits regardless. */
  readonly armDeadline: () => void
  /** Exits the process now (third signal). */
  readonly exitNow: () => void
  /** Tells the operator what is happening (stderr). */
  readonly notify: (message: string) => void
}

export interface SignalController {
  readonly service: Shutdown["Service"]
  readonly onSignal: (signal: string) => void
}

/** The signal state machine, independent of `process` so that it can be tested. */
export const makeSignalController = (hooks: SignalHooks): SignalController => {
  const requested = Deferred.makeUnsafe<void>()
  let signals = 0
  let gracefulDepth = 0

  const onSignal = (signal: string) => {
    signals += 1
    if (signals === 1) {
      // read before completing `requested`: its waiters may run (and leave `graceful`) synchronously inside doneUnsafe
      const graceful = gracefulDepth > 0
      Deferred.doneUnsafe(requested, Exit.void)
      if (graceful) {
        hooks.notify(
          `${signal}: stopping: no new rows; finishing and committing what is in flight (within --grace-period). ` +
            `Send it again to exit at once.`
        )
      } else {
        hooks.notify(`${signal}: stopping.`)
        hooks.interrupt()
      }
    } else if (signals === 2) {
      hooks.notify(`${signal} again: exiting at once (uploads in flight are aborted; nothing uncommitted is lost).`)
      hooks.interrupt()
      hooks.armDeadline()
    } else {
      hooks.exitNow()
    }
  }

  const service = Shutdown.of({
    requested: Deferred.await(requested),
    isRequested: Deferred.isDone(requested),
    graceful: (self) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          gracefulDepth += 1
        }),
        () => self,
        () =>
          Effect.sync(() => {
            gracefulDepth -= 1
          })
      )
  })

  return { service, onSignal }
}

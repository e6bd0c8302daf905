/**
 * A client-side time limit for one statement outside a transaction (`--pg-statement-timeout`): the source's page of
 * pending rows, which runs on the pool without a stall guard (`StalledSockets`) because that pool also runs the
 * long `count(*)`. A page that gets no answer in time is interrupted — the driver sends a `CancelRequest` and retires
 * the connection unless the server confirms the cancel, within 5 s — and fails with a retryable `DatabaseError`, so
 * the core retry policy repeats it on a fresh connection. Measured on the client, so it also notices a stall between
 * client and server (a server-side `statement_timeout` cannot). Not for statements inside `withTransaction`: BEGIN,
 * COMMIT and ROLLBACK run uninterruptibly, and a timeout would wait for them.
 *
 * Off unless provided (the default: no timeout), so the adapters keep working on their own.
 */
import { DatabaseError } from "@lo-migrate/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

export const StatementTimeout = Context.Reference<Duration.Duration | undefined>("lo-migrate/StatementTimeout", {
  defaultValue: () => undefined
})

/** The `DatabaseError` of a statement that got no answer in time: retryable, naming the option. */
const statementTimedOut = (operation: string, timeout: Duration.Duration): DatabaseError =>
  new DatabaseError({
    operation,
    detail: `no answer from PostgreSQL within ${Duration.format(timeout)} (--pg-statement-timeout); ` +
      `the statement was cancelled and its connection is not reused`,
    retryable: true
  })

/** Bounds one statement by the current `StatementTimeout` (if any). */
export const timedStatement = (operation: string) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | DatabaseError, R> =>
  Effect.flatMap(Effect.service(StatementTimeout), (timeout) =>
    timeout === undefined
      ? self
      : Effect.timeoutOrElse(self, {
        duration: timeout,
        orElse: () => Effect.fail(statementTimedOut(operation, timeout))
      }))

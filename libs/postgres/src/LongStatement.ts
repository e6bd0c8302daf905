/**
 * lo-migrate's long statements (the counts of every row: at start-up, `status`'s pass over the table, `verify`'s
 * count and its stream of rows) run in a transaction of their own with `SET LOCAL statement_timeout = 0`. Sessions
 * normally start without a timeout (the startup parameter, `PgDatabase.ts`), but when a pooler refused or dropped that
 * parameter, a database's or role's default applies, and it would cancel them: a count of 22 million rows takes
 * longer than a typical 30 s default. A transaction stays on one server connection, behind a pooler in transaction mode too, and a
 * `SET LOCAL` ends with it, so nothing leaks to the pooler's other clients. (`CREATE INDEX CONCURRENTLY` cannot run in
 * a transaction: see `ensurePendingIndex`.)
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import type { SqlError } from "effect/sql/SqlError"
import { withTransaction } from "./DatabaseErrors.ts"

/** Runs `self` in a transaction of `sql` whose `statement_timeout` is 0, whatever the session's default. */
export const withoutStatementTimeoutOn = (sql: SqlClient.SqlClient) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
  withTransaction(sql, Effect.andThen(sql`SET LOCAL statement_timeout = 0`, self))

/** `withoutStatementTimeoutOn` the `SqlClient` in context. */
export const withoutStatementTimeout = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => withoutStatementTimeoutOn(sql)(self))

/**
 * `stream` (statements of `sql`) on a connection of its own, in a transaction whose `statement_timeout` is 0: begun
 * when the stream starts, committed when it ends (rolled back when it fails or is interrupted). For a long read that
 * is consumed step by step, such as verify's rows, which an effect-wide transaction would not cover.
 */
export const streamWithoutStatementTimeout = <A, E, R>(
  sql: SqlClient.SqlClient,
  stream: Stream.Stream<A, E, R>
): Stream.Stream<A, E | SqlError, R> =>
  Stream.unwrap(Effect.gen(function*() {
    const connection = yield* sql.reserve
    const run = (statement: string) => connection.executeUnprepared(statement, [], undefined)
    yield* run("BEGIN")
    yield* Effect.addFinalizer((exit) => Effect.ignore(run(Exit.isSuccess(exit) ? "COMMIT" : "ROLLBACK")))
    yield* run("SET LOCAL statement_timeout = 0")
    // the stream's statements take the transaction's connection, as inside `sql.withTransaction`
    return Stream.provideService(stream, sql.transactionService, [connection, 1] as const)
  }))

/**
 * lo-migrate's long statements (the counts of every row: at start-up, `status`'s pass over the table, `verify`'s
 * count) run in a transaction of their own with `SET LOCAL statement_timeout = 0`. Sessions normally start
 * without a timeout (the startup parameter, `PgDatabase.ts`), but when a pooler refused or dropped that parameter, a
 * database's or role's default applies, and it would cancel them: a count of 22 million rows takes longer than a
 * typical 30 s default. A transaction stays on one server connection, behind a pooler in transaction mode too, and a
 * `SET LOCAL` ends with it, so nothing leaks to the pooler's other clients. (`CREATE INDEX CONCURRENTLY` cannot run in
 * a transaction: see `ensurePendingIndex`.)
 */
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
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

/**
 * The client of a cluster given as a host list (libpq's `host=h1,h2`, `postgresql://h1,h2/db`), which follows the
 * cluster through a failover. libpq chooses a host for every connection it opens, so an application that reconnects
 * after a failover reaches the new primary; a pool bound to the host chosen at start-up would keep connecting to the
 * old one until the retry budget ran out. Here the pool of the chosen host is replaced once it shows a sign of a
 * failover:
 *
 * - a connection to it fails or is lost: a refused connect, a reset, the server shutting down or starting up (57P01,
 *   57P02, 57P03, class 08);
 * - under `target_session_attrs=read-write` or `primary`, it refuses a write as read-only (25006): it was demoted and
 *   came back as a standby. That failure is made retryable, so the statement runs again on the new primary.
 *
 * The next statement then chooses again among the hosts, in libpq's order and with the checks of the start-up
 * (`PgDatabase`). When it finds another server, new statements go to a new pool of it, and the old pool is closed in
 * the background once its statements have ended. When it finds the same server (a connection dropped, the server
 * still up), the pool stays. While no host will do (between the old primary's end and the promotion), each statement
 * fails with the combined error, retryable if a host may come back, and the retry policy paces the next choice.
 *
 * A standby promoted under `standby` or `read-only` shows no such sign and is kept, as libpq keeps an open connection.
 */
import { DatabaseError } from "@lo-migrate/core"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlConnection from "effect/sql/SqlConnection"
import { ConnectionError, SqlError, UnknownError } from "effect/sql/SqlError"
import * as Stream from "effect/Stream"
import { isRetryableSqlError, sqlStateOf } from "./DatabaseErrors.ts"
import type { TargetSessionAttrs } from "./PgUrl.ts"

/** A pool of the host `PgDatabase` chose, and how that host is named in messages. */
export interface Chosen {
  readonly client: PgClient.PgClient
  readonly server: string
}

/** A `SqlError` that carries a `DatabaseError` of lo-migrate's own (`isRetryableSqlError` reads its `retryable`). */
const asSqlError = (error: DatabaseError): SqlError =>
  new SqlError({ reason: new ConnectionError({ message: error.message, cause: error, operation: error.operation }) })

/** PostgreSQL answers COMMIT with ROLLBACK when the transaction was aborted: a failure, as in `PgClient`. */
const commit = (conn: SqlConnection.Connection): Effect.Effect<void, SqlError> =>
  Effect.flatMap(conn.executeRaw("COMMIT", []), (result) =>
    (result as { readonly command?: string }).command === "ROLLBACK"
      ? Effect.fail(
        new SqlError({
          reason: new UnknownError({
            cause: new Error("COMMIT rolled back an aborted transaction"),
            message: "PgClient: COMMIT rolled back an aborted transaction",
            operation: "commit"
          })
        })
      )
      : Effect.void)

/** `conn` with `onError` applied to every failure of its statements. */
const watched = (conn: SqlConnection.Connection, onError: (e: SqlError) => SqlError): SqlConnection.Connection => ({
  execute: (sql, params, transformRows) => Effect.mapError(conn.execute(sql, params, transformRows), onError),
  executeRaw: (sql, params) => Effect.mapError(conn.executeRaw(sql, params), onError),
  executeStream: (sql, params, transformRows) => Stream.mapError(conn.executeStream(sql, params, transformRows), onError),
  executeValues: (sql, params) => Effect.mapError(conn.executeValues(sql, params), onError),
  executeValuesUnprepared: (sql, params) => Effect.mapError(conn.executeValuesUnprepared(sql, params), onError),
  executeUnprepared: (sql, params, transformRows) =>
    Effect.mapError(conn.executeUnprepared(sql, params, transformRows), onError)
})

/**
 * A `PgClient` over the pool `choose` opens, chosen again after a sign of a failover. `choose` is `PgDatabase`'s
 * choice among the hosts (in the scope it is given); its first failure is this effect's failure.
 */
export const make = Effect.fnUntraced(function*<R>(
  choose: Effect.Effect<Chosen, DatabaseError, Scope.Scope | R>,
  sessionAttrs: TargetSessionAttrs
) {
  const scope = yield* Effect.scope
  // what `choose` needs besides its scope, for the choices made later by statements
  const context = yield* Effect.context<Exclude<R, Scope.Scope>>()
  /** A choice in a scope of its own, closed with this client's at the latest. */
  const open = Effect.gen(function*() {
    const own = yield* Scope.fork(scope, "sequential")
    const chosen = yield* choose.pipe(
      Scope.provide(own),
      Effect.provideContext(context),
      Effect.onError(() => Scope.close(own, Exit.void))
    )
    return { ...chosen, scope: own }
  })
  let current = yield* open
  // whether `current` showed a sign of a failover since it was chosen
  let suspect = false
  const choosing = yield* Semaphore.make(1)
  const demotable = sessionAttrs === "read-write" || sessionAttrs === "primary"

  /** Marks `of` (if it is still the current pool) when `e` is a sign of a failover; a demoted primary's 25006 is retryable. */
  const observe = (of: typeof current) => (e: SqlError): SqlError => {
    const state = sqlStateOf(e)
    const demoted = demotable && state === "25006"
    const lost = state === undefined
      ? isRetryableSqlError(e)
      : state.startsWith("08") || state === "57P01" || state === "57P02" || state === "57P03"
    if ((demoted || lost) && of === current) suspect = true
    return demoted
      ? asSqlError(
        new DatabaseError({
          operation: "write",
          detail: `the server at ${of.server} refused a write as read-only (25006) although it was chosen for ` +
            `target_session_attrs=${sessionAttrs}: a failover demoted it; the statement runs again on the host ` +
            `that is the primary now`,
          retryable: true
        })
      )
      : e
  }

  /** The current pool, or a new choice among the hosts if it showed a sign of a failover. */
  const pool = Effect.suspend(() =>
    suspect
      ? choosing.withPermits(1)(Effect.suspend(() => {
        if (!suspect) return Effect.succeed(current) // chosen by another statement meanwhile
        return open.pipe(
          Effect.mapError(asSqlError),
          Effect.flatMap((next) => {
            suspect = false
            if (next.server === current.server) {
              // the same server, up: keep the pool and its connections
              return Effect.as(Scope.close(next.scope, Exit.void), current)
            }
            const previous = current
            current = next
            return Effect.logWarning(
              `PostgreSQL: ${previous.server} is no longer the host to use (target_session_attrs=${sessionAttrs}); ` +
                `new statements go to ${next.server}`
            ).pipe(
              // the old pool closes once the statements that hold its connections have ended
              Effect.andThen(Effect.forkIn(Scope.close(previous.scope, Exit.void), scope)),
              Effect.as(next)
            )
          })
        )
      }))
      : Effect.succeed(current)
  )

  const acquirer = Effect.flatMap(pool, (of) =>
    of.client.reserve.pipe(
      Effect.mapError(observe(of)),
      Effect.map((conn) => watched(conn, observe(of)))
    ))
  const first = current.client
  const sql = yield* SqlClient.make({
    acquirer,
    compiler: PgClient.makeCompiler(),
    driver: "pg",
    prepareTransactionControls: true,
    commit,
    spanAttributes: [["db.system.name", "postgresql"], ["lo-migrate.postgres.hosts", "list"]]
  }).pipe(Effect.provide(Reactivity.layer))
  return Object.assign(sql, {
    [PgClient.TypeId]: PgClient.TypeId,
    // the first choice's; host and port are the current pool's (`current.server`)
    config: first.config,
    json: (value: unknown) => current.client.json(value),
    listen: (channel: string) => Effect.suspend(() => current.client.listen(channel)),
    notify: (channel: string, payload: string) => Effect.suspend(() => current.client.notify(channel, payload))
  }) as PgClient.PgClient
})

/**
 * One schema step at a time across every lo-migrate process on the database: shard processes (a Kubernetes Indexed
 * Job starts N of them at once) would otherwise build the same index CONCURRENTLY side by side, which PostgreSQL
 * answers with deadlocks (40P01) and "tuple concurrently updated", or drop each other's index while it is being built.
 *
 * How: a session-level advisory lock on a fixed key, taken with `pg_try_advisory_lock` on one connection reserved from
 * the pool, and the step runs on that same connection (so a pool of one connection works too); the lock goes with
 * `pg_advisory_unlock` at the end, or with the session if the process dies. `pg_try_advisory_lock` rather than a
 * blocking `pg_advisory_lock`: a session waiting inside a statement holds a snapshot, and CREATE INDEX CONCURRENTLY
 * waits for every older snapshot to end, so the holder's index build and the waiter would wait for each other. Each
 * try is a short statement; a busy lock is polled by the project's retry policy (`RetryPolicy`: the run's `--retry-budget`), or skipped where the step is optional.
 */
import { DatabaseError, RetryPolicy, retrySchedule } from "@lo-migrate/core"
import { PgClient } from "@effect/sql-pg"
import * as Effect from "effect/Effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlConnection from "effect/sql/SqlConnection"
import type { SqlError } from "effect/sql/SqlError"

/** The advisory lock key of the schema steps: "lo-migr" in ASCII, a fixed 64-bit value no application is likely to use. */
export const SchemaLockKey = "0x6c6f2d6d696772"
const key = BigInt(SchemaLockKey).toString()

/** A client whose every statement runs on `conn` (the reserved connection that holds the lock). */
const clientOn = (conn: SqlConnection.Connection) =>
  SqlClient.make({
    acquirer: Effect.succeed(conn),
    compiler: PgClient.makeCompiler(),
    driver: "pg",
    spanAttributes: [["lo-migrate.schema-lock", SchemaLockKey]]
  }).pipe(Effect.provide(Reactivity.layer))

/** The sessions holding the schema lock, for an operator to look at (or end with `pg_terminate_backend`). */
const holders = `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = ${BigInt(SchemaLockKey) >> 32n} ` +
  `AND objid = ${BigInt(SchemaLockKey) & 0xffffffffn} AND objsubid = 1`

/** Another process holds the schema lock (retryable: it is polled). */
const busy = (operation: string) =>
  new DatabaseError({
    operation,
    detail: `another session holds the schema lock (pg_advisory_lock ${SchemaLockKey}): a lo-migrate process is ` +
      `changing the schema, or a pooler in transaction mode kept it on a server connection (${holders})`,
    retryable: true
  })

/**
 * `pg_advisory_unlock` answered false: this session did not hold the lock, so the statements went to different server
 * sessions, which only a pooler in transaction mode does. The session that took the lock keeps it until the pooler
 * closes that server connection, and other processes wait for it meanwhile: say so.
 */
const notReleased = `the schema lock (pg_advisory_lock ${SchemaLockKey}) was not released by the session that took ` +
  `it: a pooler in transaction mode ran the statements on different server connections, so one of them keeps the ` +
  `lock until the pooler closes it, and other lo-migrate processes wait for it meanwhile (${holders}; ` +
  `pg_terminate_backend ends it). Run the steps that change the schema (the first run, finalize) on a direct connection`

/** Releases the lock taken on `conn`; a release that finds no lock held there is logged (`notReleased`). */
const unlock = (conn: SqlConnection.Connection) =>
  conn.executeUnprepared(`SELECT pg_advisory_unlock(${key}) AS released`, [], undefined).pipe(
    Effect.flatMap((rows) =>
      (rows[0] as { readonly released?: boolean } | undefined)?.released === false
        ? Effect.logWarning(notReleased)
        : Effect.void
    ),
    Effect.ignore
  )

/**
 * One try: the step's value, or the lock was busy. The busy outcome is `retryable` in the sense of the project's
 * retry schedule, whose input it is (`withSchemaLock` repeats the try while it is busy).
 */
type Outcome<A> = { readonly retryable: false; readonly value: A } | { readonly retryable: true }

const tryLocked = Effect.fn("SchemaLock.tryLocked")(function*<A, E, R>(step: Effect.Effect<A, E, R>) {
  const sql = yield* SqlClient.SqlClient
  const conn = yield* sql.reserve
  const rows = yield* conn.executeUnprepared(`SELECT pg_try_advisory_lock(${key}) AS locked`, [], undefined)
  if ((rows[0] as { readonly locked?: boolean } | undefined)?.locked !== true) return { retryable: true } as Outcome<A>
  const client = yield* clientOn(conn)
  const value = yield* step.pipe(
    Effect.provideService(SqlClient.SqlClient, client),
    Effect.ensuring(unlock(conn))
  )
  return { retryable: false, value } as Outcome<A>
}, Effect.scoped)

/**
 * Runs `step` holding the schema lock; while another process holds it, `onBusy` decides: `"wait"` polls per the
 * project's retry policy (its time budget; then fails with a retryable `DatabaseError` naming the lock), `"skip"`
 * returns `skipped` at once (for optional steps: the other process is doing the same work).
 */
export const withSchemaLock = <A, E, R, B = A>(
  operation: string,
  step: Effect.Effect<A, E, R>,
  onBusy: { readonly wait: true } | { readonly skipped: B }
): Effect.Effect<A | B, E | SqlError | DatabaseError, Exclude<R, SqlClient.SqlClient> | SqlClient.SqlClient> => {
  const attempt = tryLocked(step)
  if ("skipped" in onBusy) return Effect.map(attempt, (o) => (o.retryable ? onBusy.skipped : o.value))
  // tried again while the lock is busy, per the policy in force where the step runs (the run's --retry-budget); the
  // step's own failures end the repetition at once; `passthrough`: the result is the last try's outcome
  return Effect.service(RetryPolicy).pipe(
    Effect.flatMap((policy) => Effect.repeat(attempt, retrySchedule(policy).pipe(Schedule.setInputType<Outcome<A>>(), Schedule.passthrough))),
    Effect.flatMap((o) => o.retryable ? Effect.fail(busy(operation)) : Effect.succeed(o.value))
  )
}

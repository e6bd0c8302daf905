/**
 * Throwaway databases on a real PostgreSQL: a uniquely named database on the server of `PG_TEST_URL` (default
 * `postgres://postgres@127.0.0.1:5432/postgres`), dropped WITH (FORCE) when the scope / layer is released; if that
 * server is unreachable and Docker is available, a PostgreSQL testcontainer is started once per process. The admin
 * operations (`createDatabase`, `dropDatabase`, `databaseExists`) also serve the bench's named databases.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { DatabaseError } from "@lo-migrate/core"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as SqlClient from "effect/sql/SqlClient"
import { randomBytes } from "node:crypto"
import { toDatabaseError } from "../DatabaseErrors.ts"
import * as PgDatabase from "../PgDatabase.ts"


export const defaultAdminUrl = "postgres://postgres@127.0.0.1:5432/postgres"

/** The admin URL tests use: `PG_TEST_URL` or the local default. */
export const testAdminUrl = (): string => {
  const fromEnv = process.env["PG_TEST_URL"]
  return fromEnv === undefined || fromEnv.length === 0 ? defaultAdminUrl : fromEnv
}

/** `url` with its database replaced by `database`. */
export const databaseUrl = (url: string, database: string): string => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** Runs `f` on a single admin connection (not a pool) to `url`. */
const withAdmin = <A, E>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.flatMap(
      PgClient.makeClient({ url: Redacted.make(url), applicationName: "lo-migrate-tests", connectTimeout: "3 seconds" }),
      f
    )
  ).pipe(
    Effect.provide(Reactivity.layer),
    Effect.mapError((e) => toDatabaseError("testing.admin", e, [url]))
  )

const reachable = (url: string) =>
  withAdmin(url, (sql) => sql`SELECT 1`).pipe(
    Effect.as(true),
    Effect.catch(() => Effect.succeed(false))
  )


/**
 * Starts a PostgreSQL 15 testcontainer (once per process; Ryuk removes it when the process ends). Only used when
 * `PG_TEST_URL` cannot be reached.
 */
const startContainer = Effect.tryPromise({
  try: () =>
    import("@testcontainers/postgresql")
      .then(({ PostgreSqlContainer }) => new PostgreSqlContainer("postgres:15-alpine").start())
      .then((started) => started.getConnectionUri()),
  catch: (cause) =>
    new DatabaseError({
      operation: "testing.container",
      detail: `PG_TEST_URL (${Redacted.make(testAdminUrl())}) is unreachable and no PostgreSQL testcontainer ` +
        `could be started: ${cause instanceof Error ? cause.message : String(cause)}`,
      retryable: false
    })
})

const resolveAdmin: Effect.Effect<string, DatabaseError> = Effect.runSync(Effect.cached(Effect.gen(function*() {
  const url = testAdminUrl()
  if (yield* reachable(url)) return url
  return yield* startContainer
})))

export interface ThrowawayDatabaseInfo {
  /** The database's name (unique per call). */
  readonly name: string
  /** A URL for it, on the same server and with the same credentials as the admin URL. */
  readonly url: Redacted.Redacted<string>
}

/** Database names are put into statements unquoted: only plain lower-case identifiers are accepted. */
const checkedName = (operation: string, name: string) =>
  /^[a-z_][a-z0-9_]{0,62}$/.test(name)
    ? Effect.succeed(name)
    : Effect.fail(
      new DatabaseError({
        operation,
        detail: `database name ${JSON.stringify(name)} is not a plain identifier ([a-z_][a-z0-9_]*, at most 63)`,
        retryable: false
      })
    )

export interface DatabaseOptions {
  /**
   * `SQL_ASCII`: a database that stores the bytes of text unchecked (C locale, from `template0`), as legacy ones often
   * do; its text columns may hold bytes that are not UTF-8. `LATIN1`: one whose text PostgreSQL converts to the
   * client's UTF-8. Default: the server's (UTF-8 here).
   */
  readonly encoding?: "SQL_ASCII" | "LATIN1" | undefined
}

/** Creates the database `name` on the server of `adminUrl`. */
export const createDatabase = (adminUrl: string, name: string, options: DatabaseOptions = {}) =>
  Effect.flatMap(checkedName("testing.createDatabase", name), (db) =>
    withAdmin(adminUrl, (sql) =>
      sql.unsafe(
        options.encoding === undefined
          ? `CREATE DATABASE ${db}`
          : `CREATE DATABASE ${db} ENCODING '${options.encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`
      )))

/** Drops the database `name` (WITH (FORCE): its connections are closed) if it exists. */
export const dropDatabase = (adminUrl: string, name: string) =>
  Effect.flatMap(checkedName("testing.dropDatabase", name), (db) =>
    withAdmin(adminUrl, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)))

/** Whether the database `name` exists on the server of `adminUrl`. */
export const databaseExists = (adminUrl: string, name: string) =>
  withAdmin(adminUrl, (sql) => sql<{ readonly n: number }>`SELECT 1 AS n FROM pg_database WHERE datname = ${name}`).pipe(
    Effect.map((rows) => rows.length > 0)
  )

const makeThrowaway = (
  options: DatabaseOptions = {}
): Effect.Effect<ThrowawayDatabaseInfo, DatabaseError, Scope.Scope> => Effect.gen(function*() {
  const admin = yield* resolveAdmin
  const name = `lomt_${process.pid}_${randomBytes(6).toString("hex")}`
  const info: ThrowawayDatabaseInfo = { name, url: Redacted.make(databaseUrl(admin, name)) }
  yield* Effect.acquireRelease(
    createDatabase(admin, name, options),
    () =>
      dropDatabase(admin, name).pipe(
        Effect.catch((e) => Effect.logWarning(`could not drop throwaway database ${name}: ${e.message}`))
      )
  )
  return info
})

/** A uniquely named database, dropped (WITH (FORCE)) when released. */
export class ThrowawayDatabase extends Context.Service<ThrowawayDatabase, ThrowawayDatabaseInfo>()(
  "lo-migrate/testing/ThrowawayDatabase"
) {
  /** Creates the database; the enclosing scope drops it. */
  static readonly make: Effect.Effect<ThrowawayDatabaseInfo, DatabaseError, Scope.Scope> = makeThrowaway()

  static readonly layer: Layer.Layer<ThrowawayDatabase, DatabaseError> = Layer.effect(ThrowawayDatabase, makeThrowaway())

  /** A throwaway database created with `options` (e.g. `SQL_ASCII`). */
  static readonly layerWith = (options: DatabaseOptions): Layer.Layer<ThrowawayDatabase, DatabaseError> =>
    Layer.effect(ThrowawayDatabase, makeThrowaway(options))

  /** A throwaway database plus a `PgDatabase` pool on it (closed before the database is dropped). */
  static readonly layerWithClient = (
    maxConnections = 4,
    options: DatabaseOptions = {}
  ): Layer.Layer<ThrowawayDatabase | PgClient.PgClient | SqlClient.SqlClient, DatabaseError> =>
    Layer.unwrap(Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      return PgDatabase.layer({ url: db.url, maxConnections })
    }))
      .pipe(Layer.provideMerge(ThrowawayDatabase.layerWith(options)))
}

/**
 * Runs `self` on a pool of the throwaway database whose sessions start with the database's and role's defaults, as a
 * pooler that refused or dropped lo-migrate's startup parameters leaves them (`PgDatabase` sends `statement_timeout=0`).
 */
export const withSessionDefaults = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(ThrowawayDatabase, (db) =>
    Effect.provide(self, PgClient.layer({ url: db.url, applicationName: "lo-migrate-tests" })))

/**
 * An application's transaction left open on `_nice_binary` of the throwaway database (BEGIN, then a read of the table,
 * on a connection of its own) until the scope closes: what `CREATE INDEX CONCURRENTLY` waits for.
 */
export const openApplicationTransaction = Effect.gen(function*() {
  const db = yield* ThrowawayDatabase
  yield* Effect.acquireRelease(
    Effect.gen(function*() {
      // one connection: the statements share it
      const client = yield* PgClient.make({ url: db.url, maxConnections: 1, applicationName: "lo-migrate-tests" })
      yield* client.unsafe("BEGIN")
      yield* client.unsafe("SELECT count(*) FROM _nice_binary")
      return client
    }),
    (client) => Effect.ignore(client.unsafe("ROLLBACK"))
  ).pipe(Effect.provide(Reactivity.layer))
})

/**
 * An application's transaction that locks the row of `hash` (`SELECT ... FOR UPDATE`, as its own UPDATE would) on a
 * connection of its own, and commits `holdFor` later, in a fiber of the scope: an UPDATE of that row waits meanwhile.
 */
export const lockRowFor = (hash: string, holdFor: Duration.Input) =>
  Effect.gen(function*() {
    const db = yield* ThrowawayDatabase
    const client = yield* PgClient.make({ url: db.url, maxConnections: 1, applicationName: "lo-migrate-tests" })
    yield* client.unsafe("BEGIN")
    yield* client.unsafe("SET LOCAL statement_timeout = 0")
    yield* client`SELECT 1 FROM _nice_binary WHERE hash = ${hash} FOR UPDATE`
    yield* Effect.forkScoped(Effect.sleep(holdFor).pipe(Effect.andThen(Effect.ignore(client.unsafe("COMMIT")))))
  }).pipe(Effect.provide(Reactivity.layer))

/**
 * Least-privilege roles: a LOGIN role that owns nothing, with exactly the grants the README lists, and a helper that
 * runs an effect in a fresh throwaway database.
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type { DatabaseError } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as SqlClient from "effect/sql/SqlClient"
import { randomBytes } from "node:crypto"
import { toDatabaseError } from "../DatabaseErrors.ts"
import { type DatabaseOptions, ThrowawayDatabase } from "./ThrowawayDatabase.ts"


export interface ThrowawayRoleInfo {
  /** The role's name (unique per call; roles are cluster-wide). */
  readonly name: string
  /** The throwaway database's URL with this role as the user. */
  readonly url: Redacted.Redacted<string>
}

/** The statements that give `role` exactly the rights the README lists for the migrator (sha2 column present). */
export const minimalGrants = (role: string): ReadonlyArray<string> => [
  `GRANT SELECT, UPDATE (sha2) ON _nice_binary TO ${role}`,
  `GRANT SELECT ON nice_batch_job TO ${role}`,
  // every large object _nice_binary points at (what a DBA runs; a DO block, since GRANT takes no expression)
  `DO $$ DECLARE o oid; BEGIN
     FOR o IN SELECT m.oid FROM pg_largeobject_metadata m WHERE m.oid IN (SELECT data FROM _nice_binary) LOOP
       EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO ${role}', o);
     END LOOP; END $$`
]

/**
 * A LOGIN role that owns nothing, created in the current (throwaway) database's cluster; the scope revokes what it was
 * granted there (`DROP OWNED BY`) and drops it. `grants` run as the admin after the role is created (`minimalGrants`).
 */
export const throwawayRole = Effect.fn("Roles.throwawayRole")(function*(
  grants: (role: string) => ReadonlyArray<string>
) {
  const sql = yield* SqlClient.SqlClient
  const db = yield* ThrowawayDatabase
  const name = `lomt_role_${process.pid}_${randomBytes(4).toString("hex")}`
  yield* Effect.acquireRelease(
    sql.unsafe(`CREATE ROLE ${name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`),
    () =>
      sql.unsafe(`DROP OWNED BY ${name}`).pipe(
        Effect.andThen(sql.unsafe(`DROP ROLE IF EXISTS ${name}`)),
        Effect.catch((e) => Effect.logWarning(`could not drop throwaway role ${name}: ${String(e)}`))
      )
  )
  for (const statement of grants(name)) yield* sql.unsafe(statement)
  const url = new URL(Redacted.value(db.url))
  url.username = name
  url.password = ""
  const info: ThrowawayRoleInfo = { name, url: Redacted.make(url.toString()) }
  return info
}, Effect.mapError((e) => toDatabaseError("testing.throwawayRole", e)))

/** Runs `self` in a fresh throwaway database (`options`: e.g. `SQL_ASCII`) with a pool of `maxConnections` (dropped afterwards). */
export const inThrowawayDatabase = (maxConnections = 4, options: DatabaseOptions = {}) =>
<A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | DatabaseError, Exclude<R, ThrowawayDatabase | PgClient.PgClient | SqlClient.SqlClient>> =>
  Effect.provide(self, ThrowawayDatabase.layerWithClient(maxConnections, options))

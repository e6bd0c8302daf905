/**
 * The bench's throwaway database: created under the admin URL, dropped at the end (unless kept for reuse).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"

export const defaultAdminUrl = "postgres://postgres@127.0.0.1:5432/postgres"

/** The admin URL with its database replaced. */
export const databaseUrl = (adminUrl: string, database: string): string => {
  const u = new URL(adminUrl)
  u.pathname = `/${database}`
  return u.toString()
}

/** A pool on `url`. Large `maxMessageSize` so a whole 64 MiB object fits one DataRow where a method asks for it. */
export const pgLayer = (url: string, maxConnections = 2, extra: Partial<PgClient.PgPoolConfig> = {}) =>
  PgClient.layer({
    url: Redacted.make(url),
    maxConnections,
    maxMessageSize: 80 * 1024 * 1024,
    applicationName: "lo-migrate-bench",
    ...extra
  })

const quoteIdent = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe database name ${JSON.stringify(name)}`)
  return `"${name}"`
}

export const createDatabase = (adminUrl: string, name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE DATABASE ${quoteIdent(name)}`)
  }).pipe(Effect.provide(pgLayer(adminUrl, 1)))

export const databaseExists = (adminUrl: string, name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly n: number }>`SELECT 1 AS n FROM pg_database WHERE datname = ${name}`
    return rows.length > 0
  }).pipe(Effect.provide(pgLayer(adminUrl, 1)))

export const dropDatabase = (adminUrl: string, name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`)
  }).pipe(Effect.provide(pgLayer(adminUrl, 1)))

/** A fresh database for the scope's lifetime: created now, dropped when the scope closes (unless `keep`). */
export const scopedDatabase = (adminUrl: string, name: string, keep: boolean) =>
  Effect.acquireRelease(
    Effect.as(createDatabase(adminUrl, name), databaseUrl(adminUrl, name)),
    () => keep ? Effect.void : Effect.ignore(dropDatabase(adminUrl, name))
  )

export type PgLayer = Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown>

/**
 * The bench's connection pool. Creating, reusing and dropping its database are the test helpers'
 * (`@lo-migrate/postgres/testing`: `createDatabase`, `databaseExists`, `dropDatabase`).
 */
import { PgClient } from "@effect/sql-pg"
import { Redacted } from "effect"

/** A pool on `url`. Large `maxMessageSize` so a whole 64 MiB object fits one DataRow where a method asks for it. */
export const pgLayer = (url: string, maxConnections = 2, extra: Partial<PgClient.PgPoolConfig> = {}) =>
  PgClient.layer({
    url: Redacted.make(url),
    maxConnections,
    maxMessageSize: 80 * 1024 * 1024,
    applicationName: "lo-migrate-bench",
    ...extra
  })

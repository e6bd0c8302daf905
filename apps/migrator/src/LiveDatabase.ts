/**
 * The live services of the commands that only talk to PostgreSQL (`status`, `finalize`), apart from Live.ts so that
 * loading them does not load the AWS SDK: `status` on a 5,000-row table, peak RSS 111 -> 102 MiB, 0.83 -> 0.77
 * user-s (`/usr/bin/time`, twice each). Live.ts re-exports them: it stays the one place every command's wiring is found.
 */
import { PgDatabase, SchemaTasks } from "@lo-migrate/postgres"
import * as Layer from "effect/Layer"
import type { DatabaseConfig } from "./Config.ts"

/** The pool of `maxConnections` for `config`'s database. */
const databaseOf = (config: DatabaseConfig, maxConnections: number): PgDatabase.PgConnectionConfig => ({
  url: config.pgUrl,
  options: config.pgOptions,
  preparedStatements: !config.pgTransactionPooler,
  maxConnections,
  connectTimeout: `${config.connectTimeout} seconds`
})

/** `finalize`: the schema tasks on a small pool. */
export const finalizeLayer = (config: DatabaseConfig) =>
  SchemaTasks.layer.pipe(Layer.provide(PgDatabase.layer(databaseOf(config, 2))))

/** `status`: one read-only pass over the table, on one connection. */
export const statusLayer = (config: DatabaseConfig) => PgDatabase.layer(databaseOf(config, 1))

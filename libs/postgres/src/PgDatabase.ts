/**
 * The connection pool: `@effect/sql-pg`'s own wire client, sized by the caller (the pipeline passes its stage
 * concurrency), checked once at start-up so that a wrong URL or an unreachable server fails fast with a
 * `DatabaseError` whose text never contains the password.
 */
import type { DatabaseError } from "@lo-migrate/core"
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as SqlClient from "effect/sql/SqlClient"
import { toDatabaseError, urlSecrets } from "./DatabaseErrors.ts"

export interface PgConnectionConfig {
  /** `postgres://user:password@host:port/database?sslmode=...` */
  readonly url: Redacted.Redacted<string>
  /** Pool size: the number of statements that can run at once (readers + committers + source). */
  readonly maxConnections: number
  /** `application_name` shown in `pg_stat_activity`; defaults to `lo-migrate`. */
  readonly applicationName?: string | undefined
  /** Time allowed to open one connection (TCP + TLS + auth). Defaults to the driver's 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
}

const make = (config: PgConnectionConfig) => {
  const secrets = urlSecrets(config.url)
  return PgClient.make({
    url: config.url,
    maxConnections: Math.max(1, Math.floor(config.maxConnections)),
    applicationName: config.applicationName ?? "lo-migrate",
    ...(config.connectTimeout !== undefined ? { connectTimeout: config.connectTimeout } : {}),
    // Idle connections are closed after a minute; the pool reopens them on demand.
    idleTimeout: "60 seconds"
  }).pipe(
    // The pool connects lazily: prove now that the URL, credentials and database are right.
    Effect.tap((client) => client`SELECT 1`),
    Effect.mapError((e) => toDatabaseError("connect", e, secrets))
  )
}

export const PgDatabase: {
  /** `PgClient` + `SqlClient` for the given URL. Fails with `DatabaseError` (password scrubbed) if it cannot connect. */
  readonly layer: (config: PgConnectionConfig) => Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseError>
} = {
  layer: (config) => PgClient.layerFrom(make(config))
}

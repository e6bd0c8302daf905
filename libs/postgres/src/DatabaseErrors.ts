/**
 * Turning `@effect/sql-pg` failures into core's `DatabaseError`: which ones are worth retrying, the SQLSTATE behind
 * them, and a detail text that never carries a secret.
 */
import { DatabaseError, isTransientNetworkCode, scrubSecrets } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as SqlClient from "effect/sql/SqlClient"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import { decodedComponent } from "./PgUrl.ts"


/**
 * SQLSTATEs that say "try again": class 08 (connection exception), 40001 (serialization failure), 40P01 (deadlock),
 * 53300 (too many connections), 55P03 (lock not available, i.e. `lock_timeout`), 57P01 / 57P02 / 57P03 (the server
 * is shutting down, crashed, or not accepting connections yet), and the two session timeouts a DBA sets, 25P03
 * (`idle_in_transaction_session_timeout`) and 57P05 (`idle_session_timeout`): the server ended that session, a new one
 * runs the statement (every unit lo-migrate retries starts its own transaction). A connection they end while it waits
 * in the pool is simply replaced (e2e-settings.test.ts); these cover a statement sent as the session ends. And 57014
 * (query_canceled): lo-migrate's sessions ask for no `statement_timeout`, so it comes from a default a pooler let
 * through, or from a DBA's `pg_cancel_backend`; a commit that waited for an application's row lock passes once the
 * lock is gone. A statement that always outlasts such a default is retried until the retry budget ends.
 */
export const isTransientSqlState = (code: string): boolean =>
  code.startsWith("08") ||
  code === "25P03" ||
  code === "40001" ||
  code === "40P01" ||
  code === "53300" ||
  code === "55P03" ||
  code === "57P01" ||
  code === "57P02" ||
  code === "57P03" ||
  code === "57P05" ||
  code === "57014"

/** Five characters of digits and capitals; Node errnos ("EPIPE") look alike but start with "E", no SQLSTATE class does. */
const isSqlState = (code: string): boolean => /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code)

const codeOf = (u: unknown): string | undefined => {
  if (typeof u !== "object" || u === null || !("code" in u)) return undefined
  const code = (u as { readonly code: unknown }).code
  return typeof code === "string" ? code : undefined
}

const messageOf = (u: unknown): string | undefined => {
  if (typeof u !== "object" || u === null || !("message" in u)) return undefined
  const message = (u as { readonly message: unknown }).message
  return typeof message === "string" && message.length > 0 ? message : undefined
}

/** The SQLSTATE the server sent with the error, if the failure came from the server. */
export const sqlStateOf = (error: SqlError): string | undefined => {
  const code = codeOf(error.cause.cause)
  return code !== undefined && isSqlState(code) ? code : undefined
}

/**
 * A connect to a Unix socket that is not there: the server is not running (it removes its socket when it stops) or
 * not yet, which is what ECONNREFUSED says over TCP.
 */
const noSocketYet = (u: unknown): boolean =>
  codeOf(u) === "ENOENT" && typeof u === "object" && u !== null && "syscall" in u &&
  (u as { readonly syscall: unknown }).syscall === "connect"

/**
 * Whether repeating the operation may succeed. The driver's own `isRetryable` is coarser (every `ConnectionError`,
 * including a malformed URL or an unknown host, counts as retryable there), so this looks at the SQLSTATE or the
 * socket error underneath.
 */
export const isRetryableSqlError = (error: SqlError): boolean => {
  const reason = error.cause
  // lo-migrate's own failure in the driver's clothes (`ClusterClient`: no host would do, a demoted primary)
  if (reason.cause instanceof DatabaseError) return reason.cause.retryable
  const code = codeOf(reason.cause)
  if (code !== undefined) {
    return isSqlState(code) ? isTransientSqlState(code) : isTransientNetworkCode(code) || noSocketYet(reason.cause)
  }
  if (reason._tag !== "ConnectionError") return false
  // Without a code: a connection that died under a running statement, or closed / timed out during start-up, is
  // transient; the driver's configuration errors (bad URL, bad option) are raised at "connect" and are not.
  if (reason.operation !== "connect") return true
  const text = `${reason.message ?? ""} ${messageOf(reason.cause) ?? ""}`
  return /closed|timed out|terminat/i.test(text)
}

/** A one-line description: the driver's message, the server's or socket's message, and the SQLSTATE / errno. */
export const describeSqlError = (error: SqlError): string => {
  const reason = error.cause
  const outer = reason.message ?? reason._tag
  const inner = messageOf(reason.cause)
  const code = codeOf(reason.cause)
  const parts = [outer]
  if (inner !== undefined && !outer.includes(inner)) parts.push(inner)
  let text = parts.join(": ")
  if (code !== undefined) text += ` [${code}]`
  return text
}


/**
 * What 26000 ("prepared statement ... does not exist") means for lo-migrate, which never deallocates one: the server
 * connection that ran the statement is not the one it was prepared on, so a pooler in transaction mode stands between
 * (not retried: the next statement would land on yet another server connection).
 */
const statementNameUnknown = "; the statement was prepared on this connection, so a pooler in transaction mode " +
  "(PgBouncer's pool_mode = transaction, before 1.21 or without max_prepared_statements) hands its transactions to " +
  "other server connections: run again with --pg-transaction-pooler (PgDatabase: preparedStatements: false)"

/** The authentication requests of the protocol that the driver does not answer, by their number. */
const unsupportedAuthentication: Readonly<Record<string, string>> = {
  "2": "Kerberos V5",
  "6": "SCM credentials",
  "7": "GSSAPI (Kerberos)",
  "9": "SSPI (Windows)"
}

/**
 * What the driver's "Authentication method N is not supported" means: the method `pg_hba.conf` gives this role and
 * host, by name, and what lo-migrate can use instead.
 */
const authenticationHint = (detail: string): string => {
  const method = /Authentication method (\d+) is not supported/.exec(detail)?.[1]
  if (method === undefined) return ""
  const name = unsupportedAuthentication[method] ?? `number ${method}`
  return `; the server asks for ${name} authentication (its pg_hba.conf line for this role and host), which ` +
    "lo-migrate's PostgreSQL driver does not support: give the role a password (scram-sha-256 or md5), a client " +
    "certificate (cert), or peer or trust over a Unix socket"
}

/** The secret parts of a connection URL: the whole URL and its password (if any, also as a `password` parameter). */
export const urlSecrets = (url: Redacted.Redacted<string>): ReadonlyArray<string> => {
  const raw = Redacted.value(url)
  const secrets = [raw]
  if (URL.canParse(raw)) {
    const parsed = new URL(raw)
    if (parsed.password.length > 0) secrets.push(parsed.password, decodedComponent(parsed.password))
    for (const value of parsed.searchParams.getAll("password")) if (value.length > 0) secrets.push(value)
  } else {
    // Not parseable by WHATWG URL: fall back to anything between "://user:" and the last "@".
    const match = /^[a-z][a-z0-9+.-]*:\/\/[^:/@]*:(.*)@[^@]*$/i.exec(raw)
    if (match?.[1] !== undefined && match[1].length > 0) secrets.push(match[1])
  }
  return secrets
}

/**
 * Maps a driver failure to `DatabaseError`. `cause` keeps the driver error for diagnosis unless `secrets` are given,
 * in which case only the scrubbed text is kept (a driver error may carry the raw URL, e.g. Node's `ERR_INVALID_URL`
 * has an `input` field).
 */
export const toDatabaseError = (operation: string, error: unknown, secrets?: ReadonlyArray<string>): DatabaseError => {
  if (isSqlError(error) && error.cause.cause instanceof DatabaseError) {
    // already lo-migrate's own words (`ClusterClient`), scrubbed where it was made
    const own = error.cause.cause
    return new DatabaseError({ operation, detail: own.detail, retryable: own.retryable })
  }
  if (isSqlError(error)) {
    const described = describeSqlError(error)
    const detail = described + (sqlStateOf(error) === "26000" ? statementNameUnknown : authenticationHint(described))
    const retryable = isRetryableSqlError(error)
    return secrets === undefined
      ? new DatabaseError({ operation, detail, retryable, cause: error })
      : new DatabaseError({ operation, detail: scrubSecrets(detail, secrets), retryable })
  }
  const text = messageOf(error) ?? String(error)
  return secrets === undefined
    ? new DatabaseError({ operation, detail: text, retryable: false, cause: error })
    : new DatabaseError({ operation, detail: scrubSecrets(text, secrets), retryable: false })
}

/** `Effect.mapError` for SQL statements: every `SqlError` becomes a `DatabaseError` for `operation`. */
export const mapSqlError = (operation: string) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, SqlError> | DatabaseError, R> =>
  Effect.mapError(self, (e) => isSqlError(e) ? toDatabaseError(operation, e) : e as Exclude<E, SqlError>)

/**
 * `sql.withTransaction`, except that a lost connection stays a typed failure. When the connection dies inside a
 * transaction, the client's ROLLBACK fails too and `withTransaction` turns that into a defect (it `orDie`s the
 * rollback), which would crash the run instead of letting it retry. Here a `SqlError` defect becomes a failure again
 * (and is then classified like any other: a lost connection is retryable).
 */
export const withTransaction = <A, E, R>(
  sql: SqlClient.SqlClient,
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  sql.withTransaction(self).pipe(
    Effect.catchDefect((defect) => isSqlError(defect) ? Effect.fail(defect) : Effect.die(defect))
  )

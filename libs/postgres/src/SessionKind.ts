/**
 * What kind of server a session is on, as libpq's `target_session_attrs` and lo-migrate's pre-flight ask it: whether
 * its transactions are read-only (`transaction_read_only`: a standby, or `default_transaction_read_only` set for the
 * role or database) and whether the server is a standby (`pg_is_in_recovery()`). One query, read by the pool's check
 * of `target_session_attrs` (`PgDatabase`) and by the pre-flight that refuses a read-only session (`Schema`).
 */
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"

export interface SessionKind {
  readonly readOnly: boolean
  readonly standby: boolean
  /** `current_user`, quoted as an identifier (for the statements a message suggests). */
  readonly role: string
}

/** The kind of the session a statement of the `SqlClient` in context runs on. */
export const readSessionKind: Effect.Effect<SessionKind, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [r] = yield* sql<{ readonly readOnly: string; readonly standby: boolean; readonly role: string }>`
    SELECT current_setting('transaction_read_only') AS "readOnly", pg_is_in_recovery() AS standby,
           quote_ident(current_user) AS role`
  return { readOnly: r?.readOnly === "on", standby: r?.standby === true, role: r?.role ?? "" }
})

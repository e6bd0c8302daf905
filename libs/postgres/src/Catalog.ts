/**
 * The application's schema as the migrator sees it: the names of its tables, columns and indexes, the statements a DBA
 * may be asked to run, and the read-only catalog queries the schema tasks and the dry run decide on.
 */
import { DatabaseError, type RowCounts } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { withoutStatementTimeout } from "./LongStatement.ts"

export const BinaryTable = "_nice_binary"
/** What a missing table of the application may mean, for the messages that say so. */
export const tableNotFoundHint = "is this the application's database? If its tables are in a schema of their own, " +
  "put that schema in the search path: options=-c%20search_path%3DSCHEMA in the URL, or PGOPTIONS='-c search_path=SCHEMA'"
/** `_nice_binary` is not found by `operation` (the same words for the schema tasks and the dry run). */
export const missingTable = (operation: string): DatabaseError =>
  new DatabaseError({
    operation,
    detail: `table ${BinaryTable} does not exist in the session's search path (${tableNotFoundHint})`,
    retryable: false
  })
export const BatchJobTable = "nice_batch_job"
export const BatchJobId = "nice2.dms.DeleteUnreferencedBinariesBatchJob"
/** The unique index `finalize` creates (the name the original tool used). */
export const Sha2UniqueIndex = "_nice_binary_sha2_key"
/** The optional partial index of pending rows (`ensurePendingIndex`); `finalize` drops it. */
export const PendingIndex = "_nice_binary_sha2_pending_idx"
/** The CHECK constraint `finalize` validates before SET NOT NULL (then drops). */
export const NotNullCheck = "_nice_binary_sha2_not_null"
/** The statement `ensurePendingIndex` runs (and a DBA can run for a role that may not). */
export const PendingIndexStatement =
  `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${PendingIndex} ON _nice_binary (hash) WHERE sha2 IS NULL`
/** The statement `ensureSha2Column` runs (and the table's owner can run for a role that may not). */
export const AddSha2ColumnStatement = "ALTER TABLE _nice_binary ADD COLUMN IF NOT EXISTS sha2 char(64)"

export interface ColumnInfo {
  readonly type: string
  readonly notNull: boolean
}

/** Whether the relation `name` exists (in the search path). */
export const tableExists = Effect.fnUntraced(function*(name: string) {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly present: boolean }>`SELECT to_regclass(${name}) IS NOT NULL AS present`
  return rows[0]?.present === true
})

/** `_nice_binary.sha2`'s type and nullability, `undefined` when the column does not exist. */
export const sha2Column = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<ColumnInfo>`
    SELECT format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull"
    FROM pg_attribute a
    WHERE a.attrelid = to_regclass(${BinaryTable}) AND a.attname = 'sha2' AND NOT a.attisdropped`
  return rows[0]
})

/** Whether the index `name` exists and is valid; `undefined` when it does not exist. */
export const indexState = Effect.fnUntraced(function*(name: string) {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly valid: boolean }>`
    SELECT i.indisvalid AS valid FROM pg_index i WHERE i.indexrelid = to_regclass(${name})`
  return rows[0]
})

/**
 * Whether another session may be building the index `name` of `_nice_binary` right now (CREATE INDEX [CONCURRENTLY]
 * in progress, per `pg_stat_progress_create_index`). A build by a role whose progress this role may not see (its
 * columns are NULL without `pg_read_all_stats`) counts as possibly this index: an INVALID index is then left alone.
 */
export const indexBuildInProgress = Effect.fnUntraced(function*(name: string) {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_progress_create_index p
    WHERE p.pid <> pg_backend_pid()
      AND p.datname = current_database()
      AND (p.relid IS NULL
        OR (p.relid = to_regclass(${BinaryTable})::oid AND p.index_relid IN (0, to_regclass(${name})::oid)))`
  return (rows[0]?.n ?? 0) > 0
})

/**
 * An index of `_nice_binary`: `valid`; `building` (INVALID while another session builds it); `invalid` (the leftover of
 * a cancelled or killed build); `none`.
 */
export type IndexCondition = "valid" | "building" | "invalid" | "none"

/** The condition of the index `name` (`indexState`, then for an INVALID one `indexBuildInProgress`). */
export const indexCondition = Effect.fnUntraced(function*(
  name: string
): Effect.fn.Return<IndexCondition, SqlError, SqlClient.SqlClient> {
  const state = yield* indexState(name)
  if (state === undefined) return "none"
  if (state.valid) return "valid"
  return (yield* indexBuildInProgress(name)) ? "building" : "invalid"
})

/** The statement that drops the index `name` without blocking the application's writes (and a DBA may run). */
export const dropIndexStatement = (name: string): string => `DROP INDEX CONCURRENTLY IF EXISTS ${name}`

/** Rows whose `sha2` is still NULL (a long statement: `LongStatement.ts`). */
export const countPending = withoutStatementTimeout(Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM _nice_binary WHERE sha2 IS NULL`
  return Number(rows[0]?.n ?? 0n)
}))

/**
 * Every row of `_nice_binary`, its bytes and its largest object: the counts when `sha2` does not exist yet (a long
 * statement: `LongStatement.ts`).
 */
export const countAll: Effect.Effect<RowCounts, SqlError, SqlClient.SqlClient> = withoutStatementTimeout(Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient
    const [r] = yield* sql<{ readonly total: bigint | number; readonly bytes: bigint | number | string; readonly largest: bigint | number }>`
      SELECT count(*) AS total, coalesce(sum(size), 0) AS bytes, coalesce(max(size), 0) AS largest FROM _nice_binary`
    const total = Number(r?.total ?? 0)
    return { total, remaining: total, remainingBytes: Number(r?.bytes ?? 0), largest: Number(r?.largest ?? 0) }
  }
))

/** The role's name, and the same as an SQL identifier (quoted when needed) for the statements. */
export const currentRole = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly role: string; readonly ident: string }>`
    SELECT current_user AS role, quote_ident(current_user) AS ident`
  return rows[0] ?? { role: "current_user", ident: "current_user" }
})

/**
 * Schema tasks around the migration, each safe to run while the application keeps writing:
 *
 * - `ensureSha2Column`: adds `_nice_binary.sha2 char(64)` when missing (a catalog-only change).
 * - `ensurePendingIndex`: an optional partial index of the rows still to migrate, built CONCURRENTLY.
 * - `finalize`: `sha2` NOT NULL and UNIQUE once no row is left, refused (with the count) before that.
 * - `checkBatchJob`: the pre-flight that refuses to start while the application's
 *   `DeleteUnreferencedBinariesBatchJob` is active (it deletes large objects the migration may be reading).
 *
 * The migrator may run as a role that owns nothing (the grants it needs are in the README). What such a role may not do
 * fails with `SchemaNotPermitted`, whose message is the statement a DBA can run instead: adding the sha2 column and
 * the missing SELECT / UPDATE (sha2) rights stop the pre-flight; the optional index is only warned about by the caller.
 *
 * Every DDL statement that needs an ACCESS EXCLUSIVE lock runs with a short `lock_timeout` and is retried a few
 * times: waiting in the lock queue behind a long application query would otherwise block all later application
 * queries on the table for as long as we wait.
 */
import { DatabaseError, defaultRetry, retrySchedule } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { mapSqlError, sqlStateOf, toDatabaseError, withTransaction } from "./DatabaseErrors.ts"

export const BinaryTable = "_nice_binary"
export const BatchJobTable = "nice_batch_job"
export const BatchJobId = "nice2.dms.DeleteUnreferencedBinariesBatchJob"
/** The unique index `finalize` creates (the name the original tool used). */
export const Sha2UniqueIndex = "_nice_binary_sha2_key"
/** The optional partial index of pending rows (`ensurePendingIndex`); `finalize` drops it. */
export const PendingIndex = "_nice_binary_sha2_pending_idx"
const NotNullCheck = "_nice_binary_sha2_not_null"
/** The statement `ensurePendingIndex` runs (and a DBA can run for a role that may not). */
export const PendingIndexStatement =
  `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${PendingIndex} ON _nice_binary (hash) WHERE sha2 IS NULL`
/** The statement `ensureSha2Column` runs (and the table's owner can run for a role that may not). */
export const AddSha2ColumnStatement = "ALTER TABLE _nice_binary ADD COLUMN IF NOT EXISTS sha2 char(64)"

/**
 * The role lacks a right a schema task needs (SQLSTATE 42501, or a privilege check before the run). `statement` is
 * what the table's owner (or a superuser) can run to fix it.
 */
export class SchemaNotPermitted extends Schema.TaggedError<SchemaNotPermitted>()("SchemaNotPermitted", {
  what: Schema.Literals(["AddSha2Column", "UpdateSha2", "SelectTable", "SelectBatchJob", "CreatePendingIndex"]),
  role: Schema.String,
  statement: Schema.String
}) {
  override get message() {
    const needs = {
      AddSha2Column: `${BinaryTable} has no sha2 column and role ${this.role} may not add it (only the table's owner may)`,
      UpdateSha2: `role ${this.role} may not UPDATE ${BinaryTable}.sha2`,
      SelectTable: `role ${this.role} may not SELECT from ${BinaryTable}`,
      SelectBatchJob: `role ${this.role} may not SELECT from ${BatchJobTable} (the batch-job pre-flight reads it)`,
      CreatePendingIndex: `role ${this.role} may not create the index of rows still to migrate on ${BinaryTable} ` +
        `(only the table's owner may)`
    }[this.what]
    return `pre-flight check failed: ${needs}; run as the table's owner or a superuser:\n  ${this.statement};`
  }
}

/** SQLSTATE 42501: insufficient_privilege ("must be owner of table", "permission denied for table"). */
const isNotPermitted = (e: SqlError): boolean => sqlStateOf(e) === "42501"

/** The role's name, and the same as an SQL identifier (quoted when needed) for the statements. */
const currentRole = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly role: string; readonly ident: string }>`
    SELECT current_user AS role, quote_ident(current_user) AS ident`
  return rows[0] ?? { role: "current_user", ident: "current_user" }
})

const notPermitted = (what: SchemaNotPermitted["what"], statement: (ident: string) => string) =>
  Effect.flatMap(currentRole, ({ ident, role }) =>
    Effect.fail(new SchemaNotPermitted({ what, role, statement: statement(ident) })))

/** Why the migration must not start. The CLI offers `--skip-batch-job-check` to override. */
export class PreflightFailed extends Schema.TaggedError<PreflightFailed>()("PreflightFailed", {
  reason: Schema.Literals(["TableMissing", "JobMissing", "JobActive"]),
  job: Schema.String
}) {
  override get message() {
    switch (this.reason) {
      case "TableMissing":
        return `pre-flight check failed: table ${BatchJobTable} does not exist, so batch job "${this.job}" cannot be ` +
          `checked (is this the application's database?)`
      case "JobMissing":
        return `pre-flight check failed: batch job "${this.job}" not found in ${BatchJobTable}`
      case "JobActive":
        return `pre-flight check failed: batch job "${this.job}" is active; deactivate it before the migration ` +
          `(it deletes large objects while they are being migrated)`
    }
  }
}

/** `finalize` would make the table unusable for the rows that are still pending, or the data contradicts UNIQUE. */
export class FinalizeRefused extends Schema.TaggedError<FinalizeRefused>()("FinalizeRefused", {
  reason: Schema.Literals(["RowsPending", "ColumnMissing", "DuplicateSha2"]),
  /** Rows of `_nice_binary` whose `sha2` is still NULL when the check ran. */
  remaining: Schema.Number,
  detail: Schema.optional(Schema.String)
}) {
  override get message() {
    switch (this.reason) {
      case "RowsPending":
        return `finalize refused: ${this.remaining} row(s) of ${BinaryTable} still have sha2 NULL; run the migration ` +
          `until none remain (rows that keep failing must be repaired or removed first)`
      case "ColumnMissing":
        return `finalize refused: ${BinaryTable} has no sha2 column; run the migration first`
      case "DuplicateSha2":
        return `finalize refused: two rows of ${BinaryTable} have the same sha2, a UNIQUE index is impossible` +
          (this.detail === undefined ? "" : ` (${this.detail})`)
    }
  }
}

/** Waits for a DDL lock: the core policy, at most 8 retries (each attempt already waits `lock_timeout`). */
const lockRetry = retrySchedule({ ...defaultRetry, times: 8 })

/**
 * Runs DDL in its own transaction with `lock_timeout`, retried while the lock cannot be had (SQLSTATE 55P03).
 */
const ddl = <A, R>(statement: Effect.Effect<A, SqlError, R>, lockTimeout = "5s") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* withTransaction(
      sql,
      sql.unsafe(`SET LOCAL lock_timeout = '${lockTimeout}'`).pipe(Effect.andThen(statement))
    ).pipe(
      // only "lock not available" (SQLSTATE 55P03) is retried here
      Effect.mapError((error) => ({ error, retryable: sqlStateOf(error) === "55P03" })),
      Effect.retry(lockRetry),
      Effect.mapError(({ error }) => error)
    )
  })

interface ColumnInfo {
  readonly type: string
  readonly notNull: boolean
}

const tableExists = (name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly present: boolean }>`SELECT to_regclass(${name}) IS NOT NULL AS present`
    return rows[0]?.present === true
  })

const sha2Column = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<ColumnInfo>`
    SELECT format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull"
    FROM pg_attribute a
    WHERE a.attrelid = to_regclass(${BinaryTable}) AND a.attname = 'sha2' AND NOT a.attisdropped`
  return rows[0]
})

const missingTable = (operation: string) =>
  new DatabaseError({
    operation,
    detail: `table ${BinaryTable} does not exist (is this the application's database?)`,
    retryable: false
  })

const acceptedSha2Types: ReadonlySet<string> = new Set(["character(64)", "text", "character varying"])

/** The rights a run needs on an existing sha2 column: SELECT on the table, UPDATE of sha2. */
const checkRunPrivileges = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [r] = yield* sql<{ readonly select: boolean; readonly update: boolean }>`
    SELECT has_table_privilege(to_regclass(${BinaryTable}), 'SELECT') AS select,
           has_column_privilege(to_regclass(${BinaryTable}), 'sha2', 'UPDATE') AS update`
  if (r?.select !== true) return yield* notPermitted("SelectTable", (role) => `GRANT SELECT ON ${BinaryTable} TO ${role}`)
  if (r.update !== true) return yield* notPermitted("UpdateSha2", (role) => `GRANT UPDATE (sha2) ON ${BinaryTable} TO ${role}`)
})

/**
 * What a run will need, checked without writing anything (for the dry run): SELECT on `_nice_binary`, and either the
 * right to add the missing `sha2` column (ownership) or UPDATE of the existing one. Fails with `SchemaNotPermitted`
 * naming the statement to run.
 */
export const checkPrivileges: Effect.Effect<void, DatabaseError | SchemaNotPermitted, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  if (!(yield* tableExists(BinaryTable))) return yield* missingTable("checkPrivileges")
  if ((yield* sha2Column) !== undefined) return yield* checkRunPrivileges
  const [r] = yield* sql<{ readonly select: boolean; readonly owner: boolean }>`
    SELECT has_table_privilege(c.oid, 'SELECT') AS select, pg_has_role(c.relowner, 'USAGE') AS owner
    FROM pg_class c WHERE c.oid = to_regclass(${BinaryTable})`
  if (r?.select !== true) return yield* notPermitted("SelectTable", (role) => `GRANT SELECT ON ${BinaryTable} TO ${role}`)
  if (!r.owner) return yield* notPermitted("AddSha2Column", () => AddSha2ColumnStatement)
}).pipe(mapSqlError("checkPrivileges"), Effect.withSpan("Schema.checkPrivileges"))

/**
 * Adds `sha2 char(64)` to `_nice_binary` when it is missing. Succeeds with `true` if this call added it, `false` if it
 * was already there. Fails if the table is missing or `sha2` exists with a type that cannot hold 64 hex characters,
 * and with `SchemaNotPermitted` when the role may not add the column, or may not read the table or update `sha2`.
 */
export const ensureSha2Column: Effect.Effect<boolean, DatabaseError | SchemaNotPermitted, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  if (!(yield* tableExists(BinaryTable))) return yield* missingTable("ensureSha2Column")
  const existing = yield* sha2Column
  if (existing !== undefined) {
    if (!acceptedSha2Types.has(existing.type) && !/^character varying\((6[4-9]|[7-9]\d|\d{3,})\)$/.test(existing.type)) {
      return yield* new DatabaseError({
        operation: "ensureSha2Column",
        detail: `${BinaryTable}.sha2 exists with type ${existing.type}; expected character(64)`,
        retryable: false
      })
    }
    yield* checkRunPrivileges
    return false
  }
  // Nullable without default: a catalog-only change, no table rewrite; only the brief ACCESS EXCLUSIVE lock.
  yield* ddl(sql.unsafe(AddSha2ColumnStatement)).pipe(
    Effect.catchIf(isNotPermitted, () => notPermitted("AddSha2Column", () => AddSha2ColumnStatement))
  )
  yield* checkRunPrivileges
  return true
}).pipe(mapSqlError("ensureSha2Column"), Effect.withSpan("Schema.ensureSha2Column"))

interface IndexState {
  readonly valid: boolean
}

const indexState = (name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<IndexState>`
      SELECT i.indisvalid AS valid FROM pg_index i WHERE i.indexrelid = to_regclass(${name})`
    return rows[0]
  })

/**
 * Builds `name` CONCURRENTLY (no write lock on the table) unless a valid index of that name exists; a leftover
 * INVALID index from an interrupted build is dropped first.
 */
const ensureIndexConcurrently = (name: string, create: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const state = yield* indexState(name)
    if (state?.valid === true) return false
    if (state !== undefined) yield* sql.unsafe(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`)
    yield* sql.unsafe(create)
    return true
  })

/**
 * A partial index of the pending rows, `(hash) WHERE sha2 IS NULL`, built CONCURRENTLY IF NOT EXISTS. It lets a
 * resumed run find its first pending row without walking the already migrated prefix of the hash index. The price:
 * an UPDATE of `sha2` then touches an index, so it cannot be HOT. See the measurements in the package README /
 * bench. Succeeds with `true` if it was built now. A role that may not build it (not the table's owner) gets
 * `SchemaNotPermitted` ("CreatePendingIndex"): the run can go on without the index.
 */
export const ensurePendingIndex: Effect.Effect<boolean, DatabaseError | SchemaNotPermitted, SqlClient.SqlClient> = Effect.gen(function*() {
  if (!(yield* tableExists(BinaryTable))) return yield* missingTable("ensurePendingIndex")
  return yield* ensureIndexConcurrently(PendingIndex, PendingIndexStatement).pipe(
    Effect.catchIf(isNotPermitted, () => notPermitted("CreatePendingIndex", () => PendingIndexStatement))
  )
}).pipe(mapSqlError("ensurePendingIndex"), Effect.withSpan("Schema.ensurePendingIndex"))

const countPending = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM _nice_binary WHERE sha2 IS NULL`
  return Number(rows[0]?.n ?? 0n)
})

/**
 * Makes `sha2` NOT NULL and UNIQUE (index `_nice_binary_sha2_key`), and drops the pending-rows index. Refused with
 * `FinalizeRefused` while any row still has `sha2` NULL (the count is in the error). Idempotent.
 *
 * Done without long exclusive locks: a NOT VALID check constraint is added and validated (validation does not block
 * writes), after which SET NOT NULL needs no table scan; the unique index is built CONCURRENTLY.
 */
export const finalize: Effect.Effect<void, DatabaseError | FinalizeRefused, SqlClient.SqlClient> = Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient
    if (!(yield* tableExists(BinaryTable))) return yield* missingTable("finalize")
    const column = yield* sha2Column
    if (column === undefined) {
      return yield* new FinalizeRefused({ reason: "ColumnMissing", remaining: yield* countAll })
    }
    if (!column.notNull) {
      const remaining = yield* countPending
      if (remaining > 0) return yield* new FinalizeRefused({ reason: "RowsPending", remaining })
      const checks = yield* sql<{ readonly n: bigint }>`
        SELECT count(*) AS n FROM pg_constraint
        WHERE conrelid = to_regclass(${BinaryTable}) AND conname = ${NotNullCheck}`
      if (Number(checks[0]?.n ?? 0n) === 0) {
        yield* ddl(sql.unsafe(
          `ALTER TABLE _nice_binary ADD CONSTRAINT ${NotNullCheck} CHECK (sha2 IS NOT NULL) NOT VALID`
        ))
      }
      // Scans the table under SHARE UPDATE EXCLUSIVE: the application keeps reading and writing meanwhile.
      yield* sql.unsafe(`ALTER TABLE _nice_binary VALIDATE CONSTRAINT ${NotNullCheck}`).pipe(
        Effect.catchIf(
          (e) => sqlStateOf(e) === "23514",
          () =>
            Effect.flatMap(countPending, (remaining) =>
              Effect.andThen(
                // leave the table as it was: the application may still insert rows without sha2
                ddl(sql.unsafe(`ALTER TABLE _nice_binary DROP CONSTRAINT IF EXISTS ${NotNullCheck}`)),
                Effect.fail(new FinalizeRefused({ reason: "RowsPending", remaining: Math.max(remaining, 1) }))
              ))
        )
      )
      // With a valid CHECK (sha2 IS NOT NULL) in place, SET NOT NULL skips the full-table scan.
      yield* ddl(sql`ALTER TABLE _nice_binary ALTER COLUMN sha2 SET NOT NULL`)
      yield* ddl(sql.unsafe(`ALTER TABLE _nice_binary DROP CONSTRAINT IF EXISTS ${NotNullCheck}`))
    }
    yield* ensureIndexConcurrently(
      Sha2UniqueIndex,
      `CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ${Sha2UniqueIndex} ON _nice_binary (sha2)`
    ).pipe(
      Effect.catchIf(
        (e) => sqlStateOf(e) === "23505",
        (e) =>
          Effect.andThen(
            sql.unsafe(`DROP INDEX CONCURRENTLY IF EXISTS ${Sha2UniqueIndex}`),
            Effect.fail(
              new FinalizeRefused({
                reason: "DuplicateSha2",
                remaining: 0,
                detail: toDatabaseError("finalize", e).detail
              })
            )
          )
      )
    )
    yield* sql.unsafe(`DROP INDEX CONCURRENTLY IF EXISTS ${PendingIndex}`)
  }
).pipe(
  mapSqlError("finalize"),
  Effect.withSpan("Schema.finalize")
)

const countAll = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM _nice_binary`
  return Number(rows[0]?.n ?? 0n)
})

/**
 * Refuses to start while the application's `nice2.dms.DeleteUnreferencedBinariesBatchJob` is active in
 * `nice_batch_job` (column `active`), and when the table or the job's row is missing.
 */
export const checkBatchJob: Effect.Effect<void, DatabaseError | PreflightFailed | SchemaNotPermitted, SqlClient.SqlClient> = Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient
    if (!(yield* tableExists(BatchJobTable))) {
      return yield* new PreflightFailed({ reason: "TableMissing", job: BatchJobId })
    }
    const rows = yield* sql<{ readonly active: boolean }>`SELECT active FROM nice_batch_job WHERE id = ${BatchJobId}`.pipe(
      Effect.catchIf(isNotPermitted, () => notPermitted("SelectBatchJob", (role) => `GRANT SELECT ON ${BatchJobTable} TO ${role}`))
    )
    if (rows.length === 0) return yield* new PreflightFailed({ reason: "JobMissing", job: BatchJobId })
    if (rows.some((r) => r.active)) return yield* new PreflightFailed({ reason: "JobActive", job: BatchJobId })
  }
).pipe(
  mapSqlError("checkBatchJob"),
  Effect.withSpan("Schema.checkBatchJob")
)

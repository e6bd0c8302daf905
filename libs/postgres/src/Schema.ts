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
 * Several processes may start at once (shards): the column, the index builds and `finalize` run under one advisory
 * lock across processes (`SchemaLock.ts`); the optional pending index is skipped by whoever finds the lock taken.
 *
 * Every DDL statement that needs an ACCESS EXCLUSIVE lock runs with a short `lock_timeout` and is retried a few
 * times: waiting in the lock queue behind a long application query would otherwise block all later application
 * queries on the table for as long as we wait.
 */
import { DatabaseError, defaultRetry, retrySchedule } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import {
  AddSha2ColumnStatement,
  BatchJobId,
  BatchJobTable,
  BinaryTable,
  countAll,
  countPending,
  dropIndexStatement,
  indexCondition,
  indexState,
  missingTable,
  NotNullCheck,
  PendingIndex,
  PendingIndexStatement,
  sha2Column,
  Sha2UniqueIndex,
  tableExists
} from "./Catalog.ts"
import { mapSqlError, sqlStateOf, toDatabaseError, withTransaction } from "./DatabaseErrors.ts"
import { readSessionKind } from "./SessionKind.ts"
import { withSchemaLock } from "./SchemaLock.ts"
import {
  FinalizeRefused,
  IndexBuildCancelled,
  NoLargeObjects,
  notPermitted,
  PreflightFailed,
  ReadOnlySession,
  RowSecurityActive,
  type RowSecurityUse,
  SchemaNotPermitted,
  type UploadRefused,
  UpdatesNotReplicable
} from "./SchemaErrors.ts"

/** SQLSTATE 42501: insufficient_privilege ("must be owner of table", "permission denied for table"). */
const isNotPermitted = (e: unknown): boolean => isSqlError(e) && sqlStateOf(e) === "42501"

/** The server cancelled the statement (57014: a `statement_timeout`, or `pg_cancel_backend`). */
const isCancelled = (e: unknown): boolean => isSqlError(e) && sqlStateOf(e) === "57014"

/** Waits for a DDL lock: the core policy, at most 8 retries (each attempt already waits `lock_timeout`). */
const lockRetry = retrySchedule({ ...defaultRetry, times: 8 })

/**
 * Runs DDL in its own transaction with `lock_timeout`, retried while the lock cannot be had (SQLSTATE 55P03).
 */
const ddl = Effect.fnUntraced(function*<A, R>(statement: Effect.Effect<A, SqlError, R>, lockTimeout = "5s") {
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

const acceptedSha2Types: ReadonlySet<string> = new Set(["character(64)", "text", "character varying"])

/** The session can write: not a standby, `transaction_read_only` off (`ReadOnlySession` otherwise). */
const checkWritable = Effect.gen(function*() {
  const kind = yield* readSessionKind
  if (kind.standby || kind.readOnly) return yield* new ReadOnlySession({ standby: kind.standby, role: kind.role })
})

/**
 * PostgreSQL would accept an UPDATE of `_nice_binary`: not refused for want of a replica identity while a publication
 * publishes its UPDATEs (`UpdatesNotReplicable`). Read from the catalog, so that nothing is written (a probe UPDATE
 * would fire the table's statement triggers).
 */
const checkReplicable = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [r] = yield* sql<{ readonly publications: string | null; readonly identity: string; readonly hasIndex: boolean }>`
    SELECT string_agg(DISTINCT quote_ident(p.pubname), ', ') AS publications,
           c.relreplident::text AS identity,
           EXISTS (SELECT 1 FROM pg_index i
                   WHERE i.indrelid = c.oid AND i.indisvalid
                     AND CASE c.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident ELSE false END
           ) AS "hasIndex"
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_publication_tables t ON t.schemaname = n.nspname AND t.tablename = c.relname
    LEFT JOIN pg_publication p ON p.pubname = t.pubname AND p.pubupdate
    WHERE c.oid = to_regclass(${BinaryTable})
    GROUP BY c.oid, c.relreplident`
  if (r !== undefined && r.publications !== null && r.identity !== "f" && !r.hasIndex) {
    return yield* new UpdatesNotReplicable({ publications: r.publications, identity: r.identity })
  }
})

/**
 * The role sees every row of `_nice_binary` and, for `"migrate"`, may update every one (`RowSecurityActive`
 * otherwise): no row-level security applies to it, or a permissive policy that applies to it passes every row for
 * reading (`USING (true)`, ALL or SELECT), for `"migrate"` also one for updating (ALL or UPDATE, `USING (true)`, no
 * other check), and no restrictive policy applies to it (for `"read"`: none for ALL or SELECT). Any other policy may
 * hide rows, which the policies' text cannot rule out.
 */
const checkRowSecurityFor = (use: RowSecurityUse) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const applies = sql`(${"public"} = ANY (p.roles)
      OR EXISTS (SELECT 1 FROM unnest(p.roles) AS r(name) WHERE pg_has_role(current_user, r.name, 'MEMBER')))`
    const policy = sql`SELECT 1 FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname`
    const updates = use !== "read"
      ? sql`AND EXISTS (${policy} AND p.permissive = 'PERMISSIVE' AND p.cmd IN ('ALL', 'UPDATE') AND p.qual = 'true'
                        AND coalesce(p.with_check, 'true') = 'true' AND ${applies})`
      : sql``
    const restrictive = use !== "read" ? sql`TRUE` : sql`p.cmd IN ('ALL', 'SELECT')`
    const [r] = yield* sql<{ readonly active: boolean; readonly allRows: boolean; readonly role: string }>`
      SELECT row_security_active(c.oid) AS active,
             EXISTS (${policy} AND p.permissive = 'PERMISSIVE' AND p.cmd IN ('ALL', 'SELECT') AND p.qual = 'true'
                     AND ${applies})
         ${updates}
         AND NOT EXISTS (${policy} AND p.permissive = 'RESTRICTIVE' AND ${restrictive} AND ${applies}) AS "allRows",
             quote_ident(current_user) AS role
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass(${BinaryTable})`
    if (r?.active === true && !r.allRows) return yield* new RowSecurityActive({ role: r.role, use })
  })

const checkRowSecurity = checkRowSecurityFor("migrate")

/**
 * For the commands that only read (`status`, `verify`): the role sees every row of `_nice_binary`, else
 * `RowSecurityActive` with the policy that lets it, so that they never count or prove only the rows a policy lets
 * the role see. Nothing is checked when the table does not exist (the command's own query says so).
 */
export const checkSeesEveryRow: Effect.Effect<void, RowSecurityActive | SqlError, SqlClient.SqlClient> = checkRowSecurityFor(
  "read"
).pipe(Effect.withSpan("Schema.checkSeesEveryRow"))

/**
 * The database holds large objects, or no row still to migrate points at one (`NoLargeObjects` otherwise). The first
 * read is one row of `pg_largeobject_metadata` (readable by every role); only when it finds none are the rows looked
 * at (`pending`: the rows still to migrate, or all when `sha2` does not exist yet).
 */
const checkLargeObjectsPresent = (pending: boolean) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [any] = yield* sql<{ readonly present: boolean }>`
      SELECT EXISTS (SELECT 1 FROM pg_largeobject_metadata) AS present`
    if (any?.present !== false) return
    const [rows] = yield* sql<{ readonly pointing: boolean }>`
      SELECT EXISTS (SELECT 1 FROM _nice_binary WHERE data IS NOT NULL AND ${pending ? sql`sha2 IS NULL` : sql`TRUE`})
        AS pointing`
    if (rows?.pointing === true) return yield* new NoLargeObjects()
  })

/**
 * What a run and its dry run check before anything is written, in this order: the table exists, the session can write,
 * PostgreSQL would accept an UPDATE of it, the role sees every row, and the database holds the large objects the rows
 * still to migrate point at. Succeeds with the `sha2` column, `undefined` when it does not exist yet.
 */
const preflight = Effect.fnUntraced(function*(operation: string) {
  if (!(yield* tableExists(BinaryTable))) return yield* missingTable(operation)
  yield* checkWritable
  yield* checkReplicable
  yield* checkRowSecurity
  const column = yield* sha2Column
  yield* checkLargeObjectsPresent(column !== undefined)
  return column
})

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
 * What `verify --repair` needs beyond reading, checked before anything is verified (so that a long `--deep` check does
 * not end in a refused repair): a run's privileges, SELECT and UPDATE of `sha2` (`SchemaNotPermitted` naming the
 * GRANT), a session that can write
 * (`ReadOnlySession`), a replica identity where a publication publishes the table's UPDATEs (`UpdatesNotReplicable`),
 * and every row updatable under row-level security (`RowSecurityActive`). Nothing is written.
 */
export const checkRepairable: Effect.Effect<
  void,
  DatabaseError | SchemaNotPermitted | ReadOnlySession | UpdatesNotReplicable | RowSecurityActive,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  yield* checkRunPrivileges
  yield* checkWritable
  yield* checkReplicable
  yield* checkRowSecurityFor("repair")
}).pipe(mapSqlError("checkRepairable"), Effect.withSpan("Schema.checkRepairable"))

/**
 * What a run will need, checked without writing anything (for the dry run): SELECT on `_nice_binary`, and either the
 * right to add the missing `sha2` column (ownership) or UPDATE of the existing one. Fails with `SchemaNotPermitted`
 * naming the statement to run.
 */
export const checkPrivileges: Effect.Effect<
  void,
  DatabaseError | SchemaNotPermitted | UploadRefused,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  if ((yield* preflight("checkPrivileges")) !== undefined) return yield* checkRunPrivileges
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
export const ensureSha2Column: Effect.Effect<
  boolean,
  DatabaseError | SchemaNotPermitted | UploadRefused,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const existing = yield* preflight("ensureSha2Column")
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
  // Nullable without default: a catalog-only change, no table rewrite; only the brief ACCESS EXCLUSIVE lock. Under the
  // schema lock, so that of N processes starting at once exactly one adds it.
  const added = yield* withSchemaLock(
    "ensureSha2Column",
    Effect.gen(function*() {
      // the client of the locked connection: a statement belongs to the client that made it
      const locked = yield* SqlClient.SqlClient
      if ((yield* sha2Column) !== undefined) return false
      yield* ddl(locked.unsafe(AddSha2ColumnStatement))
      return true
    }),
    { wait: true }
  ).pipe(
    Effect.catchIf(isNotPermitted, () => notPermitted("AddSha2Column", () => AddSha2ColumnStatement))
  )
  yield* checkRunPrivileges
  return added
}).pipe(mapSqlError("ensureSha2Column"), Effect.withSpan("Schema.ensureSha2Column"))

/**
 * Builds `name` CONCURRENTLY (no write lock on the table) unless a valid index of that name exists. Runs under the
 * schema lock (`SchemaLock.ts`), so no other lo-migrate process builds or drops it meanwhile. An INVALID index is the
 * leftover of an interrupted build and is dropped first, unless a session is building it right now (a DBA running the
 * statement by hand): then `"busy"`, and it is left alone.
 */
const buildIndexConcurrently = Effect.fnUntraced(function*(name: string, create: string) {
  const sql = yield* SqlClient.SqlClient
  const condition = yield* indexCondition(name)
  if (condition === "valid") return "exists" as const
  if (condition === "building") return "busy" as const
  if (condition === "invalid") yield* sql.unsafe(dropIndexStatement(name))
  yield* sql.unsafe(create)
  return "built" as const
})

/** Drops what a cancelled build of `index` leaves (INVALID), if the server lets us: whether it did. */
const dropLeftover = (index: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(dropIndexStatement(index))).pipe(
    Effect.as(true),
    Effect.catch(() => Effect.succeed(false))
  )

/**
 * A build of `index` the server cancelled (57014): its INVALID leftover dropped at once if the server lets us (else the
 * next run drops it), and `IndexBuildCancelled` saying what happened.
 */
const cancelledBuild = Effect.fnUntraced(function*(index: string, statement: string, cause: SqlError) {
  const sql = yield* SqlClient.SqlClient
  const [setting] = yield* sql<{ readonly t: string }>`SELECT current_setting('statement_timeout') AS t`
  const dropped = yield* dropLeftover(index)
  return yield* new IndexBuildCancelled({
    index,
    detail: toDatabaseError("build index", cause).detail,
    statementTimeout: setting?.t ?? "unknown",
    statement,
    leftInvalid: !dropped
  })
})

/**
 * A partial index of the pending rows, `(hash) WHERE sha2 IS NULL`, built CONCURRENTLY IF NOT EXISTS. It lets a
 * resumed run find its first pending row without walking the already migrated prefix of the hash index. The price:
 * an UPDATE of `sha2` then touches an index, so it cannot be HOT. See the measurements in the package README /
 * bench. Succeeds with `true` if it was built now. A role that may not build it (not the table's owner) gets
 * `SchemaNotPermitted` ("CreatePendingIndex"), a build the server cancels (its `statement_timeout`, which a
 * `CREATE INDEX CONCURRENTLY` cannot lift with `SET LOCAL`) `IndexBuildCancelled`: the run can go on without the index.
 */
export const ensurePendingIndex: Effect.Effect<
  boolean,
  DatabaseError | SchemaNotPermitted | IndexBuildCancelled,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  if (!(yield* tableExists(BinaryTable))) return yield* missingTable("ensurePendingIndex")
  if ((yield* indexState(PendingIndex))?.valid === true) return false
  // optional: while another process holds the schema lock (it is building this index), go on without waiting
  return yield* withSchemaLock(
    "ensurePendingIndex",
    Effect.map(buildIndexConcurrently(PendingIndex, PendingIndexStatement), (outcome) => outcome === "built").pipe(
      Effect.catchIf(isCancelled, (e) => cancelledBuild(PendingIndex, PendingIndexStatement, e))
    ),
    { skipped: false }
  ).pipe(
    Effect.catchIf(isNotPermitted, () => notPermitted("CreatePendingIndex", () => PendingIndexStatement))
  )
}).pipe(mapSqlError("ensurePendingIndex"), Effect.withSpan("Schema.ensurePendingIndex"))

/** Why `finalize`'s count can find no pending row where the constraint's validation, which reads every row, found one. */
const countMissedRows = "the constraint's validation found a row with sha2 NULL that this role's count does not " +
  "see: one inserted since the count, or one that row-level security hides from the role (a policy FORCEd on the " +
  "table's owner; validation reads every row whatever the policies)"

/**
 * Makes `sha2` NOT NULL and UNIQUE (index `_nice_binary_sha2_key`), and drops the pending-rows index. Refused with
 * `FinalizeRefused` while any row still has `sha2` NULL (the count is in the error). Idempotent.
 *
 * Done without long exclusive locks: a NOT VALID check constraint is added and validated (validation does not block
 * writes), after which SET NOT NULL needs no table scan; the unique index is built CONCURRENTLY.
 */
const finalizeLocked = Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient
    if (!(yield* tableExists(BinaryTable))) return yield* missingTable("finalize")
    const column = yield* sha2Column
    if (column === undefined) {
      return yield* new FinalizeRefused({ reason: "ColumnMissing", remaining: (yield* countAll).total })
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
                Effect.fail(
                  new FinalizeRefused({
                    reason: "RowsPending",
                    remaining: Math.max(remaining, 1),
                    // the validation saw a row the count did not
                    ...(remaining === 0 ? { detail: countMissedRows } : {})
                  })
                )
              ))
        )
      )
      // With a valid CHECK (sha2 IS NOT NULL) in place, SET NOT NULL skips the full-table scan.
      yield* ddl(sql`ALTER TABLE _nice_binary ALTER COLUMN sha2 SET NOT NULL`)
      yield* ddl(sql.unsafe(`ALTER TABLE _nice_binary DROP CONSTRAINT IF EXISTS ${NotNullCheck}`))
    }
    const unique = yield* buildIndexConcurrently(
      Sha2UniqueIndex,
      `CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ${Sha2UniqueIndex} ON _nice_binary (sha2)`
    ).pipe(
      Effect.catchIf(
        (e) => sqlStateOf(e) === "23505",
        (e) =>
          Effect.andThen(
            sql.unsafe(dropIndexStatement(Sha2UniqueIndex)),
            Effect.fail(
              new FinalizeRefused({
                reason: "DuplicateSha2",
                remaining: 0,
                detail: toDatabaseError("finalize", e).detail
              })
            )
          )
      ),
      // cancelled (`finalizeCancelled`): its INVALID leftover dropped now if the server lets us (else the next
      // finalize drops it), so that no unique index half built is maintained meanwhile
      Effect.catchIf(isCancelled, (e) => Effect.andThen(dropLeftover(Sha2UniqueIndex), Effect.fail(e)))
    )
    if (unique === "busy") {
      return yield* new DatabaseError({
        operation: "finalize",
        detail: `index ${Sha2UniqueIndex} is INVALID and another session is building it now (pg_stat_progress_create_index); ` +
          "run finalize again when that build has ended",
        retryable: true
      })
    }
    yield* sql.unsafe(dropIndexStatement(PendingIndex))
  }
)

/**
 * A statement of finalize the server cancelled (57014). lo-migrate's sessions ask for no `statement_timeout`, so it
 * comes from the URL's `options`, a default that a pooler let through, or an operator's `pg_cancel_backend`. Elsewhere
 * 57014 is retried (a short statement that waited for a lock passes later); here the statements are the validation of
 * every row and the index build, which such a timeout cancels again each time, and an operator's cancel means stop:
 * not retryable.
 */
const finalizeCancelled = (cause: unknown) =>
  new DatabaseError({
    operation: "finalize",
    detail: `the server cancelled a statement of finalize (${toDatabaseError("finalize", cause).detail}): the ` +
      "validation of every row and the index build must run to their end, and lo-migrate's sessions ask for no " +
      "statement_timeout, so this session had one anyway (the URL's options, or a database or role default that a " +
      "pooler let through) or an operator cancelled it (pg_cancel_backend). Not retried: run finalize on a direct " +
      "connection without a statement_timeout",
    retryable: false,
    cause
  })

/**
 * Makes `sha2` NOT NULL and UNIQUE (see `finalizeLocked`), holding the schema lock (waiting for it, per the retry
 * policy, while another process changes the schema).
 */
export const finalize: Effect.Effect<void, DatabaseError | FinalizeRefused, SqlClient.SqlClient> = withSchemaLock(
  "finalize",
  finalizeLocked,
  { wait: true }
).pipe(
  Effect.mapError((e) => isCancelled(e) ? finalizeCancelled(e) : e),
  mapSqlError("finalize"),
  Effect.withSpan("Schema.finalize")
)

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

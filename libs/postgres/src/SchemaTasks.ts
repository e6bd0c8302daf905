/**
 * The schema work around a run (pre-flight, sha2 column, pending index, finalize, dry-run counts) as one service over
 * the pool, so that a command's flow can be exercised with in-memory fakes as well as against PostgreSQL.
 */
import type { DatabaseError, RowCounts } from "@lo-migrate/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import { BinaryTable, countAll, indexState, PendingIndex, sha2Column, tableExists } from "./Catalog.ts"
import { mapSqlError } from "./DatabaseErrors.ts"
import { checkBatchJob, checkPrivileges, ensurePendingIndex, ensureSha2Column, finalize } from "./Schema.ts"
import type {
  FinalizeRefused,
  IndexBuildCancelled,
  PreflightFailed,
  SchemaNotPermitted,
  UploadRefused
} from "./SchemaErrors.ts"

export class SchemaTasks extends Context.Service<SchemaTasks, {
  /** Refuses while the application's binary clean-up batch job is active. */
  readonly checkBatchJob: Effect.Effect<void, DatabaseError | PreflightFailed | SchemaNotPermitted>
  /** Whether `_nice_binary` exists (read-only; for the dry run). */
  readonly tableExists: Effect.Effect<boolean, DatabaseError>
  /** Whether `_nice_binary.sha2` exists (read-only; for the dry run). */
  readonly sha2ColumnExists: Effect.Effect<boolean, DatabaseError>
  /** Whether the index of pending rows exists and is valid (read-only). */
  readonly pendingIndexValid: Effect.Effect<boolean, DatabaseError>
  /**
   * Adds `_nice_binary.sha2` if missing; `true` if it was added now. `SchemaNotPermitted` when the role may not add
   * it, or may not SELECT the table or UPDATE `sha2`.
   */
  readonly ensureSha2Column: Effect.Effect<
    boolean,
    DatabaseError | SchemaNotPermitted | UploadRefused
  >
  /**
   * Builds the partial index of pending rows (`(hash) WHERE sha2 IS NULL`, CONCURRENTLY) unless it exists; `true` if
   * built now. A resumed run then finds its first pending row at once instead of walking the migrated prefix of the
   * hash index (measured on 1M rows, 90% migrated: first page 1.6 s -> 4 ms). `finalize` drops it.
   * `SchemaNotPermitted` when the role may not build it (not the table's owner), `IndexBuildCancelled` when the server
   * cancelled the build (its `statement_timeout`).
   */
  readonly ensurePendingIndex: Effect.Effect<boolean, DatabaseError | SchemaNotPermitted | IndexBuildCancelled>
  /** The rights a run will need (adding or updating `sha2`, reading the table), checked without writing (dry run). */
  readonly checkPrivileges: Effect.Effect<
    void,
    DatabaseError | SchemaNotPermitted | UploadRefused
  >
  /** Row counts when `sha2` does not exist yet (every row is left). Read-only. */
  readonly countAll: Effect.Effect<RowCounts, DatabaseError>
  /** NOT NULL + UNIQUE on `sha2`; refused while rows are left. */
  readonly finalize: Effect.Effect<void, DatabaseError | FinalizeRefused>
}>()("lo-migrate/SchemaTasks") {
  static readonly layer: Layer.Layer<SchemaTasks, never, SqlClient.SqlClient> = Layer.effect(
    SchemaTasks,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      /**
       * Runs a task on this pool; a query failure becomes a `DatabaseError` naming the task. The schema steps have
       * their span already (`Schema.*`); the catalog reads get one here (`traced`).
       */
      const onPool = (operation: string) => <A, E>(self: Effect.Effect<A, E, SqlClient.SqlClient>) =>
        self.pipe(mapSqlError(operation), Effect.provideService(SqlClient.SqlClient, sql))
      const traced = (operation: string) => <A, E>(self: Effect.Effect<A, E, SqlClient.SqlClient>) =>
        self.pipe(onPool(operation), Effect.withSpan(`SchemaTasks.${operation}`))
      return SchemaTasks.of({
        checkBatchJob: checkBatchJob.pipe(onPool("checkBatchJob")),
        ensureSha2Column: ensureSha2Column.pipe(onPool("ensureSha2Column")),
        ensurePendingIndex: ensurePendingIndex.pipe(onPool("ensurePendingIndex")),
        checkPrivileges: checkPrivileges.pipe(onPool("checkPrivileges")),
        finalize: finalize.pipe(onPool("finalize")),
        tableExists: tableExists(BinaryTable).pipe(traced("tableExists")),
        sha2ColumnExists: sha2Column.pipe(Effect.map((c) => c !== undefined), traced("sha2ColumnExists")),
        pendingIndexValid: indexState(PendingIndex).pipe(Effect.map((s) => s?.valid === true), traced("pendingIndexValid")),
        countAll: countAll.pipe(traced("countAll"))
      })
    })
  )
}

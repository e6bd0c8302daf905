/**
 * The schema work around a run (pre-flight, sha2 column, finalize, dry-run counts) as one service, so that the
 * command's flow can be exercised with in-memory fakes as well as against PostgreSQL.
 */
import { DatabaseError, type RowCounts } from "@lo-migrate/core"
import {
  checkBatchJob,
  checkPrivileges,
  ensurePendingIndex,
  ensureSha2Column,
  finalize,
  type FinalizeRefused,
  type PreflightFailed,
  type SchemaNotPermitted
} from "@lo-migrate/postgres"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"

export class SchemaTasks extends Context.Service<SchemaTasks, {
  /** Refuses while the application's binary clean-up batch job is active. */
  readonly checkBatchJob: Effect.Effect<void, DatabaseError | PreflightFailed | SchemaNotPermitted>
  /** Whether `_nice_binary` exists (read-only; for the dry run). */
  readonly tableExists: Effect.Effect<boolean, DatabaseError>
  /** Whether `_nice_binary.sha2` exists (read-only; for the dry run). */
  readonly sha2ColumnExists: Effect.Effect<boolean, DatabaseError>
  /**
   * Adds `_nice_binary.sha2` if missing; `true` if it was added now. `SchemaNotPermitted` when the role may not add
   * it, or may not SELECT the table or UPDATE `sha2`.
   */
  readonly ensureSha2Column: Effect.Effect<boolean, DatabaseError | SchemaNotPermitted>
  /**
   * Builds the partial index of pending rows (`(hash) WHERE sha2 IS NULL`, CONCURRENTLY) unless it exists; `true` if
   * built now. A resumed run then finds its first pending row at once instead of walking the migrated prefix of the
   * hash index (measured on 1M rows, 90% migrated: first page 1.6 s -> 4 ms). `finalize` drops it.
   * `SchemaNotPermitted` when the role may not build it (not the table's owner).
   */
  readonly ensurePendingIndex: Effect.Effect<boolean, DatabaseError | SchemaNotPermitted>
  /** The rights a run will need (adding or updating `sha2`, reading the table), checked without writing (dry run). */
  readonly checkPrivileges: Effect.Effect<void, DatabaseError | SchemaNotPermitted>
  /** Row counts when `sha2` does not exist yet (every row is left). Read-only. */
  readonly countAll: Effect.Effect<RowCounts, DatabaseError>
  /** NOT NULL + UNIQUE on `sha2`; refused while rows are left. */
  readonly finalize: Effect.Effect<void, DatabaseError | FinalizeRefused>
}>()("lo-migrate/SchemaTasks") {
  static readonly layer: Layer.Layer<SchemaTasks, never, SqlClient.SqlClient> = Layer.effect(
    SchemaTasks,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const provide = <A, E>(self: Effect.Effect<A, E, SqlClient.SqlClient>) =>
        Effect.provideService(self, SqlClient.SqlClient, sql)
      const dbError = (operation: string) => (cause: { readonly message: string }) =>
        new DatabaseError({ operation, detail: cause.message, retryable: false, cause })
      return SchemaTasks.of({
        checkBatchJob: provide(checkBatchJob),
        ensureSha2Column: provide(ensureSha2Column),
        ensurePendingIndex: provide(ensurePendingIndex),
        checkPrivileges: provide(checkPrivileges),
        finalize: provide(finalize),
        tableExists: sql<{ readonly present: boolean }>`SELECT to_regclass('_nice_binary') IS NOT NULL AS present`.pipe(
          Effect.map((rows) => rows[0]?.present === true),
          Effect.mapError(dbError("tableExists"))
        ),
        sha2ColumnExists: sql<{ readonly present: boolean }>`
          SELECT EXISTS (
            SELECT 1 FROM pg_attribute
            WHERE attrelid = to_regclass('_nice_binary') AND attname = 'sha2' AND NOT attisdropped
          ) AS present`.pipe(
          Effect.map((rows) => rows[0]?.present === true),
          Effect.mapError(dbError("sha2ColumnExists"))
        ),
        countAll: sql<{ readonly total: bigint | number; readonly bytes: bigint | number | string; readonly largest: bigint | number }>`
          SELECT count(*) AS total, coalesce(sum(size), 0) AS bytes, coalesce(max(size), 0) AS largest
          FROM _nice_binary`.pipe(
          Effect.map((rows) => {
            const r = rows[0]
            const total = Number(r?.total ?? 0)
            return { total, remaining: total, remainingBytes: Number(r?.bytes ?? 0), largest: Number(r?.largest ?? 0) }
          }),
          Effect.mapError(dbError("countAll"))
        )
      })
    })
  )
}

/**
 * What a failed read of one row means: the row's own failure (its large object is missing, or the role may not read
 * it) or the infrastructure's. A missing object is re-checked against the table: a row that still exists (same hash,
 * same oid) is `MissingLargeObject`; a row that is gone was deleted by the application during the run
 * (`RowVanished`, not a failure). A permission failure names the role and the GRANT it needs.
 */
import {
  type CheckedRow,
  DatabaseError,
  LargeObjectNotPermitted,
  LocalFileError,
  MissingLargeObject,
  RowFailed,
  RowVanished,
  type SourceRow
} from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import { isSqlError } from "effect/sql/SqlError"
import * as Catalog from "./Catalog.ts"
import { sqlStateOf, toDatabaseError } from "./DatabaseErrors.ts"
import { oidTexts } from "./Oids.ts"

/** A `RowFailed` for `row` with `reason`. */
export const rowFailed = (row: SourceRow, reason: RowFailed["reason"]) =>
  new RowFailed({ hash: row.hash, oid: row.oid, reason })

/** SQLSTATE 42704 (undefined_object) is how PostgreSQL says "large object N does not exist". */
export const isMissingObject = (e: unknown): boolean => isSqlError(e) && sqlStateOf(e) === "42704"

/** SQLSTATE 42501 (insufficient_privilege): "permission denied for large object N". */
export const isNotPermitted = (e: unknown): boolean => isSqlError(e) && sqlStateOf(e) === "42501"

/** The re-check of missing objects (`missing`) and the classification of a read's failure (`readFailed`). */
export const makeReadFailures = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  /**
   * Rows whose large object is missing, re-checked: one that still exists (same hash, same oid) is a failure
   * (`MissingLargeObject`); one that is gone was deleted by the application during the run (the `lo_manage` trigger
   * unlinks the object with the row) and has vanished (`RowVanished`, not a failure). The hash is matched exactly as
   * stored. Failures in the order of `entries`.
   */
  const missing = (entries: ReadonlyArray<CheckedRow>): Effect.Effect<Array<RowFailed>, DatabaseError> =>
    sql<{ readonly i: number }>`
      SELECT t.i::int4 AS i
      FROM unnest(${entries.map((c) => c.row.hash)}::text[], ${oidTexts(entries.map((c) => c.oid))}::text[]::oid[])
           WITH ORDINALITY AS t(hash, oid, i)
      WHERE EXISTS (SELECT 1 FROM _nice_binary b WHERE b.hash = t.hash::bpchar AND b.data = t.oid)`.pipe(
      Effect.map((rows) => {
        const present = new Set(rows.map((r) => r.i - 1))
        return entries.map((c, i) =>
          rowFailed(
            c.row,
            present.has(i) ? new MissingLargeObject({ oid: c.oid }) : new RowVanished({ at: "read" })
          )
        )
      }),
      Effect.mapError((e) => toDatabaseError("re-check rows whose large object is missing", e))
    )
  const missingOne = (checked: CheckedRow) => Effect.flatMap(missing([checked]), (failures) => Effect.fail(failures[0]!))

  // The role the reader runs as, for the GRANT a permission failure names (looked up once, on the first one).
  const roleOfReader = yield* Effect.cached(
    Catalog.currentRole.pipe(
      Effect.map((r) => r.role),
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError((e) => toDatabaseError("read: look up current_user", e))
    )
  )
  const notPermitted = (checked: CheckedRow) =>
    Effect.flatMap(roleOfReader, (role) =>
      Effect.fail(rowFailed(checked.row, new LargeObjectNotPermitted({ oid: checked.oid, role }))))

  /** A read's SQL failure: the row's own (missing object, no right to read it) or the infrastructure's. */
  const readFailed = (checked: CheckedRow) => (e: unknown): Effect.Effect<never, RowFailed | DatabaseError | LocalFileError> =>
    e instanceof LocalFileError
      ? Effect.fail(e)
      : isMissingObject(e)
      ? missingOne(checked)
      : isNotPermitted(e)
      ? notPermitted(checked)
      : Effect.fail(e instanceof DatabaseError ? e : toDatabaseError("read large object", e))

  return { missing, readFailed }
})

/**
 * Why a schema task refused: the role lacks a right (`SchemaNotPermitted`, with the statement a DBA can run), the
 * pre-flight found the application's clean-up job active (`PreflightFailed`), or `finalize` would break the table
 * (`FinalizeRefused`).
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { BatchJobTable, BinaryTable, currentRole, dropIndexStatement, tableNotFoundHint } from "./Catalog.ts"

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

/**
 * The session cannot write, so no `sha2` could ever be recorded: the server is a standby (`pg_is_in_recovery()`), or
 * `transaction_read_only` is on (`default_transaction_read_only` of the database, the role or the URL's options).
 * Checked before the first upload: otherwise a run uploads objects and fails at its first commit, every time.
 */
export class ReadOnlySession extends Schema.TaggedError<ReadOnlySession>()("ReadOnlySession", {
  standby: Schema.Boolean,
  role: Schema.String
}) {
  override get message() {
    return this.standby
      ? "pre-flight check failed: the server is a standby (pg_is_in_recovery() is true) and cannot record sha2; " +
        "point PG_URL at the primary"
      : `pre-flight check failed: the session is read-only (transaction_read_only is on, from ` +
        `default_transaction_read_only of the database, the role or the URL's options) and cannot record sha2; ` +
        `turn it off for the migrator's role:\n  ALTER ROLE ${this.role} SET default_transaction_read_only = off;`
  }
}

/**
 * What a role must be able to do with every row: `"migrate"` read and update it, `"read"` (status, verify) read it,
 * `"repair"` (verify --repair) read it and set its sha2 back to NULL.
 */
const RowSecurityUse = Schema.Literals(["migrate", "read", "repair"])
export type RowSecurityUse = typeof RowSecurityUse.Type

/**
 * Row-level security is active on `_nice_binary` for the role (`row_security_active`: RLS enabled, the role neither
 * the table's owner nor BYPASSRLS, or FORCE ROW LEVEL SECURITY), and its policies may hide rows from it. A run would
 * end "complete" with the other rows never migrated; `status` would not count them and `verify` would not check them.
 * Refused before anything is written or counted, with the policy that lets the role see (and, to migrate, update)
 * every row.
 */
export class RowSecurityActive extends Schema.TaggedError<RowSecurityActive>()("RowSecurityActive", {
  /** The role, quoted as an SQL identifier when needed. */
  role: Schema.String,
  use: RowSecurityUse
}) {
  get statement(): string {
    return this.use !== "read"
      ? `CREATE POLICY lo_migrate_all_rows ON ${BinaryTable} FOR ALL TO ${this.role} USING (true) WITH CHECK (true)`
      : `CREATE POLICY lo_migrate_read_all_rows ON ${BinaryTable} FOR SELECT TO ${this.role} USING (true)`
  }

  override get message() {
    const active = `row-level security is active on ${BinaryTable} for role ${this.role}`
    const updates = "let the role see and update every row (its privileges stay SELECT and UPDATE (sha2)), or run " +
      `as the table's owner or a role with BYPASSRLS:\n  ${this.statement};`
    return this.use === "migrate"
      ? `pre-flight check failed: ${active}, so the migrator would see only the rows its policies allow and the ` +
        `others would never be migrated; ${updates}`
      : this.use === "repair"
      ? `pre-flight check failed: ${active}, so --repair could set sha2 back to NULL only on the rows its policies ` +
        `allow, and would take the others for rows changed meanwhile; ${updates}`
      : `${active} and its policies may hide rows from it, so only the rows they allow would be counted or checked; ` +
        "let the role see every row (its privileges stay SELECT), or run as the table's owner or a role with " +
        `BYPASSRLS:\n  ${this.statement};`
  }
}

/**
 * `_nice_binary` has rows still to migrate that point at large objects, but the database holds none at all: every
 * row would fail as missing its object. What a copy without them looks like: a logical replica (logical replication
 * does not copy large objects) or a dump restored without them (`pg_dump -B`: `--no-blobs`, `--no-large-objects`).
 * Refused before the first upload, instead of reporting every row.
 */
export class NoLargeObjects extends Schema.TaggedError<NoLargeObjects>()("NoLargeObjects", {}) {
  override get message() {
    return `pre-flight check failed: ${BinaryTable} has rows still to migrate that point at large objects, but this ` +
      "database holds no large object at all (pg_largeobject_metadata is empty), so every row would fail; is it a " +
      "copy without them (a logical replica: logical replication does not copy large objects; or a dump restored " +
      "without them, pg_dump -B)? Point PG_URL at the database that holds the large objects"
  }
}

/**
 * `_nice_binary` is in a publication that publishes UPDATEs, and has no replica identity (REPLICA IDENTITY DEFAULT
 * without a primary key, or NOTHING, or USING INDEX of an index that is gone): PostgreSQL refuses every UPDATE of it
 * (55000), so no sha2 could be recorded. Checked before the first upload: otherwise a run uploads objects and fails at
 * its first commit, every time. The application's own DELETEs fail likewise when the publication publishes them.
 */
export class UpdatesNotReplicable extends Schema.TaggedError<UpdatesNotReplicable>()("UpdatesNotReplicable", {
  /** The publications that publish the table's UPDATEs, quoted, comma-separated. */
  publications: Schema.String,
  /** `pg_class.relreplident`: `d` (default), `n` (nothing), `i` (index). */
  identity: Schema.String
}) {
  override get message() {
    const what = this.identity === "n"
      ? "REPLICA IDENTITY NOTHING"
      : this.identity === "i"
      ? "REPLICA IDENTITY USING INDEX of an index that no longer qualifies"
      : "REPLICA IDENTITY DEFAULT without a primary key"
    return `pre-flight check failed: ${BinaryTable} is in publication(s) ${this.publications}, which publish UPDATEs, ` +
      `and has no replica identity (${what}), so PostgreSQL refuses every UPDATE of it and no sha2 could be ` +
      `recorded; a DBA can give it one (REPLICA IDENTITY FULL logs each updated or deleted row whole for the ` +
      `subscribers; USING INDEX takes a unique index over NOT NULL columns), with whoever consumes the ` +
      `publication:\n  ALTER TABLE ${BinaryTable} REPLICA IDENTITY FULL;`
  }
}

/**
 * The server cancelled the build of the optional index of pending rows (SQLSTATE 57014): a database's or role's
 * default `statement_timeout` that the session could not override (a pooler refused or dropped the startup parameter,
 * and `CREATE INDEX CONCURRENTLY` cannot run in a transaction with `SET LOCAL`), or a DBA's `pg_cancel_backend`. The
 * run goes on without the index. `leftInvalid`: the INVALID index the cancelled build leaves could not be dropped
 * either (the application's writes keep maintaining it until it is).
 */
export class IndexBuildCancelled extends Schema.TaggedError<IndexBuildCancelled>()("IndexBuildCancelled", {
  index: Schema.String,
  /** The server's message. */
  detail: Schema.String,
  /** The session's `statement_timeout` when it was cancelled (`0` for none). */
  statementTimeout: Schema.String,
  statement: Schema.String,
  leftInvalid: Schema.Boolean
}) {
  override get message() {
    return `the server cancelled the build of index ${this.index} (${this.detail}; the session's statement_timeout ` +
      `is ${this.statementTimeout})` +
      (this.leftInvalid
        ? `, and the INVALID index it leaves could not be dropped: the application's writes maintain it until ` +
          `${dropIndexStatement(this.index)}; is run`
        : "")
  }
}

/** Why the migration must not start. The CLI offers `--skip-batch-job-check` to override. */
export class PreflightFailed extends Schema.TaggedError<PreflightFailed>()("PreflightFailed", {
  reason: Schema.Literals(["TableMissing", "JobMissing", "JobActive"]),
  job: Schema.String
}) {
  override get message() {
    switch (this.reason) {
      case "TableMissing":
        return `pre-flight check failed: table ${BatchJobTable} does not exist in the session's search path, so ` +
          `batch job "${this.job}" cannot be checked (${tableNotFoundHint})`
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
  /** Rows of `_nice_binary` whose `sha2` is still NULL when the check ran (with `detail`, for RowsPending: at least). */
  remaining: Schema.Number,
  detail: Schema.optional(Schema.String)
}) {
  override get message() {
    switch (this.reason) {
      case "RowsPending":
        return `finalize refused: ${this.detail === undefined ? "" : "at least "}${this.remaining} row(s) of ` +
          `${BinaryTable} still have sha2 NULL` + (this.detail === undefined ? "" : ` (${this.detail})`) +
          `; run the migration until none remain (rows that keep failing must be repaired or removed first)`
      case "ColumnMissing":
        return `finalize refused: ${BinaryTable} has no sha2 column; run the migration first`
      case "DuplicateSha2":
        return `finalize refused: two rows of ${BinaryTable} have the same sha2, a UNIQUE index is impossible` +
          (this.detail === undefined ? "" : ` (${this.detail})`)
    }
  }
}


/** Fails with `SchemaNotPermitted` for the current role, `statement` built from its quoted name. */
export const notPermitted = (what: SchemaNotPermitted["what"], statement: (ident: string) => string) =>
  Effect.flatMap(currentRole, ({ ident, role }) =>
    Effect.fail(new SchemaNotPermitted({ what, role, statement: statement(ident) })))

/**
 * What the pre-flight of a run and its dry run refuses before anything is uploaded: the server would refuse every
 * UPDATE of `sha2` (a read-only session, a publication without replica identity), rows would stay hidden (row-level
 * security), or every row would fail (no large object in the database at all).
 */
export type UploadRefused = ReadOnlySession | UpdatesNotReplicable | RowSecurityActive | NoLargeObjects

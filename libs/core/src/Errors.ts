/**
 * Typed errors. Two families:
 * - `RowFailed`: one row is bad (malformed hash, NULL oid, missing large object, size or SHA-1 mismatch, no right to
 *   read its large object, conflicting sha2 at commit). The pipeline reports it, skips the row, and the run ends with
 *   exit code 1. The one exception is the reason `RowVanished` (the row was deleted during the run): counted as
 *   vanished, not reported, exit code unaffected (`isVanished`).
 * - `DatabaseError` / `StorageError` / `LocalFileError`: infrastructure. `retryable` says whether the operation may
 *   succeed if repeated; the pipeline retries those per policy (`Retry.ts`) and otherwise fails the run (a rerun
 *   resumes).
 */
import * as Schema from "effect/Schema"

export class MalformedHash extends Schema.TaggedError<MalformedHash>()("MalformedHash", {}) {
  override get message() {
    return "hash is not 40 hexadecimal characters"
  }
}

export class NullOid extends Schema.TaggedError<NullOid>()("NullOid", {}) {
  override get message() {
    return "data (oid) is NULL"
  }
}

export class InvalidSize extends Schema.TaggedError<InvalidSize>()("InvalidSize", { size: Schema.Number }) {
  override get message() {
    return `size ${this.size} is not a non-negative integer`
  }
}

/**
 * `mime_type` holds bytes that are not UTF-8. Only a `SQL_ASCII` database stores such text (it checks no encoding;
 * every other one converts to UTF-8 for the client), and no header or metadata value can carry it as this text.
 * `bytes` is the value in hex, at most 64 bytes of it.
 */
export class MimeTypeNotUtf8 extends Schema.TaggedError<MimeTypeNotUtf8>()("MimeTypeNotUtf8", { bytes: Schema.String }) {
  override get message() {
    return `mime_type is not valid UTF-8 (bytes ${this.bytes}, hex), which a SQL_ASCII database stores unchecked; ` +
      `rewrite the value as UTF-8 and run again`
  }
}

export class HashNotUtf8 extends Schema.TaggedError<HashNotUtf8>()("HashNotUtf8", { bytes: Schema.String }) {
  override get message() {
    return `hash is not valid UTF-8 (bytes ${this.bytes}, hex), which a SQL_ASCII database stores unchecked, and so ` +
      `not 40 hexadecimal characters either; correct or delete the row`
  }
}

export class MissingLargeObject extends Schema.TaggedError<MissingLargeObject>()("MissingLargeObject", {
  oid: Schema.Number
}) {
  override get message() {
    return `large object ${this.oid} does not exist`
  }
}

export class SizeMismatch extends Schema.TaggedError<SizeMismatch>()("SizeMismatch", {
  expected: Schema.Number,
  actual: Schema.Number
}) {
  override get message() {
    return `size mismatch: row says ${this.expected} bytes, large object has ${this.actual}`
  }
}

export class Sha1Mismatch extends Schema.TaggedError<Sha1Mismatch>()("Sha1Mismatch", { actual: Schema.String }) {
  override get message() {
    return `SHA-1 mismatch: content hashes to ${this.actual}`
  }
}

/**
 * The row no longer exists: the application deleted it (or changed its hash or oid) while it was being migrated.
 * `at: "read"`: its large object was missing and a re-check found no row with that hash and oid any more;
 * `at: "commit"`: no row with that hash was left to record the sha2 in. Not a failure: the pipeline counts it as
 * vanished (see `isVanished`), it is not reported and does not change the exit code.
 */
export class RowVanished extends Schema.TaggedError<RowVanished>()("RowVanished", {
  at: Schema.Literals(["read", "commit"])
}) {
  override get message() {
    return this.at === "read"
      ? "row no longer exists (its large object was missing, and so was the row with this hash and oid)"
      : "row no longer exists (deleted before its sha2 could be recorded)"
  }
}

/**
 * The role may not read the large object (SQLSTATE 42501). `grant` is the statement that gives it the right.
 */
export class LargeObjectNotPermitted extends Schema.TaggedError<LargeObjectNotPermitted>()("LargeObjectNotPermitted", {
  oid: Schema.Number,
  role: Schema.String
}) {
  get grant(): string {
    return `GRANT SELECT ON LARGE OBJECT ${this.oid} TO ${quoteIdent(this.role)}`
  }
  override get message() {
    return `role ${this.role} may not read large object ${this.oid} (permission denied, 42501); ` +
      `run as its owner or a superuser: ${this.grant}; (or set lo_compat_privileges = on)`
  }
}

/** A role name as an SQL identifier (quoted unless it is a plain lower-case name). */
const quoteIdent = (name: string): string => /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll("\"", "\"\"")}"`

/** The row already holds a different `sha2`; it is never overwritten. */
export class Sha2Conflict extends Schema.TaggedError<Sha2Conflict>()("Sha2Conflict", {
  existing: Schema.String,
  computed: Schema.String
}) {
  override get message() {
    return `sha2 already set to ${this.existing}, computed ${this.computed}; left unchanged`
  }
}

/**
 * The store kept rejecting the object's bytes as corrupted on the way (BadDigest, XAmzContentSHA256Mismatch), although
 * they had been verified against the row's SHA-1: sent again a few times, never stored, never committed.
 */
export class CorruptedInTransit extends Schema.TaggedError<CorruptedInTransit>()("CorruptedInTransit", {
  attempts: Schema.Number,
  detail: Schema.String
}) {
  override get message() {
    return `upload rejected as corrupted in transit ${this.attempts} times: ${this.detail}`
  }
}

export const RowFailureReason = Schema.Union([
  MalformedHash,
  HashNotUtf8,
  NullOid,
  InvalidSize,
  MimeTypeNotUtf8,
  MissingLargeObject,
  SizeMismatch,
  Sha1Mismatch,
  RowVanished,
  LargeObjectNotPermitted,
  Sha2Conflict,
  CorruptedInTransit
])
export type RowFailureReason = typeof RowFailureReason.Type

/** A bad row: reported (with its hash and oid) and skipped, never fatal. */
export class RowFailed extends Schema.TaggedError<RowFailed>()("RowFailed", {
  hash: Schema.String,
  oid: Schema.NullOr(Schema.Number),
  reason: RowFailureReason
}) {
  override get message() {
    return `row hash=${JSON.stringify(this.hash)} oid=${this.oid ?? "NULL"}: ${this.reason.message}`
  }
}

/** Whether a `RowFailed` only says that the row is gone (deleted during the run): not a failure, counted as vanished. */
export const isVanished = (failure: RowFailed): boolean => failure.reason._tag === "RowVanished"

/** A PostgreSQL failure outside one row's fault (connection lost, statement failed, pool exhausted, ...). */
export class DatabaseError extends Schema.TaggedError<DatabaseError>()("DatabaseError", {
  operation: Schema.String,
  detail: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message() {
    return `database ${this.operation} failed${this.retryable ? " (retryable)" : ""}: ${this.detail}`
  }
}

/** An object-store failure. `key` is absent for bucket-level operations. */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  operation: Schema.String,
  bucket: Schema.String,
  key: Schema.optional(Schema.String),
  detail: Schema.String,
  retryable: Schema.Boolean,
  /** The server asked to slow down (503 SlowDown, 429, throttling codes): the store stage lowers its concurrency. */
  throttled: Schema.optional(Schema.Boolean),
  cause: Schema.optional(Schema.Defect())
}) {
  override get message() {
    const where = this.key === undefined ? `bucket ${this.bucket}` : `${this.bucket}/${this.key}`
    return `S3 ${this.operation} on ${where} failed${this.retryable ? " (retryable)" : ""}: ${this.detail}`
  }
}

/**
 * The store rejected a body as corrupted in transit (its Content-MD5 or SHA-256 did not match what arrived) after the
 * store's few retries from the verified bytes. Not an infrastructure failure of the run: the pipeline reports the
 * row (`CorruptedInTransit`) and goes on.
 */
export class TransferCorrupted extends Schema.TaggedError<TransferCorrupted>()("TransferCorrupted", {
  operation: Schema.String,
  bucket: Schema.String,
  key: Schema.String,
  attempts: Schema.Number,
  detail: Schema.String
}) {
  override get message() {
    return `S3 ${this.operation} on ${this.bucket}/${this.key}: ${this.detail} (${this.attempts} attempts)`
  }

  /** Sending the verified bytes again may succeed (the store retries a few times before giving up on the row). */
  get retryable(): boolean {
    return true
  }
}

/**
 * A failure of the local file system under the spill directory (`--temp-dir`): no space left (ENOSPC, retryable:
 * spills in flight free space when their uploads end), permission denied (EACCES), a path that is not a directory, ...
 * `directory` is the configured spill directory, `path` the file or directory the operation was on.
 */
export class LocalFileError extends Schema.TaggedError<LocalFileError>()("LocalFileError", {
  operation: Schema.String,
  directory: Schema.String,
  path: Schema.String,
  code: Schema.optional(Schema.String),
  detail: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message() {
    return `local file system: ${this.operation} ${this.path} failed${this.retryable ? " (retryable)" : ""}: ` +
      `${this.detail} (spill directory ${this.directory})`
  }
}

export type InfrastructureError = DatabaseError | StorageError | LocalFileError

/** What an infrastructure error depends on, as the monitor names it. */
export type Dependency = "PostgreSQL" | "S3" | "temp dir"

export const dependencyOf = (e: InfrastructureError): Dependency =>
  e._tag === "DatabaseError" ? "PostgreSQL" : e._tag === "StorageError" ? "S3" : "temp dir"

/**
 * The domain of the migration: identifiers, the `_nice_binary` row as the source yields it, and a read large object.
 */
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/** SHA-1 of the content, 40 lowercase hex characters: the key the application uses today (`_nice_binary.hash`). */
export const Sha1Hex = Schema.String.check(Schema.isPattern(/^[0-9a-f]{40}$/)).pipe(Schema.brand("Sha1Hex"))
export type Sha1Hex = typeof Sha1Hex.Type

/** SHA-256 of the content, 64 lowercase hex characters: the object key in S3 and the value recorded in `sha2`. */
export const Sha256Hex = Schema.String.check(Schema.isPattern(/^[0-9a-f]{64}$/)).pipe(Schema.brand("Sha256Hex"))
export type Sha256Hex = typeof Sha256Hex.Type

/** A PostgreSQL large object id (`oid`, an unsigned 32-bit integer; 0 is InvalidOid). */
export const Oid = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4294967295 })).pipe(Schema.brand("Oid"))
export type Oid = typeof Oid.Type

export const isSha1Hex = Schema.is(Sha1Hex)
export const isSha256Hex = Schema.is(Sha256Hex)

/**
 * One `_nice_binary` row still to migrate, exactly as stored. Nothing is validated here: a malformed hash or a NULL oid
 * must reach the reader so that it is reported as a bad row instead of stopping the stream.
 *
 * `hash` is the raw `char(40)` value (PostgreSQL pads a short value with spaces); it is also the key the committer
 * uses to find the row again, so it is carried through unchanged.
 */
export const SourceRow = Schema.Struct({
  hash: Schema.String,
  /**
   * Set when the column's bytes are not UTF-8 (a `SQL_ASCII` database): they in hex, at most 64 bytes; `hash` then
   * holds them decoded with U+FFFD for each bad sequence, for display only. Such a row is reported, not migrated
   * (`checkRow`: `HashNotUtf8`).
   */
  hashNotUtf8: Schema.optionalKey(Schema.String),
  oid: Schema.NullOr(Schema.Number),
  size: Schema.Number,
  mimeType: Schema.NullOr(Schema.String),
  /**
   * Set when the column's bytes are not UTF-8 (a `SQL_ASCII` database): they in hex, at most 64 bytes; `mimeType`
   * then holds them decoded with U+FFFD for each bad sequence, for display only. Such a row is reported, not migrated
   * (`checkRow`: `MimeTypeNotUtf8`).
   */
  mimeTypeNotUtf8: Schema.optionalKey(Schema.String)
})
export type SourceRow = typeof SourceRow.Type

/**
 * The MD5 (base64) and SHA-256 (hex) of each `partSize` slice of an object (the last one shorter), in order: what a
 * multipart upload sends with every part. A reader computes them in its one pass over the bytes, so the store does not
 * read a spilled file once more to hash it.
 */
export interface PartDigests {
  readonly partSize: number
  readonly md5Base64: ReadonlyArray<string>
  readonly sha256Hex: ReadonlyArray<string>
}

/**
 * Where the bytes of a read object are held until they are uploaded. A spilled body may carry the digests of its
 * parts (when the reader was told the part size the store will use for it).
 */
export type Body =
  | { readonly _tag: "InMemory"; readonly bytes: Uint8Array }
  | { readonly _tag: "Spilled"; readonly path: string; readonly parts?: PartDigests | undefined }

/** The digests of one object, computed in a single pass over its bytes. */
export interface Digests {
  readonly size: number
  readonly sha1: string
  readonly sha256: Sha256Hex
  /**
   * MD5 as base64, the form S3 wants in `Content-MD5`; absent when it was not computed because the body goes up in
   * parts, each with an MD5 of its own (`PartDigests`).
   */
  readonly md5Base64: string | undefined
}

/**
 * A large object that has been read and verified: its size and SHA-1 match the row. It is ready to be uploaded under
 * `sha256`. A spilled body lives in a temp file until `release` runs (idempotent; a no-op for in-memory bodies).
 */
export interface LoObject {
  readonly row: SourceRow
  readonly sha1: Sha1Hex
  readonly sha256: Sha256Hex
  /** The whole body's MD5 (base64); absent for a spilled body the reader digested part by part (`Body.parts`). */
  readonly md5Base64: string | undefined
  readonly size: number
  readonly body: Body
  readonly release: Effect.Effect<void>
}

/** Counts the source reports for progress and the dry run. Sizes in bytes. */
export interface RowCounts {
  /** All rows of the table. */
  readonly total: number
  /** Rows whose `sha2` is still NULL. */
  readonly remaining: number
  /** Sum of `size` over the remaining rows. */
  readonly remainingBytes: number
  /** The largest `size` among the remaining rows (0 when none). */
  readonly largest: number
}

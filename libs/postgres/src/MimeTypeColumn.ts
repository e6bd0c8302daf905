/**
 * The `mime_type` column as text, whatever the database's encoding.
 *
 * PostgreSQL sends text in the client's encoding, UTF-8, and refuses (22021, "invalid byte sequence") a value that is
 * not valid UTF-8, which only a `SQL_ASCII` database can hold: it stores the bytes of text unchecked. So one row whose
 * `mime_type` an old application wrote in Latin-1 failed the whole page statement, again at every retry, and stopped
 * the run there. The queries therefore select the column as bytes (`mimeTypeBytes`): its UTF-8 in every database
 * with a real encoding (LATIN1's converted as before), its raw bytes in `SQL_ASCII`; `mimeTypeOf` decodes them here,
 * so that a value that is not UTF-8 becomes that row's failure, not the page's.
 */
import type * as SqlClient from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"
import { Buffer, isUtf8 } from "node:buffer"

/** UTF-8 that keeps a leading byte-order mark (it is part of the value); U+FFFD for a bad sequence. */
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true })

/** At most this many bytes of a bad value are shown (in hex) in its report (`shownHex`). */
export const mimeTypeShownBytes = 64

export const shownHex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, mimeTypeShownBytes)).toString("hex") +
  (bytes.byteLength > mimeTypeShownBytes ? "..." : "")

/**
 * The SQL expression of `column`'s bytes: `convert_to` UTF-8, except in `SQL_ASCII`, where converting (and sending
 * as text) checks the bytes, and `convert_to(.., 'SQL_ASCII')` returns them as they are.
 */
export const mimeTypeBytes = (sql: SqlClient.SqlClient, column: "mime_type" | "b.mime_type"): Statement.Fragment =>
  sql.literal(`convert_to(${column}, ${bytesEncoding})`)

/**
 * The encoding text is turned into bytes in (`convert_to`) and back (`convert_from`): UTF-8, or in `SQL_ASCII` the
 * bytes as they are. An SQL expression.
 */
export const bytesEncoding =
  "CASE current_setting('server_encoding') WHEN 'SQL_ASCII' THEN 'SQL_ASCII' ELSE 'UTF8' END"

/** The column's value as selected with `mimeTypeBytes`. */
export type MimeTypeBytes = Uint8Array | null

/**
 * A text column's bytes as text, and `notUtf8` (`shownHex`) when they are not UTF-8: the text then has U+FFFD for
 * each bad sequence, for display only. The decoding of `mime_type` here and of `hash` (HashColumn.ts).
 */
export const textOfBytes = (bytes: Uint8Array): { readonly text: string; readonly notUtf8?: string } => {
  const text = utf8.decode(bytes)
  return isUtf8(bytes) ? { text } : { text, notUtf8: shownHex(bytes) }
}

/**
 * The row's `mimeType`, and `mimeTypeNotUtf8` (hex) when the bytes are not UTF-8 (`SourceRow` in @lo-migrate/core).
 */
export const mimeTypeOf = (
  bytes: MimeTypeBytes
): { readonly mimeType: string | null; readonly mimeTypeNotUtf8?: string } => {
  if (bytes === null) return { mimeType: null }
  const { notUtf8, text } = textOfBytes(bytes)
  return notUtf8 === undefined ? { mimeType: text } : { mimeType: text, mimeTypeNotUtf8: notUtf8 }
}

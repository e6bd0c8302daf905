/**
 * The `hash` column as the source reads it and pages by it, whatever the database's encoding.
 *
 * A `SQL_ASCII` database stores the bytes of text unchecked, so a `hash` may hold bytes that are not UTF-8, and
 * PostgreSQL refuses (22021) to send such a value to a UTF-8 client: selected as text, one such row failed its whole
 * page, at every retry, and stopped the run there. So the source selects the column as bytes (`hashBytes`, as
 * MimeTypeColumn.ts does `mime_type`), `hashOf` decodes them, and a value that is not UTF-8 becomes that row's failure
 * (`SourceRow.hashNotUtf8`, checkRow's `HashNotUtf8`: it is no SHA-1 hex either). The keyset cursor keeps the last
 * row's bytes (`hashAfter`), so paging goes on past such a row, on the index of `hash` as before.
 */
import type * as SqlClient from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"
import { bytesEncoding, textOfBytes } from "./MimeTypeColumn.ts"

/**
 * `b.hash` as bytes, its `char(n)` padding kept: `bpcharout` is the column's text as PostgreSQL prints it (a cast to
 * `text` would drop trailing spaces, and the row is reported and looked up with its value as stored).
 */
export const hashBytes = (sql: SqlClient.SqlClient): Statement.Fragment =>
  sql.literal(`convert_to(textin(bpcharout(b.hash)), ${bytesEncoding})`)

/**
 * The keyset cursor's `hash`: the value `b.hash` is compared with to start the page after the row whose hash bytes
 * (`hashBytes`) are `bytes` and whose ctid is `ctid`.
 *
 * - UTF-8 bytes (every real hash): their text as an untyped parameter, as always; PostgreSQL gives it the column's
 *   type and collation, so the comparison is the column's own and its index serves it.
 * - Other bytes (a `SQL_ASCII` database's malformed hash): no parameter can carry them (a UTF-8 client's text must
 *   be UTF-8, and text made from bytes in the statement would carry another collation than a column with its own:
 *   "could not determine which collation to use"), so the row's own `hash` is read again by its ctid. If that row was
 *   changed or deleted in between, there is nothing to compare with and the page comes back empty: the source ends
 *   early, and the rows after it are left for the next run (nothing is lost; they keep `sha2` NULL).
 */
export const hashAfter = (sql: SqlClient.SqlClient, bytes: Uint8Array, ctid: string): Statement.Fragment => {
  const { notUtf8, text } = textOfBytes(bytes)
  return notUtf8 === undefined ? sql`${text}` : sql`(SELECT x.hash FROM _nice_binary x WHERE x.ctid = ${ctid}::tid)`
}

/** The row's `hash`, and `hashNotUtf8` (hex) when the bytes are not UTF-8 (`SourceRow` in @lo-migrate/core). */
export const hashOf = (bytes: Uint8Array): { readonly hash: string; readonly hashNotUtf8?: string } => {
  const { notUtf8, text } = textOfBytes(bytes)
  return notUtf8 === undefined ? { hash: text } : { hash: text, hashNotUtf8: notUtf8 }
}

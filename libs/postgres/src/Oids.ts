/**
 * Large-object ids as statement parameters. An `oid` is an unsigned 32-bit number (0..4294967295), and sql-pg infers
 * a JS number's parameter type from its value: int4 up to 2^31 - 1, int8 above. A batch mixing both then fails to
 * encode ("Array parameter elements must have the same inferred OID"), and no int4 holds the upper half of the range.
 * So every oid goes out as its decimal text and the statement casts it: `${oidText(oid)}::oid` (an untyped literal
 * the server reads as an oid) and `${oidTexts(oids)}::text[]::oid[]`. Decoded `oid` columns are plain numbers over the
 * whole range (the driver's oid codec is unsigned).
 */

/** One oid as the text a `::oid` cast reads. */
export const oidText = (oid: number): string => String(oid)

/** Oids as a `text[]` parameter, for `::text[]::oid[]`. */
export const oidTexts = (oids: ReadonlyArray<number>): Array<string> => oids.map(oidText)

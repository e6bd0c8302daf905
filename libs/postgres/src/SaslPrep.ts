/**
 * SASLprep (RFC 4013) of a password, as PostgreSQL applies it when it stores a SCRAM-SHA-256 verifier and libpq when
 * it answers the exchange: non-ASCII spaces become a space, the characters "commonly mapped to nothing" go, then
 * NFKC. A password that NFKC changes (fullwidth letters, ligatures, a no-break space, a soft hyphen) is stored in its
 * prepared form, so a client that sends it as typed fails SCRAM authentication; `@effect/sql-pg` sends it as typed
 * (its PgAuth says so). The driver takes one password for every method, and MD5 and cleartext authentication use it
 * unprepared, so `PgDatabase` tries it as typed first and this form only after an authentication failure (28P01).
 *
 * Where PostgreSQL would find the prepared password prohibited and use it as typed, `saslPrep` answers `undefined`:
 * control characters, private use, non-characters, surrogates and the other prohibited tables of RFC 3454 after the
 * mapping. Not checked (so a fallback can still fail where it need not): code points unassigned in Unicode 3.2 and the
 * bidirectional rule. The fallback is only tried when the password as typed has already failed, so it never makes a
 * working password fail.
 */

/** RFC 3454 C.1.2: non-ASCII space characters, mapped to U+0020. */
const nonAsciiSpace = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu

/** RFC 3454 B.1: commonly mapped to nothing. */
const mappedToNothing = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu

/**
 * RFC 4013 2.3 prohibited output: C.1.2 (non-ASCII spaces), C.2.1/C.2.2 (controls), C.3 (private use), C.4
 * (non-characters), C.5 (surrogates), C.6 (inappropriate for plain text), C.7 (inappropriate for canonical
 * representation), C.8 (change display properties), C.9 (tagging characters).
 */
const prohibited = new RegExp(
  "[" +
    "\\u00A0\\u1680\\u2000-\\u200B\\u202F\\u205F\\u3000" + // C.1.2
    "\\u0000-\\u001F\\u007F" + // C.2.1
    "\\u0080-\\u009F\\u06DD\\u070F\\u180E\\u200C\\u200D\\u2028\\u2029\\u2060-\\u2063\\u206A-\\u206F\\uFEFF" +
    "\\uFFF9-\\uFFFC\\u{1D173}-\\u{1D17A}" + // C.2.2
    "\\uE000-\\uF8FF\\u{F0000}-\\u{FFFFD}\\u{100000}-\\u{10FFFD}" + // C.3
    "\\uFDD0-\\uFDEF\\uFFFE\\uFFFF\\u{1FFFE}\\u{1FFFF}\\u{2FFFE}\\u{2FFFF}\\u{3FFFE}\\u{3FFFF}\\u{4FFFE}\\u{4FFFF}" +
    "\\u{5FFFE}\\u{5FFFF}\\u{6FFFE}\\u{6FFFF}\\u{7FFFE}\\u{7FFFF}\\u{8FFFE}\\u{8FFFF}\\u{9FFFE}\\u{9FFFF}" +
    "\\u{AFFFE}\\u{AFFFF}\\u{BFFFE}\\u{BFFFF}\\u{CFFFE}\\u{CFFFF}\\u{DFFFE}\\u{DFFFF}\\u{EFFFE}\\u{EFFFF}" +
    "\\u{FFFFE}\\u{FFFFF}\\u{10FFFE}\\u{10FFFF}" + // C.4
    "\\uD800-\\uDFFF" + // C.5 (lone surrogates)
    "\\u2FF0-\\u2FFB" + // C.7
    "\\u0340\\u0341\\u200E\\u200F\\u202A-\\u202E" + // C.8
    "\\u{E0001}\\u{E0020}-\\u{E007F}" + // C.9
    "]",
  "u"
)

/** The password as SASLprep prepares it, or `undefined` where PostgreSQL would use it as typed (prohibited output). */
export const saslPrep = (password: string): string | undefined => {
  const prepared = password.replace(nonAsciiSpace, " ").replace(mappedToNothing, "").normalize("NFKC")
  return prohibited.test(prepared) ? undefined : prepared
}

/** The prepared password where it differs from `password` (and is not prohibited): the one to try after a 28P01. */
export const preparedIfDifferent = (password: string): string | undefined => {
  const prepared = saslPrep(password)
  return prepared === undefined || prepared === password ? undefined : prepared
}

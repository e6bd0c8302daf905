/**
 * The rule that turns a row's `mime_type` into what an object is stored with, and back.
 *
 * The application stores any text in `mime_type`. An HTTP header carries far less: non-ASCII text is encoded
 * differently by clients and servers (Ceph RGW answers SignatureDoesNotMatch, or stores mojibake), control characters
 * and line breaks are refused or would inject headers, a tab breaks SigV4's canonical form, surrounding whitespace is
 * trimmed, and a very long header makes the request (Ceph: 400 beyond ~16 KB of headers) or a client's response parser
 * (Node: 16 KB) fail. So:
 *
 * - `null` or empty: no Content-Type (the server's default applies), no metadata. Both read back as "no mime type".
 * - A *plain* mime type is sent as it is: at most `maxPlainLength` (255) printable-ASCII characters of the RFC 9110
 *   grammar `type "/" subtype *( OWS ";" OWS [ name "=" ( token / quoted-string ) ] )`, with single spaces as the
 *   only whitespace, none at either end.
 * - Anything else is *replaced*: Content-Type `application/octet-stream`, and the exact original goes into user
 *   metadata, percent-encoded as UTF-8 (`encodeURIComponent`, pure ASCII):
 *   `x-amz-meta-lo-migrate-mime-type`, when the encoded form has at most `maxEncodedLength` (2000) bytes (AWS limits
 *   all user metadata to 2 KB). A longer one cannot travel in a header: the object carries its SHA-256
 *   (`x-amz-meta-lo-migrate-mime-type-sha256`, hex of the UTF-8 bytes) and its encoded start
 *   (`x-amz-meta-lo-migrate-mime-type-prefix`, at most `prefixLength` bytes, cut between characters); the full value
 *   stays in `_nice_binary.mime_type`, which lo-migrate never changes, and the digest proves which one it was.
 *
 * `storedContentType` applies the rule, `originalMimeType` reads it back from what a HEAD/GET returns.
 */
import { createHash } from "node:crypto"
import { isSha256Hex } from "./Domain.ts"

/** Longest mime type sent as it is. */
export const maxPlainLength = 255
/** Longest percent-encoded original stored whole in metadata. */
export const maxEncodedLength = 2000
/** Longest percent-encoded start of an original too long to store whole. */
export const prefixLength = 1000

/** The Content-Type of an object whose mime type is replaced. */
export const replacementContentType = "application/octet-stream"

/** User-metadata names (without the `x-amz-meta-` prefix; S3 returns them in lower case). */
export const MimeTypeMetadata = {
  original: "lo-migrate-mime-type",
  sha256: "lo-migrate-mime-type-sha256",
  prefix: "lo-migrate-mime-type-prefix"
} as const

const token = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const quoted = '"(?:[ !#-\\[\\]-~]|\\\\[ -~])*"'
const parameter = `${token}=(?:${token}|${quoted})`
const plainMimeType = new RegExp(`^${token}/${token}(?: ?; ?(?:${parameter})?)*$`)

/** Why a mime type is not sent as it is. */
export type ReplacedReason = "not-ascii" | "control-character" | "too-long" | "not-a-media-type"

export type StoredContentType =
  /** No mime type: nothing is sent, the server's default applies. */
  | { readonly _tag: "Default" }
  /** Sent as it is. */
  | { readonly _tag: "Plain"; readonly contentType: string }
  /** Sent as `application/octet-stream`, the original in `metadata`. */
  | {
    readonly _tag: "Replaced"
    readonly contentType: typeof replacementContentType
    readonly reason: ReplacedReason
    /** User metadata (names without `x-amz-meta-`), all values ASCII. */
    readonly metadata: Readonly<Record<string, string>>
    /** Whether the original is stored whole (else only its SHA-256 and start). */
    readonly whole: boolean
  }

/**
 * Percent-encoding of the UTF-8 bytes. Strings from PostgreSQL are always well-formed UTF-16 (the driver decodes
 * UTF-8); an unpaired surrogate, which `encodeURIComponent` refuses, is encoded as U+FFFD like UTF-8 encoders do.
 */
const encode = (text: string): string => encodeURIComponent(text.toWellFormed())

const reasonOf = (mimeType: string): ReplacedReason => {
  if (/[\u0000-\u001f\u007f]/.test(mimeType)) return "control-character"
  if (/[^\u0000-\u007f]/.test(mimeType)) return "not-ascii"
  if (mimeType.length > maxPlainLength) return "too-long"
  return "not-a-media-type"
}

/** The encoded start of `text`, at most `limit` bytes, never cutting a character's encoding. */
const encodedPrefix = (text: string, limit: number): string => {
  let out = ""
  for (const char of text.toWellFormed()) {
    const next = encodeURIComponent(char)
    if (out.length + next.length > limit) break
    out += next
  }
  return out
}

/** Whether a mime type is sent as it is. */
export const isPlainMimeType = (mimeType: string): boolean =>
  mimeType.length <= maxPlainLength && plainMimeType.test(mimeType)

/** What an object of a row with this `mime_type` is stored with. */
export const storedContentType = (mimeType: string | null): StoredContentType => {
  if (mimeType === null || mimeType === "") return { _tag: "Default" }
  if (isPlainMimeType(mimeType)) return { _tag: "Plain", contentType: mimeType }
  const encoded = encode(mimeType)
  const reason = reasonOf(mimeType)
  if (encoded.length <= maxEncodedLength) {
    return {
      _tag: "Replaced",
      contentType: replacementContentType,
      reason,
      metadata: { [MimeTypeMetadata.original]: encoded },
      whole: true
    }
  }
  return {
    _tag: "Replaced",
    contentType: replacementContentType,
    reason,
    metadata: {
      [MimeTypeMetadata.sha256]: createHash("sha256").update(mimeType.toWellFormed(), "utf8").digest("hex"),
      [MimeTypeMetadata.prefix]: encodedPrefix(mimeType, prefixLength)
    },
    whole: false
  }
}

/** What a stored object says about its row's mime type (from a HEAD or GET: Content-Type and user metadata). */
export type RecoveredMimeType =
  /** The server returned no Content-Type. */
  | { readonly _tag: "None" }
  /** The exact original, or the Content-Type the server returned (its own default when none was sent). */
  | { readonly _tag: "Exact"; readonly mimeType: string }
  /** Too long to store: its SHA-256 (hex of the UTF-8 bytes) and start; the full value is in `_nice_binary`. */
  | { readonly _tag: "Digest"; readonly sha256: string; readonly prefix: string }

/** What `encode` produces: `encodeURIComponent`'s unreserved characters and upper-case `%XX`. */
const encodedForm = /^(?:[A-Za-z0-9\-_.!~*'()]|%[0-9A-F]{2})*$/

/**
 * UTF-8 without BOM stripping: the default `TextDecoder` drops a leading U+FEFF, which is a character of the
 * original like any other (a mime type may start with one, and every run of `%XX` is decoded on its own).
 */
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true })

/** Decodes what `encode` produced; `undefined` for anything else (so a malformed value is never misread). */
const decode = (encoded: string): string | undefined => {
  if (!encodedForm.test(encoded)) return undefined
  const decoded = encoded.replace(
    /(?:%[0-9A-F]{2})+/g,
    (run) => utf8.decode(Uint8Array.from(run.slice(1).split("%"), (h) => parseInt(h, 16)))
  )
  return encode(decoded) === encoded ? decoded : undefined
}

/**
 * Reads the rule back from what a HEAD or GET returns: the Content-Type and the user metadata (names in any case).
 * Returns `undefined` when the metadata is malformed (not written by this rule).
 */
export const originalMimeType = (
  contentType: string | undefined,
  metadata: Readonly<Record<string, string>> | undefined
): RecoveredMimeType | undefined => {
  const meta: Record<string, string> = {}
  for (const [k, v] of Object.entries(metadata ?? {})) meta[k.toLowerCase()] = v
  const original = meta[MimeTypeMetadata.original]
  if (original !== undefined) {
    const mimeType = decode(original)
    return mimeType === undefined ? undefined : { _tag: "Exact", mimeType }
  }
  const sha256 = meta[MimeTypeMetadata.sha256]
  if (sha256 !== undefined) {
    const prefix = decode(meta[MimeTypeMetadata.prefix] ?? "")
    return isSha256Hex(sha256) && prefix !== undefined ? { _tag: "Digest", sha256, prefix } : undefined
  }
  return contentType === undefined ? { _tag: "None" } : { _tag: "Exact", mimeType: contentType }
}

/** The Content-Types servers give an object stored without one (Ceph RGW, AWS). */
export const serverDefaultContentTypes: ReadonlyArray<string> = ["binary/octet-stream", "application/octet-stream"]

/**
 * Whether a recovered mime type is the one of a row. A row without a mime type (`null` or empty) matches an object
 * with no Content-Type or with a server's default (`serverDefaults`).
 */
export const matchesMimeType = (
  recovered: RecoveredMimeType,
  mimeType: string | null,
  serverDefaults: ReadonlyArray<string> = serverDefaultContentTypes
): boolean => {
  const none = mimeType === null || mimeType === ""
  switch (recovered._tag) {
    case "None":
      return none
    case "Exact":
      return recovered.mimeType === mimeType || (none && serverDefaults.includes(recovered.mimeType))
    case "Digest":
      return !none && createHash("sha256").update(mimeType.toWellFormed(), "utf8").digest("hex") === recovered.sha256
  }
}

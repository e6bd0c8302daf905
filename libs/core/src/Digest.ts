/**
 * Single-pass hashing of an object's bytes (SHA-1 to verify, SHA-256 for the new key, MD5 for Content-MD5), and the
 * row checks every reader applies the same way.
 */
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { type Digests, isSha1Hex, type PartDigests, type Sha1Hex, type Sha256Hex, type SourceRow } from "./Domain.ts"
import { HashNotUtf8, InvalidSize, MalformedHash, MimeTypeNotUtf8, NullOid, RowFailed, Sha1Mismatch, SizeMismatch } from "./Errors.ts"

/** An incremental digester: feed chunks in order, then `digest()` once. Plain mutable state, meant for one fiber. */
export interface Digester<D extends Digests = Digests> {
  readonly update: (chunk: Uint8Array) => void
  readonly digest: () => D
}

/**
 * `wholeMd5: false` leaves `md5Base64` out: for a body the store sends in parts, each part carries an MD5 of its own
 * (`makePartDigester`) and the whole object's would never be sent. MD5 is the slowest of the three here (measured:
 * 0.87 CPU-s for 660 MiB, against 0.36 for SHA-1 and 0.38 for SHA-256).
 */
export function makeDigester(): Digester<Digests & { readonly md5Base64: string }>
export function makeDigester(options: { readonly wholeMd5: boolean }): Digester
export function makeDigester(options: { readonly wholeMd5: boolean } = { wholeMd5: true }): Digester {
  const sha1 = createHash("sha1")
  const sha256 = createHash("sha256")
  const md5 = options.wholeMd5 ? createHash("md5") : undefined
  let size = 0
  return {
    update: (chunk) => {
      sha1.update(chunk)
      sha256.update(chunk)
      md5?.update(chunk)
      size += chunk.byteLength
    },
    digest: () => ({
      size,
      sha1: sha1.digest("hex"),
      sha256: sha256.digest("hex") as Sha256Hex,
      md5Base64: md5?.digest("base64")
    })
  }
}

/** An incremental digester of the parts of an object: feed chunks in order (cut anywhere), then `digest()` once. */
export interface PartDigester {
  readonly update: (chunk: Uint8Array) => void
  readonly digest: () => PartDigests
}

/**
 * Digests every `partSize` slice of the bytes fed to it (MD5 and SHA-256, the two a multipart part is sent with).
 * A chunk that crosses a part boundary is split without copying. An empty input has no part.
 */
export const makePartDigester = (partSize: number): PartDigester => {
  if (!Number.isSafeInteger(partSize) || partSize <= 0) throw new RangeError(`part size must be a positive integer, got ${partSize}`)
  const md5s: Array<string> = []
  const sha256s: Array<string> = []
  let md5 = createHash("md5")
  let sha256 = createHash("sha256")
  let inPart = 0
  const close = () => {
    md5s.push(md5.digest("base64"))
    sha256s.push(sha256.digest("hex"))
    md5 = createHash("md5")
    sha256 = createHash("sha256")
    inPart = 0
  }
  return {
    update: (chunk) => {
      let offset = 0
      while (offset < chunk.byteLength) {
        const take = Math.min(partSize - inPart, chunk.byteLength - offset)
        const piece = offset === 0 && take === chunk.byteLength ? chunk : chunk.subarray(offset, offset + take)
        md5.update(piece)
        sha256.update(piece)
        inPart += take
        offset += take
        if (inPart === partSize) close()
      }
    },
    digest: () => {
      if (inPart > 0) close()
      return { partSize, md5Base64: md5s, sha256Hex: sha256s }
    }
  }
}

export const digestBytes = (bytes: Uint8Array): Digests => {
  const d = makeDigester()
  d.update(bytes)
  return d.digest()
}

/** A row whose hash, oid and size have the right form: the part a reader can check before touching the object. */
export interface CheckedRow {
  readonly row: SourceRow
  /** The row's hash in lower case (`row.hash` keeps the stored spelling, which the committer matches exactly). */
  readonly sha1: Sha1Hex
  readonly oid: number
}

/**
 * The row's hash as a SHA-1 in lower case, or `undefined` when it is not 40 hexadecimal characters. Upper (or mixed)
 * case is the same SHA-1 written differently: the application compares case-insensitively in places, so such a row is
 * verified like any other; only its commit uses the stored spelling.
 */
export const sha1OfHash = (hash: string): Sha1Hex | undefined => {
  const lower = hash.toLowerCase()
  return isSha1Hex(lower) ? lower : undefined
}

const fail = (row: SourceRow, reason: RowFailed["reason"]) =>
  Effect.fail(new RowFailed({ hash: row.hash, oid: row.oid, reason }))

/**
 * Checks the row's own fields (malformed hash, NULL oid, impossible size) before any read, so that none of them can
 * surface later as an infrastructure error that would stop the run. Any mime type is fine: `storedContentType`
 * (ContentType.ts) turns one that cannot be a header value into metadata.
 */
export const checkRow = (row: SourceRow): Effect.Effect<CheckedRow, RowFailed> => {
  if (row.hashNotUtf8 !== undefined) return fail(row, new HashNotUtf8({ bytes: row.hashNotUtf8 }))
  const sha1 = sha1OfHash(row.hash)
  if (sha1 === undefined) return fail(row, new MalformedHash())
  if (row.oid === null) return fail(row, new NullOid())
  if (!Number.isSafeInteger(row.size) || row.size < 0) return fail(row, new InvalidSize({ size: row.size }))
  if (row.mimeTypeNotUtf8 !== undefined) return fail(row, new MimeTypeNotUtf8({ bytes: row.mimeTypeNotUtf8 }))
  return Effect.succeed({ row, sha1, oid: row.oid })
}

/** Compares what was read with what the row claims: size first, then SHA-1 (case-insensitively). */
export const verifyDigests = (row: SourceRow, digests: Digests): Effect.Effect<void, RowFailed> => {
  if (digests.size !== row.size) return fail(row, new SizeMismatch({ expected: row.size, actual: digests.size }))
  if (digests.sha1 !== row.hash.toLowerCase()) return fail(row, new Sha1Mismatch({ actual: digests.sha1 }))
  return Effect.void
}

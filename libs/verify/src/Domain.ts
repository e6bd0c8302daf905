/**
 * What `verify` compares: a migrated row (`sha2` set) and a listed bucket object, the range of keys a run covers, the
 * problems it can find, and the deterministic sample of `--sample`.
 */
import { createHash } from "node:crypto"

/** A row of `_nice_binary` with `sha2` set, as the verifier streams it (ordered by `sha2`, byte order). */
export interface MigratedRow {
  readonly hash: string
  readonly sha2: string
  readonly oid: number | null
  readonly size: number
  readonly mimeType: string | null
  /** Set when `mime_type` is not UTF-8 (a `SQL_ASCII` database): its bytes in hex (`mimeTypeOf`, @lo-migrate/postgres). */
  readonly mimeTypeNotUtf8?: string
}

/** One entry of the bucket listing (ListObjectsV2 returns key and size). */
export interface ListedObject {
  readonly key: string
  readonly size: number
}

/** `[from, to)` in byte order of the hex keys; either end open. Both are lowercase hex prefixes. */
export interface KeyRange {
  readonly from?: string | undefined
  readonly to?: string | undefined
}

export const inRange = (key: string, range: KeyRange): boolean =>
  (range.from === undefined || key >= range.from) && (range.to === undefined || key < range.to)

/** A bound of `--from-sha2` / `--to-sha2`: 1 to 64 lowercase hex digits. */
export const isKeyBound = (s: string): boolean => /^[0-9a-f]{1,64}$/.test(s)

/** What is wrong with a row. */
export type Problem =
  /** No object under the row's `sha2`. */
  | "Missing"
  /** The object's size is not the row's `size`. */
  | "WrongSize"
  /** `--deep`: the object's bytes do not hash to the key (or the read returned another size). */
  | "WrongContent"
  /** `--content-type`: the object's Content-Type is not the one the migrator writes for the row's mime type. */
  | "WrongContentType"
  /** `sha2` is not 64 lowercase hex digits: no object can be under it. */
  | "MalformedSha2"

export const Problems: ReadonlyArray<Problem> = ["Missing", "WrongSize", "WrongContent", "WrongContentType", "MalformedSha2"]

/** Problems that `--repair` mends by setting `sha2` back to NULL (the next `migrate` uploads the row again). */
export const repairable = (problem: Problem): boolean => problem !== "WrongContentType"

export interface BadRow {
  readonly row: MigratedRow
  readonly problem: Problem
  readonly detail: string
}

/**
 * Whether `key` is in the sample of `fraction` for `seed`: the first 32 bits of SHA-256(`seed:key`) below
 * `fraction * 2^32`. Deterministic (the same keys for the same seed on every run and machine), independent of the key
 * range (the key's own bits are not used directly, so a `--from-sha2` prefix does not bias it).
 */
export const inSample = (key: string, fraction: number, seed: number): boolean => {
  if (fraction >= 1) return true
  if (fraction <= 0) return false
  const digest = createHash("sha256").update(`${seed}:${key}`).digest()
  return digest.readUInt32BE(0) < fraction * 2 ** 32
}

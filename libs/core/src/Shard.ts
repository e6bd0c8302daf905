/**
 * A shard: the I-th of N equal ranges of a hex key space (`--shard I/N`), so that N processes split a table without a
 * coordinator and without locks, each taking the rows whose key falls in its range.
 *
 * The ranges are computed exactly with BigInt: the key space of `bits` bits (160 for SHA-1, 256 for SHA-256) is cut at
 * `ceil(i * 2^bits / N)`, written as a fixed-width lowercase hex string, so the string order of two bounds is their
 * numeric order. The first shard has no lower bound and the last no upper bound: whatever total order the database
 * compares keys in (the column's collation), the N ranges `[bound(i), bound(i+1))` then cover every string exactly once
 * (a key in upper case, with spaces, or not hex at all still lands in exactly one shard). Only the evenness depends on
 * the keys being lowercase hex.
 */
import * as Result from "effect/Result"

export interface Shard {
  /** 0 <= index < count. */
  readonly index: number
  /** 1 <= count <= `maxShardCount`. */
  readonly count: number
}

/** `[low, high)` over fixed-width lowercase hex keys; `undefined`: open at that end. */
export interface ShardRange {
  readonly low: string | undefined
  readonly high: string | undefined
}

/** More shards than this would cut the key space finer than any real deployment needs. */
export const maxShardCount = 65_536

/** Bits of the keys shards are computed over. */
export const sha1Bits = 160
export const sha256Bits = 256

export const renderShard = (shard: Shard): string => `${shard.index}/${shard.count}`

const wholeNumber = /^(0|[1-9][0-9]*)$/

/** A shard count, 1 to `maxShardCount`; the failure says what was expected. */
export const parseShardCount = (text: string): Result.Result<number, string> => {
  const trimmed = text.trim()
  const n = wholeNumber.test(trimmed) ? Number(trimmed) : Number.NaN
  return Number.isSafeInteger(n) && n >= 1 && n <= maxShardCount
    ? Result.succeed(n)
    : Result.fail(`must be a whole number from 1 to ${maxShardCount}, got ${JSON.stringify(text)}`)
}

/** A shard index for `count` shards, 0 to count - 1. */
export const parseShardIndex = (text: string, count: number): Result.Result<number, string> => {
  const trimmed = text.trim()
  const i = wholeNumber.test(trimmed) ? Number(trimmed) : Number.NaN
  return Number.isSafeInteger(i) && i >= 0 && i < count
    ? Result.succeed(i)
    : Result.fail(`must be a whole number from 0 to ${count - 1} (for ${count} shards), got ${JSON.stringify(text)}`)
}

/** Parses `I/N` (0 <= I < N, 1 <= N <= `maxShardCount`); the failure says what was expected. */
export const parseShard = (text: string): Result.Result<Shard, string> => {
  const parts = text.split("/")
  if (parts.length !== 2) return Result.fail(`must be I/N (e.g. 0/4: the first of 4 shards), got ${JSON.stringify(text)}`)
  const count = parseShardCount(parts[1]!)
  if (Result.isFailure(count)) return Result.fail(`N in I/N ${count.failure}`)
  const index = parseShardIndex(parts[0]!, count.success)
  if (Result.isFailure(index)) return Result.fail(`I in I/N ${index.failure}`)
  return Result.succeed({ index: index.success, count: count.success })
}

/** `ceil(i * 2^bits / count)` as `bits / 4` lowercase hex digits. */
const cut = (i: number, count: number, bits: number): string => {
  const space = 1n << BigInt(bits)
  const n = BigInt(count)
  const value = (BigInt(i) * space + n - 1n) / n
  return value.toString(16).padStart(bits / 4, "0")
}

/** The range of `shard` over keys of `bits` bits (a multiple of 4). */
export const shardRange = (shard: Shard, bits: number = sha1Bits): ShardRange => ({
  low: shard.index === 0 ? undefined : cut(shard.index, shard.count, bits),
  high: shard.index === shard.count - 1 ? undefined : cut(shard.index + 1, shard.count, bits)
})

/** Whether `key` falls in `range`, by JavaScript string order (= byte order for ASCII keys, PostgreSQL's "C"). */
export const inShardRange = (key: string, range: ShardRange): boolean =>
  (range.low === undefined || key >= range.low) && (range.high === undefined || key < range.high)

/** The shard of `count` that a lowercase hex key of `bits` bits belongs to (by its value). */
export const shardOfKey = (key: string, count: number, bits: number = sha1Bits): number =>
  Number((BigInt(`0x${key}`) * BigInt(count)) >> BigInt(bits))

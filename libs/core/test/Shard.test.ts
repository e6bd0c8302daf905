import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import {
  inShardRange,
  maxShardCount,
  parseShard,
  renderShard,
  sha1Bits,
  sha256Bits,
  type Shard,
  shardOfKey,
  shardRange
} from "../src/index.ts"

const hexKey = (digits: number) =>
  fc.uint8Array({ minLength: digits / 2, maxLength: digits / 2 }).map((b) => Buffer.from(b).toString("hex"))

const shardsOf = (count: number, bits = sha1Bits) =>
  Array.from({ length: count }, (_, index) => shardRange({ index, count }, bits))

/** The shards of `count` whose range holds `key` (by byte order, as PostgreSQL compares under COLLATE "C"). */
const holders = (key: string, count: number, bits = sha1Bits) =>
  shardsOf(count, bits).flatMap((range, i) => (inShardRange(key, range) ? [i] : []))

describe("parseShard", () => {
  it("parses I/N and renders it back", () => {
    for (const text of ["0/1", "0/4", "3/4", "7/8", "65535/65536"]) {
      const parsed = parseShard(text)
      assert.isTrue(Result.isSuccess(parsed), text)
      if (Result.isSuccess(parsed)) assert.strictEqual(renderShard(parsed.success), text)
    }
  })

  it("rejects anything else, saying what was expected", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["4/4", "I in I/N must be a whole number from 0 to 3 (for 4 shards)"],
      ["-1/4", "I in I/N must be a whole number from 0 to 3"],
      ["0/0", "N in I/N must be a whole number from 1 to 65536"],
      ["0/65537", "N in I/N must be a whole number from 1 to 65536"],
      ["1", "must be I/N"],
      ["1/2/3", "must be I/N"],
      ["a/4", "I in I/N must be a whole number"],
      ["1.5/4", "I in I/N must be a whole number"],
      ["01/4", "I in I/N must be a whole number"],
      ["0/4e0", "N in I/N must be a whole number"],
      ["", "must be I/N"]
    ]
    for (const [text, expected] of cases) {
      const parsed = parseShard(text)
      assert.isTrue(Result.isFailure(parsed), text)
      if (Result.isFailure(parsed)) assert.include(parsed.failure, expected, text)
    }
  })
})

describe("shardRange", () => {
  it("cuts exactly: 1 shard is everything, 2 halve at 8000..., 3 at ceil(2^160/3)", () => {
    assert.deepStrictEqual(shardRange({ index: 0, count: 1 }), { low: undefined, high: undefined })
    assert.deepStrictEqual(shardsOf(2), [
      { low: undefined, high: "8" + "0".repeat(39) },
      { low: "8" + "0".repeat(39), high: undefined }
    ])
    const third = ((1n << 160n) + 2n) / 3n
    assert.strictEqual(shardRange({ index: 1, count: 3 }).low, third.toString(16).padStart(40, "0"))
    assert.strictEqual(shardRange({ index: 1, count: 3 }).low, "5".repeat(39) + "6")
    assert.strictEqual(shardRange({ index: 1, count: 4 }, sha256Bits).low, "4" + "0".repeat(63))
  })

  it("bounds are fixed-width lowercase hex, strictly increasing, for any N up to the maximum", () => {
    for (const count of [1, 2, 3, 7, 255, 256, 1000, 4096, maxShardCount]) {
      const ranges = shardsOf(count)
      for (let i = 0; i + 1 < count; i++) {
        const high = ranges[i]!.high!
        assert.match(high, /^[0-9a-f]{40}$/)
        assert.strictEqual(ranges[i + 1]!.low, high)
        if (i > 0) assert.isTrue(ranges[i]!.low! < high, `${count}: ${i}`)
      }
    }
  })

  it("every 40-hex key is in exactly one shard, the one its value says, for random N (property)", () => {
    fc.assert(
      fc.property(hexKey(40), fc.integer({ min: 1, max: maxShardCount }), (key, count) => {
        const shard = shardOfKey(key, count)
        const range = shardRange({ index: shard, count })
        assert.isTrue(inShardRange(key, range))
        // the neighbours do not hold it (checking all 65536 ranges per case would be slow)
        if (shard > 0) assert.isFalse(inShardRange(key, shardRange({ index: shard - 1, count })))
        if (shard < count - 1) assert.isFalse(inShardRange(key, shardRange({ index: shard + 1, count })))
      }),
      { numRuns: 2000 }
    )
    fc.assert(
      fc.property(hexKey(40), fc.integer({ min: 1, max: 300 }), (key, count) => {
        assert.deepStrictEqual(holders(key, count), [shardOfKey(key, count)])
      }),
      { numRuns: 500 }
    )
  })

  it("bounds are exact: the last key below a bound and the bound itself fall on either side", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: maxShardCount }), fc.nat(), (count, seed) => {
        const index = 1 + (seed % (count - 1))
        const low = shardRange({ index, count }).low!
        const below = (BigInt(`0x${low}`) - 1n).toString(16).padStart(40, "0")
        assert.strictEqual(shardOfKey(low, count), index)
        assert.strictEqual(shardOfKey(below, count), index - 1)
        assert.isTrue(inShardRange(below, shardRange({ index: index - 1, count })))
      })
    )
  })

  it("any string whatever (upper case, short, not hex) is in exactly one shard, in byte order (property)", () => {
    const anyKey = fc.oneof(
      hexKey(40).map((k) => k.toUpperCase()),
      hexKey(40).map((k) => k.slice(0, 20) + k.slice(20).toUpperCase()),
      fc.string({ maxLength: 45 }),
      fc.constantFrom("", " ", "G".repeat(40), "f".repeat(40), "F".repeat(40), "0".repeat(39))
    )
    fc.assert(
      fc.property(anyKey, fc.integer({ min: 1, max: 300 }), (key, count) => {
        assert.strictEqual(holders(key, count).length, 1, `${JSON.stringify(key)} over ${count}`)
      }),
      { numRuns: 1000 }
    )
  })

  it("shards are even: 2^16 cuts differ by one at most, for the key spaces of SHA-1 and SHA-256", () => {
    for (const bits of [sha1Bits, sha256Bits]) {
      for (const count of [3, 7, 1000, maxShardCount]) {
        const sizes = new Set<bigint>()
        for (const index of [0, 1, Math.floor(count / 2), count - 1]) {
          const { high, low } = shardRange({ index, count } satisfies Shard, bits)
          const lo = low === undefined ? 0n : BigInt(`0x${low}`)
          const hi = high === undefined ? 1n << BigInt(bits) : BigInt(`0x${high}`)
          sizes.add(hi - lo)
        }
        const [min, max] = [[...sizes].reduce((a, b) => (a < b ? a : b)), [...sizes].reduce((a, b) => (a > b ? a : b))]
        assert.isTrue(max - min <= 1n, `${bits} bits, ${count} shards`)
      }
    }
  })
})

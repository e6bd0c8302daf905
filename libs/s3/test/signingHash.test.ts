/**
 * `SigningSha256` (SigningHash.ts) is the SDK's SHA-256 contract: plain SHA-256 without a secret, HMAC-SHA-256 with one,
 * whatever form the key comes in and however often the same cached key bytes come back. Compared with Node's own
 * digests; the real gateway checks the signatures made with it in every store test.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash, createHmac, randomBytes } from "node:crypto"
import { SigningSha256 } from "../src/SigningHash.ts"

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")

const digestOf = (secret: string | Uint8Array | undefined, ...chunks: Array<Uint8Array | string>) =>
  Effect.promise(() => {
    const h = new SigningSha256(secret)
    for (const c of chunks) h.update(c)
    return h.digest()
  }).pipe(Effect.map(hex))

describe("SigningSha256", () => {
  it.effect("without a secret: SHA-256 of the chunks, and it can go on after a digest", () =>
    Effect.gen(function*() {
      const a = randomBytes(1000)
      const b = "string to sign ü"
      assert.strictEqual(yield* digestOf(undefined, a, b), createHash("sha256").update(a).update(b, "utf8").digest("hex"))
      assert.strictEqual(yield* digestOf(""), createHash("sha256").digest("hex"), "an empty string is no secret")
      const h = new SigningSha256()
      h.update(a)
      const first = hex(yield* Effect.promise(() => h.digest()))
      h.update(a)
      assert.strictEqual(first, createHash("sha256").update(a).digest("hex"))
      assert.strictEqual(hex(yield* Effect.promise(() => h.digest())), createHash("sha256").update(a).update(a).digest("hex"))
      h.reset()
      assert.strictEqual(hex(yield* Effect.promise(() => h.digest())), createHash("sha256").digest("hex"))
    }))

  it.effect("with a secret: HMAC-SHA-256 keyed by a string or by bytes, the same bytes again or a copy of them", () =>
    Effect.gen(function*() {
      const data = new TextEncoder().encode("AWS4-HMAC-SHA256\n20261206T000000Z\nscope\nhash")
      const key = new Uint8Array(randomBytes(32))
      const expected = createHmac("sha256", Buffer.from(key)).update(data).digest("hex")
      // the SDK hands the same cached array for every request of a day: the key object made the first time is reused
      assert.strictEqual(yield* digestOf(key, data), expected)
      assert.strictEqual(yield* digestOf(key, data), expected)
      assert.strictEqual(yield* digestOf(new Uint8Array(key), data), expected)
      // a view into a larger buffer is keyed by its own bytes only
      const padded = new Uint8Array(40)
      padded.set(key, 4)
      assert.strictEqual(yield* digestOf(padded.subarray(4, 36), data), expected)
      const other = new Uint8Array(randomBytes(32))
      assert.strictEqual(yield* digestOf(other, data), createHmac("sha256", Buffer.from(other)).update(data).digest("hex"))
      assert.strictEqual(
        yield* digestOf("AWS4secret", "20261206"),
        createHmac("sha256", "AWS4secret").update("20261206").digest("hex")
      )
      assert.strictEqual(
        yield* digestOf(new Uint8Array(0), data),
        createHmac("sha256", Buffer.alloc(0)).update(data).digest("hex"),
        "empty key bytes are a key (as the SDK's own hash has it)"
      )
    }))
})

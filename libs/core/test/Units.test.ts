import { assert, describe, it } from "@effect/vitest"
import { Redacted } from "effect"
import { formatBytes, groupBySize, isTransientNetworkCode, scrubSecrets } from "../src/index.ts"

describe("formatBytes", () => {
  it("bytes below 1 KiB as they are, larger ones in the largest unit reached", () => {
    assert.strictEqual(formatBytes(0), "0 B")
    assert.strictEqual(formatBytes(1023), "1023 B")
    assert.strictEqual(formatBytes(5000), "4.88 KiB")
    assert.strictEqual(formatBytes(10 * 1024 * 1024), "10.00 MiB")
    assert.strictEqual(formatBytes(3 * 1024 ** 4), "3.00 TiB")
    assert.strictEqual(formatBytes(1024 ** 5), "1024.00 TiB")
  })
  it("a smallest unit and fewer decimals (the status blocks: MiB with one decimal)", () => {
    assert.strictEqual(formatBytes(512 * 1024, { smallest: "MiB", decimals: 1 }), "0.5 MiB")
    assert.strictEqual(formatBytes(1536 * 1024 * 1024, { smallest: "MiB", decimals: 1 }), "1.5 GiB")
  })
})

describe("groupBySize", () => {
  it("keeps the order, bounds bytes and count, gives an oversized item a group of its own", () => {
    const groups = groupBySize([3, 3, 3, 10, 1, 1, 1, 1], (n) => n, { maxBytes: 7, maxCount: 3 })
    assert.deepStrictEqual(groups, [[3, 3], [3], [10], [1, 1, 1], [1]])
    assert.deepStrictEqual(groupBySize([], (n: number) => n, { maxBytes: 1 }), [])
  })
})

describe("scrubSecrets", () => {
  it("removes plain, Redacted, percent-encoded and decoded forms, longest first", () => {
    const text = "postgres://u:p%40ss@h/db failed for p@ss and p%40ss; key s3-hunter2"
    const out = scrubSecrets(text, ["postgres://u:p%40ss@h/db", "p%40ss", Redacted.make("s3-hunter2")])
    assert.strictEqual(out, "<redacted> failed for <redacted> and <redacted>; key <redacted>")
  })
  it("a secret that is not valid percent-encoding is still removed", () => {
    assert.strictEqual(scrubSecrets("pw %E0%A4%A is here", ["%E0%A4%A"]), "pw <redacted> is here")
  })
})

describe("isTransientNetworkCode", () => {
  it("socket-level trouble is transient, anything else is not", () => {
    for (const code of ["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "EAI_AGAIN", "UND_ERR_SOCKET"]) {
      assert.isTrue(isTransientNetworkCode(code), code)
    }
    for (const code of ["ENOENT", "EACCES", "ERR_INVALID_URL", undefined]) assert.isFalse(isTransientNetworkCode(code))
  })
})

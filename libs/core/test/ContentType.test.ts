/** The mime-type rule: which values are sent as they are, and that every other one is recovered exactly. */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { createHash } from "node:crypto"
import {
  isPlainMimeType,
  matchesMimeType,
  maxEncodedLength,
  MimeTypeMetadata,
  originalMimeType,
  prefixLength,
  replacementContentType,
  storedContentType
} from "../src/index.ts"

/** What the server would return for an object stored by the rule (no Content-Type sent: Ceph's default). */
const roundTrip = (mimeType: string | null) => {
  const stored = storedContentType(mimeType)
  const contentType = stored._tag === "Default" ? "binary/octet-stream" : stored.contentType
  const metadata = stored._tag === "Replaced" ? stored.metadata : {}
  return { stored, recovered: originalMimeType(contentType, metadata) }
}

describe("storedContentType", () => {
  it("sends plain media types as they are", () => {
    for (
      const plain of [
        "text/plain",
        "application/pdf; charset=\"utf-8\"",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "octet/stream",
        "multipart/form-data; boundary=----abc",
        "text/plain;charset=us-ascii",
        "text/plain; a=b; c=\"d; e\"",
        "Text/HTML",
        "a/" + "b".repeat(253)
      ]
    ) {
      assert.deepStrictEqual(storedContentType(plain), { _tag: "Plain", contentType: plain }, plain)
    }
  })

  it("sends nothing for NULL and empty", () => {
    assert.deepStrictEqual(storedContentType(null), { _tag: "Default" })
    assert.deepStrictEqual(storedContentType(""), { _tag: "Default" })
  })

  it("replaces every other class, keeping the exact original in ASCII metadata", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["text/x-ünïcode", "not-ascii"],
      ["image/\u20ac", "not-ascii"],
      ["text/\u{1F600}", "not-ascii"],
      ["\uFEFF", "not-ascii"], // a byte-order mark, which a default TextDecoder would drop
      ["\uFEFFtext/plain", "not-ascii"],
      ["text/pl\uFEFFain", "not-ascii"],
      ["text/plain\r\nX-Injected: 1", "control-character"],
      ["text/plain\n", "control-character"],
      ["text/\u0000plain", "control-character"],
      ["text/plain;\tq=1", "control-character"],
      ["text/\u007fplain", "control-character"],
      ["a/" + "b".repeat(254), "too-long"],
      ["unused", "not-a-media-type"],
      [" text/plain", "not-a-media-type"],
      ["text/plain ", "not-a-media-type"],
      ["text/plain;  q=1", "not-a-media-type"],
      ["text/pla in", "not-a-media-type"],
      ["text/plain; q=\"open", "not-a-media-type"],
      ["100%", "not-a-media-type"] // a "%" in the original is itself encoded
    ]
    for (const [mimeType, reason] of cases) {
      const { recovered, stored } = roundTrip(mimeType)
      assert.strictEqual(stored._tag, "Replaced", JSON.stringify(mimeType))
      if (stored._tag !== "Replaced") continue
      assert.strictEqual(stored.reason, reason, JSON.stringify(mimeType))
      assert.strictEqual(stored.contentType, replacementContentType)
      assert.isTrue(stored.whole)
      for (const value of Object.values(stored.metadata)) assert.match(value, /^[\x21-\x7e]*$/)
      assert.deepStrictEqual(recovered, { _tag: "Exact", mimeType }, JSON.stringify(mimeType))
    }
    assert.strictEqual(
      (storedContentType("text/x-ünïcode") as { metadata: Record<string, string> }).metadata[MimeTypeMetadata.original],
      "text%2Fx-%C3%BCn%C3%AFcode"
    )
  })

  it("an original too long for a header: its SHA-256 and start, matched against the row by digest", () => {
    for (const mimeType of ["x".repeat(10_000), "ü".repeat(400), "a/b; " + "é€".repeat(3000)]) {
      const { recovered, stored } = roundTrip(mimeType)
      assert.strictEqual(stored._tag, "Replaced")
      if (stored._tag !== "Replaced" || recovered?._tag !== "Digest") throw new Error(JSON.stringify(recovered))
      assert.isFalse(stored.whole)
      const bytes = Object.entries(stored.metadata).reduce((n, [k, v]) => n + k.length + v.length, 0)
      assert.isAtMost(bytes, 2048, "AWS's limit of all user metadata")
      assert.strictEqual(recovered.sha256, createHash("sha256").update(mimeType, "utf8").digest("hex"))
      assert.isTrue(mimeType.startsWith(recovered.prefix))
      assert.isAtMost(stored.metadata[MimeTypeMetadata.prefix]!.length, prefixLength)
      assert.isAbove(recovered.prefix.length, 0)
      assert.isTrue(matchesMimeType(recovered, mimeType))
      assert.isFalse(matchesMimeType(recovered, mimeType + "x"))
    }
    // the boundary: an encoded form of exactly the limit is still stored whole
    const atLimit = "x/" + "y".repeat(maxEncodedLength - 4) // "/" encodes to 3 bytes
    assert.strictEqual(encodeURIComponent(atLimit).length, maxEncodedLength)
    assert.deepStrictEqual(roundTrip(atLimit).recovered, { _tag: "Exact", mimeType: atLimit })
    assert.strictEqual(roundTrip(atLimit + "y").recovered?._tag, "Digest")
  })

  /** Strings of the characters where encoders and decoders disagree: found the dropped byte-order mark at once. */
  const tricky = fc.array(
    fc.constantFrom("a", "/", ";", "=", " ", "\"", "%", "%25", "\uFEFF", "\u00e9", "\u20ac", "\u{1F600}", "\r", "\t", "\u0000"),
    { maxLength: 40 }
  ).map((parts) => parts.join(""))

  it("every string round-trips: exactly, or by digest when too long (property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "grapheme", maxLength: 300 }), fc.string({ unit: "binary", maxLength: 80 }), tricky), (s) => {
        const { recovered, stored } = roundTrip(s)
        if (s === "") return recovered?._tag === "Exact" && matchesMimeType(recovered, s)
        if (stored._tag === "Plain") return isPlainMimeType(s) && recovered?._tag === "Exact" && recovered.mimeType === s
        return recovered !== undefined && matchesMimeType(recovered, s) &&
          (stored._tag === "Replaced" && stored.whole ? recovered._tag === "Exact" && recovered.mimeType === s : true)
      }),
      { numRuns: 2000 }
    )
  })
})

describe("originalMimeType", () => {
  it("a plain Content-Type without metadata is the original; none is None", () => {
    assert.deepStrictEqual(originalMimeType("image/png", {}), { _tag: "Exact", mimeType: "image/png" })
    assert.deepStrictEqual(originalMimeType(undefined, undefined), { _tag: "None" })
  })

  it("metadata names in any case", () => {
    assert.deepStrictEqual(
      originalMimeType(replacementContentType, { "Lo-Migrate-Mime-Type": "a%0Ab" }),
      { _tag: "Exact", mimeType: "a\nb" }
    )
  })

  it("refuses malformed metadata instead of misreading it", () => {
    for (const bad of ["%", "%4", "%zz", "%C3", "%c3%bc", "a b", "%FF"]) {
      assert.isUndefined(originalMimeType(replacementContentType, { [MimeTypeMetadata.original]: bad }), bad)
    }
    assert.isUndefined(originalMimeType(replacementContentType, { [MimeTypeMetadata.sha256]: "abc" }))
  })

  it("a row without a mime type matches the server's default Content-Type", () => {
    for (const row of [null, ""]) {
      assert.isTrue(matchesMimeType({ _tag: "Exact", mimeType: "binary/octet-stream" }, row))
      assert.isTrue(matchesMimeType({ _tag: "None" }, row))
    }
    assert.isFalse(matchesMimeType({ _tag: "None" }, "text/plain"))
    assert.isFalse(matchesMimeType({ _tag: "Exact", mimeType: "text/plain" }, null))
  })
})

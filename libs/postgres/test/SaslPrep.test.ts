import { assert, describe, it } from "@effect/vitest"
import { preparedIfDifferent, saslPrep } from "../src/SaslPrep.ts"

describe("SaslPrep (RFC 4013)", () => {
  it("maps non-ASCII spaces to a space, drops what is mapped to nothing, then NFKC", () => {
    assert.strictEqual(saslPrep("Ｐｗ\u00A0ﬁ-4\u00AD711"), "Pw fi-4711")
    assert.strictEqual(saslPrep("I\u00ADX"), "IX", "RFC 4013's own example: soft hyphen")
    assert.strictEqual(saslPrep("\u00AA"), "a", "RFC 4013: feminine ordinal indicator")
    assert.strictEqual(saslPrep("\u2168"), "IX", "RFC 4013: roman numeral nine")
    assert.strictEqual(saslPrep("a\u3000b\u200Bc"), "a b c", "ideographic and zero-width space: C.1.2")
    assert.strictEqual(saslPrep("e\u0301"), "\u00E9", "composed")
    assert.strictEqual(saslPrep("Scram-Pw_4711"), "Scram-Pw_4711")
    assert.strictEqual(saslPrep("pässwörd"), "pässwörd")
  })

  it("prohibited output (RFC 4013's examples and the tables of RFC 3454): undefined, the password is used as typed", () => {
    assert.isUndefined(saslPrep("\u0007"), "RFC 4013: control character")
    assert.isUndefined(saslPrep("ａ\u0007"))
    assert.isUndefined(saslPrep("a\uE000b"), "private use")
    assert.isUndefined(saslPrep("a\uFFFEb"), "non-character")
    assert.isUndefined(saslPrep("a\u200Eb"), "left-to-right mark")
    assert.isUndefined(saslPrep("a\u{E0041}b"), "tag character")
  })

  it("preparedIfDifferent: only a prepared form that differs and is allowed", () => {
    assert.strictEqual(preparedIfDifferent("ｐａｓｓ"), "pass")
    assert.isUndefined(preparedIfDifferent("pass"))
    assert.isUndefined(preparedIfDifferent("pässwörd"))
    assert.isUndefined(preparedIfDifferent("ｐ\u0007"))
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeStatusWriter, rowsOf, type Terminal } from "../src/StatusWriter.ts"

const terminal = (isTTY: boolean, columns?: number) => {
  const written: Array<string> = []
  const out: Terminal = { isTTY, columns, write: (t) => void written.push(t) }
  return { out, written }
}

describe("status blocks", () => {
  it.effect("piped: every block printed in full, nothing overwritten", () =>
    Effect.gen(function*() {
      const { out, written } = terminal(false)
      const write = makeStatusWriter(out, () => 0)
      yield* write("a\nb")
      yield* write("c\nd")
      assert.deepStrictEqual(written, ["a\nb\n", "c\nd\n"])
    }))

  it.effect("on a terminal: the next block replaces the previous one", () =>
    Effect.gen(function*() {
      const { out, written } = terminal(true, 80)
      const write = makeStatusWriter(out, () => 0)
      yield* write("a\nb\nc")
      yield* write("d")
      assert.deepStrictEqual(written, ["a\nb\nc\n", "\u001b[3F\u001b[0Jd\n"])
    }))

  it.effect("on a terminal: never overwrites anything printed in between", () =>
    Effect.gen(function*() {
      const { out, written } = terminal(true, 80)
      let epoch = 0
      const write = makeStatusWriter(out, () => epoch)
      yield* write("a\nb")
      epoch += 1 // a warning was logged
      yield* write("c")
      yield* write("d")
      assert.deepStrictEqual(written, ["a\nb\n", "c\n", "\u001b[1F\u001b[0Jd\n"])
    }))

  it("counts wrapped rows", () => {
    assert.strictEqual(rowsOf("x".repeat(100) + "\nshort", 40), 4)
    assert.strictEqual(rowsOf("\n", 40), 2)
    assert.strictEqual(rowsOf("abc", undefined), 1)
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { MetricsSnapshot } from "@lo-migrate/core"
import { statusRendererFor } from "../src/RunSettings.ts"
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

describe("status renderers of --log-format, with a shard", () => {
  const snapshot: MetricsSnapshot = {
    startedAt: 0,
    at: 10_000,
    counts: { total: 10, remaining: 10, remainingBytes: 1000, largest: 100 },
    stages: {
      source: { objects: 10, bytes: 1000 },
      read: { objects: 5, bytes: 500 },
      store: { objects: 5, bytes: 500 },
      commit: { objects: 5, bytes: 500 }
    },
    failed: 0,
    failuresByReason: {},
    vanished: 0,
    alreadyPresent: 0,
    retries: 0,
    unavailable: [],
    queues: [],
    concurrency: []
  }
  const shard = { index: 1, count: 4 }

  it("json: a shard field beside the record; line: the shard first; text: the block (the shard line is the writer's)", () => {
    const json = JSON.parse(statusRendererFor("json", { objectsPerSecond: 5 }, shard)(snapshot))
    // the type first, then the shard, as in every JSON record of stdout
    assert.deepStrictEqual(Object.keys(json).slice(0, 3), ["type", "shard", "time"])
    assert.strictEqual(json.type, "status")
    assert.strictEqual(json.shard, "1/4")
    assert.strictEqual(json.progress.migrated, 5)
    assert.strictEqual(json.throttle.objectsPerSecond, 5)
    assert.isUndefined(JSON.parse(statusRendererFor("json")(snapshot)).shard)
    assert.match(statusRendererFor("line", undefined, shard)(snapshot), /^shard 1\/4: 1970-01-01 00:00:10 UTC 50\.00% 5\/10 objects/)
    assert.include(statusRendererFor("text", { objectsPerSecond: 5 }, shard)(snapshot), "Throttle: at most 5 obj/s")
  })
})

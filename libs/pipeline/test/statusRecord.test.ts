import { assert, describe, it } from "@effect/vitest"
import { Metrics, type MetricsSnapshot } from "@lo-migrate/core"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { renderLimits, renderStatusJson, renderStatusLine, runMonitor, statusRecord } from "../src/index.ts"

import { current as base, MiB, previous as before, t0 } from "./snapshots.ts"

// the shared snapshots, with an operation waiting for S3
const current: MetricsSnapshot = {
  ...base,
  unavailable: [{ dependency: "S3", since: t0 + 58_000, giveUpAt: t0 + 358_000, operations: 2, detail: "ECONNREFUSED" }]
}
const previous: MetricsSnapshot = { ...before, unavailable: current.unavailable }

describe("status for log collectors (--log-format json)", () => {
  it("one object per status: progress, per-stage counts and rates since the previous status, queues, limits", () => {
    const r = statusRecord(current, previous, { objectsPerSecond: 30, bytesPerSecond: 2 * MiB })
    assert.strictEqual(r.time, "2026-11-22T01:01:40.000Z")
    assert.strictEqual(r.type, "status")
    assert.strictEqual(r.elapsedSeconds, 100)
    assert.deepStrictEqual(r.progress, {
      migrated: 2500,
      migratedBytes: 125 * MiB,
      pending: 10000,
      pendingBytes: 500 * MiB,
      percent: 25,
      etaSeconds: 300
    })
    assert.deepStrictEqual(r.stages.commit, {
      objects: 2500,
      bytes: 125 * MiB,
      objectsPerSecond: 25,
      bytesPerSecond: 1.25 * MiB
    })
    assert.deepStrictEqual(r.queues, {
      read: { used: 400, capacity: 8192 },
      store: { used: 50, capacity: 1024 },
      commit: { used: 0, capacity: 8192 }
    })
    assert.deepStrictEqual(r.concurrency, { store: { limit: 8, max: 32, inFlight: 8, decreases: 2 } })
    assert.deepStrictEqual(r.throttle, { objectsPerSecond: 30, bytesPerSecond: 2 * MiB })
    assert.deepStrictEqual(r.waiting, [
      { dependency: "S3", forSeconds: 42, giveUpInSeconds: 258, operations: 2, detail: "ECONNREFUSED" }
    ])
    assert.deepStrictEqual([r.failed, r.vanished, r.retries, r.alreadyPresent], [3, 4, 4, 7])
    assert.deepStrictEqual(r.failuresByReason, { SizeMismatch: 2, MalformedHash: 1 })
    // one line of JSON that parses back to the same record
    const line = renderStatusJson(current, previous)
    assert.notInclude(line, "\n")
    assert.deepStrictEqual(JSON.parse(line), JSON.parse(JSON.stringify(statusRecord(current, previous))))
  })

  it("unknown counts: null, not a guess; no limits: null", () => {
    const r = statusRecord({ ...current, counts: undefined })
    assert.deepStrictEqual([r.progress.pending, r.progress.percent, r.progress.etaSeconds], [null, null, null])
    assert.deepStrictEqual(r.throttle, { objectsPerSecond: null, bytesPerSecond: null })
    // without a previous status the rates are averages since the start
    assert.strictEqual(r.stages.commit.objectsPerSecond, 25)
  })
})

describe("one-line status (--log-format line)", () => {
  it("progress, rate, ETA, queues, concurrency, failures, limits and waits on one line", () => {
    assert.strictEqual(
      renderStatusLine(current, previous, { bytesPerSecond: 2 * MiB }),
      "2026-11-22 01:01:40 UTC 25.00% 2500/10000 objects, 125.0 MiB, 25.0 obj/s 1.25 MiB/s, ETA 0h 05m 00s, " +
        "queues read 400 store 50 commit 0, store 8/32, failed 3, retries 4, throttle 2.00 MiB/s, " +
        "WAITING for S3 42 s (2 operations)"
    )
    assert.include(renderStatusLine({ ...current, counts: undefined, unavailable: [] }), "UTC ?% 2500/? objects")
    assert.strictEqual(renderLimits(undefined), "none")
    assert.strictEqual(renderLimits({ objectsPerSecond: 50, bytesPerSecond: 10 * MiB }), "50 obj/s, 10.00 MiB/s")
  })

  it.effect("runMonitor with a line renderer writes one line per interval", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const lines: Array<string> = []
      const fiber = yield* Effect.forkChild(
        runMonitor("5 seconds", (line) => Effect.sync(() => void lines.push(line)), renderStatusJson)
      )
      yield* TestClock.adjust("1 millis")
      yield* metrics.processed("commit", 10, 10 * MiB)
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(lines.length, 2)
      const [first, second] = lines.map((l) => JSON.parse(l))
      assert.strictEqual(first.progress.migrated, 0)
      assert.strictEqual(second.progress.migrated, 10)
      assert.strictEqual(second.stages.commit.objectsPerSecond, 2)
    }).pipe(Effect.provide(Metrics.layer)))
})

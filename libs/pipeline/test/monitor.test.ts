import { assert, describe, it } from "@effect/vitest"
import { formatBytes, Metrics } from "@lo-migrate/core"
import { Clock, Effect, Fiber, Queue } from "effect"
import { TestClock } from "effect/testing"
import { formatElapsed, formatWait, renderStatus, runMonitor, statusBytes } from "../src/index.ts"
import { current, MiB, previous } from "./snapshots.ts"

describe("statusBytes", () => {
  it("core's formatBytes with the status options writes what the monitor's own formatter wrote (MiB, one decimal)", () => {
    // each expected string is the output of the monitor's former `formatBytes` for that value
    const cases: ReadonlyArray<readonly [number, string]> = [
      [0, "0.0 MiB"],
      [1, "0.0 MiB"],
      [512 * 1024, "0.5 MiB"],
      [MiB - 1, "1.0 MiB"],
      [125 * MiB, "125.0 MiB"],
      [1024 * MiB - 1, "1024.0 MiB"],
      [1024 * MiB, "1.0 GiB"],
      [1536 * MiB, "1.5 GiB"],
      [1024 * 1024 * MiB - 1, "1024.0 GiB"],
      [3 * 1024 ** 4, "3.0 TiB"],
      [1024 ** 5, "1024.0 TiB"]
    ]
    for (const [bytes, expected] of cases) assert.strictEqual(formatBytes(bytes, statusBytes), expected, `${bytes} bytes`)
  })
})

describe("renderStatus", () => {
  it("renders the original tool's block: progress, ETA, per-stage rates, queue usage and changes, failures", () => {
    assert.strictEqual(
      renderStatus(current, previous),
      [
        "*******************************************************************",
        "    Status at 2026-11-22 01:01:40 UTC (running for 0h 01m 40s, last status 10.0s ago)",
        "",
        "Progress Overview:",
        "    25.00%, 2500 of 10000 objects migrated, ETA: 2026-11-22 01:06:40 UTC (0h 05m 00s)",
        "    125.0 MiB of 500.0 MiB; table: 12000 rows, 2000 already migrated before this run, largest object 20.0 MiB",
        "",
        "Processed Objects by Stage:",
        "    source           - processed:      3000, current:     30.0 obj/s     1.50 MiB/s, average:     30.0 obj/s     1.50 MiB/s",
        "    read             - processed:      2600, current:     20.0 obj/s     1.00 MiB/s, average:     26.0 obj/s     1.30 MiB/s",
        "    store            - processed:      2550, current:     25.0 obj/s     1.30 MiB/s, average:     25.5 obj/s     1.28 MiB/s",
        "    commit           - processed:      2500, current:     25.0 obj/s     1.25 MiB/s, average:     25.0 obj/s     1.25 MiB/s",
        "",
        "Queue Usage:",
        "    read queue       - used    400 of   8192,   4.88% full, changed by:   +100",
        "    store queue      - used     50 of   1024,   4.88% full, changed by:    -10",
        "    commit queue     - used      0 of   8192,   0.00% full, changed by:      0",
        "",
        "Concurrency: store 8 of 32 at once (8 running), lowered 2 times by throttling",
        "Failures: 3 rows reported and skipped (MalformedHash: 1, SizeMismatch: 2)",
        "Vanished: 4 rows deleted by the application during the run (not failures)",
        "Retries: 4, objects already in the store: 7"
      ].join("\n")
    )
  })

  it("without a previous block: current rates are the averages, queue changes count from empty", () => {
    const block = renderStatus(current)
    assert.include(block, "(running for 0h 01m 40s)")
    assert.include(block, "    read             - processed:      2600, current:     26.0 obj/s     1.30 MiB/s, average:     26.0 obj/s     1.30 MiB/s")
    assert.include(block, "    read queue       - used    400 of   8192,   4.88% full, changed by:   +400")
  })

  it("unknown counts, nothing done yet, all done", () => {
    const unknown = renderStatus({ ...current, counts: undefined, failed: 0, failuresByReason: {} })
    assert.include(unknown, "    UNKNOWN, 2500 of UNKNOWN objects migrated, ETA: UNKNOWN")
    assert.include(unknown, "Failures: 0 rows reported and skipped\n")
    const nothing = renderStatus({ ...current, stages: { ...current.stages, commit: { objects: 0, bytes: 0 } } })
    assert.include(nothing, "    0.00%, 0 of 10000 objects migrated, ETA: UNKNOWN")
    const done = renderStatus({
      ...current,
      counts: { total: 2500, remaining: 2500, remainingBytes: 125 * MiB, largest: MiB }
    })
    assert.include(done, "    100.00%, 2500 of 2500 objects migrated, ETA: done")
    const empty = renderStatus({ ...current, at: current.startedAt, counts: { total: 0, remaining: 0, remainingBytes: 0, largest: 0 } })
    assert.include(empty, "100.00%, 2500 of 0 objects migrated, ETA: done")
    assert.include(empty, "current:      0.0 obj/s     0.00 MiB/s")
  })

  it("says which dependency the run waits for, since when and how long it has left", () => {
    const block = renderStatus({
      ...current,
      unavailable: [
        { dependency: "PostgreSQL", since: current.at - 5_000, giveUpAt: current.at + 295_000, operations: 1, detail: "EPIPE" },
        { dependency: "S3", since: current.at - 42_000, giveUpAt: current.at + 198_000, operations: 5, detail: "SlowDown (HTTP 503)" }
      ]
    })
    assert.include(
      block,
      "WAITING:\n" +
        "    PostgreSQL unavailable for 5 s, retrying; 4 min 55 s left (1 operation; last error: EPIPE)\n" +
        "    S3 unavailable for 42 s, retrying; 3 min 18 s left (5 operations; last error: SlowDown (HTTP 503))\n\n" +
        "Progress Overview:"
    )
    assert.notInclude(renderStatus(current), "WAITING")
    assert.strictEqual(formatWait(3_723_000), "1 h 02 min")
  })

  it("formats long ETAs in hours", () => {
    assert.strictEqual(formatElapsed(0), "0h 00m 00s")
    assert.strictEqual(formatElapsed(((27 * 60 + 3) * 60 + 9) * 1000 + 999), "27h 03m 09s")
  })
})

describe("runMonitor", () => {
  it.effect("writes a block at once, then one per interval, comparing with the previous one", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const blocks: Array<string> = []
      const queue = yield* Queue.bounded<number>(10)
      yield* metrics.registerQueue("read queue", 10, Queue.size(queue))
      const fiber = yield* Effect.forkChild(
        runMonitor("10 seconds", (block) => Effect.sync(() => void blocks.push(block)))
      )
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(blocks.length, 1)
      assert.include(blocks[0]!, "UNKNOWN, 0 of UNKNOWN objects migrated")

      yield* metrics.setCounts({ total: 100, remaining: 100, remainingBytes: 100 * MiB, largest: MiB })
      yield* metrics.processed("commit", 20, 20 * MiB)
      yield* Queue.offerAll(queue, [1, 2, 3])
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(blocks.length, 2)
      assert.include(blocks[1]!, "last status 10.0s ago")
      assert.include(blocks[1]!, "20.00%, 20 of 100 objects migrated")
      assert.include(blocks[1]!, "commit           - processed:        20, current:      2.0 obj/s     2.00 MiB/s")
      assert.include(blocks[1]!, "read queue       - used      3 of     10,  30.00% full, changed by:     +3")

      yield* metrics.processed("commit", 10, 10 * MiB)
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(blocks.length, 3)
      assert.include(blocks[2]!, "commit           - processed:        30, current:      1.0 obj/s     1.00 MiB/s, average:      1.5 obj/s")
      assert.include(blocks[2]!, "changed by:      0")
      // An operation waiting for S3 shows in the next block, and is gone once it recovered.
      const token = {}
      const t = yield* Clock.currentTimeMillis
      yield* metrics.retried("put", { token, dependency: "S3", since: t, at: t, giveUpAt: t + 300_000, detail: "ECONNREFUSED" })
      yield* TestClock.adjust("10 seconds")
      assert.include(blocks[3]!, "S3 unavailable for 10 s, retrying; 4 min 50 s left (1 operation; last error: ECONNREFUSED)")
      yield* metrics.recovered(token)
      yield* TestClock.adjust("10 seconds")
      assert.notInclude(blocks[4]!, "WAITING")
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(blocks.length, 5)
    }).pipe(Effect.provide(Metrics.layer)))
})

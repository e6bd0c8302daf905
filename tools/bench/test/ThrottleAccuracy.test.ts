import { assert, describe, it } from "@effect/vitest"
import { renderThrottleAccuracy, throttleAccuracy } from "../src/ThrottleAccuracy.ts"

const status = (seconds: number, objects: number, bytes: number) =>
  JSON.stringify({
    type: "status",
    time: new Date(Date.UTC(2026, 0, 1) + seconds * 1000).toISOString(),
    stages: { read: { objects, bytes } }
  })

describe("throttle accuracy from the JSON statuses", () => {
  it("measures the read stage over the throttled window only (before every row was taken)", () => {
    const stdout = [
      JSON.stringify({ type: "configuration", threads: { receiver: 2 } }),
      status(0, 0, 0),
      status(5, 490, 4900),
      status(10, 990, 9900),
      status(15, 1000, 10000), // all read: the tail is not the throttle's
      status(20, 1000, 10000),
      JSON.stringify({ type: "summary", migrated: 1000, completed: true })
    ].join("\n")
    const a = throttleAccuracy(stdout, "objects", 100, 1000)!
    assert.strictEqual(a.seconds, 10)
    assert.strictEqual(a.achieved, 99)
    assert.closeTo(a.deviation, -0.01, 1e-9)
    assert.strictEqual(renderThrottleAccuracy(a), "| objects | 100.00 objects/s | 99.00 objects/s | -1.00% | 10.0 s | PASS |")
    assert.strictEqual(throttleAccuracy(stdout, "bytes", 1000, 10000)!.achieved, 990)
  })

  it("too short a run gives no measurement rather than a guess", () => {
    assert.isUndefined(throttleAccuracy(status(0, 0, 0), "objects", 100, 1000))
  })
})

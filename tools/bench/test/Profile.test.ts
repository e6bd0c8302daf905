import { describe, expect, it } from "@effect/vitest"
import { areaOf, type CpuProfile, renderProfile, summarize } from "../src/Profile.ts"

const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 9 })

describe("CPU profile summary", () => {
  it("classifies functions by area", () => {
    expect(areaOf(frame("(idle)", ""))).toBe("idle (waiting on I/O)")
    expect(areaOf(frame("send", "file:///w/node_modules/@smithy/core/dist/index.js"))).toBe("AWS SDK")
    expect(areaOf(frame("append", "file:///w/node_modules/@effect/sql-pg/dist/PgProtocol.js"))).toBe("@effect/sql-pg (protocol, codecs)")
    expect(areaOf(frame("flatMap", "file:///w/node_modules/effect/dist/Effect.js"))).toBe("effect runtime")
    expect(areaOf(frame("update", "node:internal/crypto/hash"))).toBe("node crypto (hashing)")
    expect(areaOf(frame("compileSourceTextModule", "node:internal/modules/esm/utils"))).toBe("module loading and type stripping (start-up)")
    expect(areaOf(frame("put", "file:///w/libs/s3/src/S3ObjectStore.ts"))).toBe("lo-migrate s3")
  })

  it("sums self time per sample from the time deltas", () => {
    const p: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame("(root)", ""), children: [2, 3] },
        { id: 2, callFrame: frame("update", "node:internal/crypto/hash") },
        { id: 3, callFrame: frame("(idle)", "") }
      ],
      samples: [2, 2, 3, 2],
      timeDeltas: [1000, 2000, 5000, 2000], // microseconds
      startTime: 0,
      endTime: 10_000
    }
    const s = summarize(p)
    expect(s.totalMs).toBe(10)
    expect(s.byArea).toEqual([
      { area: "node crypto (hashing)", ms: 5 },
      { area: "idle (waiting on I/O)", ms: 5 }
    ])
    expect(s.byFunction[0]).toEqual({ fn: "update crypto/hash:10", area: "node crypto (hashing)", ms: 5 })
    expect(renderProfile(s)).toContain("| node crypto (hashing) | 0.01 | 50.0% |")
  })
})

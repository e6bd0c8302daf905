import { describe, expect, it } from "@effect/vitest"
import { renderStages, type StageReport, stageUtilization } from "../src/StageReport.ts"

const report = (eventLoopUtilization: number): StageReport => ({
  wallMs: 10_000,
  cpuMs: 9_000,
  eventLoopUtilization,
  config: { readers: 2, storers: 5, committers: 2, commitChunk: 100 },
  calls: {
    "readBatch (small objects)": { calls: 500, busyMs: 6_000, maxMs: 40 },
    "read (1 object)": { calls: 20, busyMs: 4_000, maxMs: 900 },
    put: { calls: 20_000, busyMs: 47_500, maxMs: 1200 },
    "commit (batch)": { calls: 200, busyMs: 1_000, maxMs: 30 }
  },
  queueFill: { "store queue": { meanUsed: 900, capacity: 1024 }, "commit queue": { meanUsed: 3, capacity: 8192 } },
  migrated: 20_020,
  migratedBytes: 1,
  failed: 0,
  peakRssBytes: 150 * 1048576
})

describe("stage report", () => {
  it("utilization is busy time over wall x workers, per stage", () => {
    expect(stageUtilization(report(0.5))).toEqual([
      { stage: "read", utilization: 0.5 },
      { stage: "store", utilization: 0.95 },
      { stage: "commit", utilization: 0.05 }
    ])
  })

  it("names the busiest stage, or the saturated event loop", () => {
    const calm = renderStages(report(0.5))
    expect(calm).toContain("stage utilization: read 50%, store 95%, commit 5%")
    expect(calm).toContain("the busiest stage is store (95%")
    expect(calm).toMatch(/\| store queue +\| +900 \| +1024 \| +88% \|/)
    expect(renderStages(report(0.97))).toContain("CPU-bound on its one thread")
  })
})

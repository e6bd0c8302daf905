import { describe, expect, it } from "@effect/vitest"
import { fmtNum, type Measurement, mibPerSec, objPerSec, renderTable, renderVerdict, resultsTable, verdict } from "../src/Report.ts"

const MiB = 1024 * 1024
const m = (name: string, kind: Measurement["kind"], wallMs: number, extra: Partial<Measurement> = {}): Measurement => ({
  name,
  kind,
  objects: 1000,
  bytes: 500 * MiB,
  wallMs,
  cpuMs: 2000,
  peakRssBytes: 100 * MiB,
  ...extra
})

describe("report formatting", () => {
  it("formats numbers with a few significant digits", () => {
    expect(fmtNum(1234.6)).toBe("1235")
    expect(fmtNum(12.345)).toBe("12.3")
    expect(fmtNum(0.012345)).toBe("0.0123")
    expect(fmtNum(0)).toBe("0")
    expect(fmtNum(undefined)).toBe("–")
    expect(fmtNum(Number.NaN)).toBe("–")
  })

  it("computes rates", () => {
    const x = m("x", "naive", 10_000)
    expect(mibPerSec(x)).toBe(50)
    expect(objPerSec(x)).toBe(100)
  })

  it("renders an aligned Markdown table", () => {
    const t = renderTable(["a", "bb"], [["xyz", "1"], ["q", "22"]], ["l", "r"])
    expect(t.split("\n")).toEqual([
      "| a   | bb |",
      "|-----|---:|",
      "| xyz |  1 |",
      "| q   | 22 |"
    ])
    const lines = resultsTable([m("PG read limit", "pg-limit", 5000)]).split("\n")
    expect(lines).toHaveLength(3)
    const cells = lines[2]!.split("|").map((c) => c.trim())
    expect(cells.slice(1, 8)).toEqual(["PG read limit", "1000", "500", "5.00", "200", "100", "100"])
    expect(new Set(lines.map((l) => l.length)).size).toBe(1)
  })

  it("computes ratios against the slower limit and the naive baseline, and the targets", () => {
    const ms = [
      m("PG read limit: lo_get batches", "pg-limit", 5_000),
      m("PG read limit: loread", "pg-limit", 8_000),
      m("S3 write limit", "s3-limit", 10_000), // the slower limit: 50 MiB/s
      m("naive", "naive", 100_000), // 5 MiB/s
      m("combined limit", "combined-limit", 15_000),
      m("migrator (defaults)", "migrator", 12_000, { peakRssBytes: 200 * MiB }), // 41.7 MiB/s
      m("migrator (tuned)", "migrator", 11_000)
    ]
    const v = verdict(ms, "default")
    const r = (label: string) => v.ratios.find((x) => x.label === label)?.mib
    expect(r("migrator (defaults) / PG read limit")).toBeCloseTo(5 / 12)
    expect(r("migrator (defaults) / slower limit")).toBeCloseTo(10 / 12)
    expect(r("migrator (defaults) / naive")).toBeCloseTo(100 / 12)
    expect(r("migrator (tuned) / slower limit")).toBeCloseTo(10 / 11)
    expect(r("migrator (defaults) / combined limit")).toBeCloseTo(15 / 12)
    expect(v.targets.map((t) => t.pass)).toEqual([true, true, true])
    const text = renderVerdict(v)
    expect(text).toContain("PASS  migrator (defaults) >= 80% of the slower limit: 83% of S3 write limit")

    const slow = verdict([...ms.filter((x) => x.name !== "migrator (defaults)"), m("migrator (defaults)", "migrator", 40_000, { peakRssBytes: 400 * MiB })], "huge")
    expect(slow.targets.map((t) => t.pass)).toEqual([false, false, false])
    expect(renderVerdict(slow)).toContain("FAIL  migrator (defaults) peak RSS < 300 MiB (mix huge): 400 MiB")
  })

  it("leaves failed or missing measurements out of the ratios", () => {
    const v = verdict([m("migrator (defaults)", "migrator", 1000, { error: "exit 3" })], "quick")
    expect(v.targets.map((t) => t.pass)).toEqual([undefined, undefined, undefined])
    expect(renderVerdict(v)).toContain("SKIP")
  })

  it("a baseline that moved nothing (it found no row to migrate) is not a baseline: SKIP, never PASS", () => {
    const v = verdict([
      m("S3 write limit", "s3-limit", 10_000),
      m("naive", "naive", 15, { objects: 0, bytes: 0 }),
      m("migrator (defaults)", "migrator", 12_000, { peakRssBytes: 200 * MiB })
    ], "quick")
    expect(v.ratios.find((x) => x.label === "migrator (defaults) / naive")?.mib).toBeUndefined()
    expect(renderVerdict(v)).toContain("SKIP  migrator (defaults) >= 5x naive: not measured")
  })
})

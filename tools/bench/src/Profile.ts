/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and says where the time went: self time by function and by area
 * (Effect runtime, SQL driver, AWS SDK, hashing, GC, idle, ...).
 */
import { readFileSync } from "node:fs"
import { renderTable } from "./Format.ts"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
export interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly startTime: number
  readonly endTime: number
}

/** The area a function belongs to, from its script URL and name. */
export const areaOf = (f: CallFrame): string => {
  const u = f.url
  if (f.functionName === "(idle)") return "idle (waiting on I/O)"
  if (f.functionName === "(garbage collector)") return "garbage collector"
  if (f.functionName === "(program)") return "V8/native (program)"
  if (u.includes("/@effect/sql-pg/")) return "@effect/sql-pg (protocol, codecs)"
  if (u.includes("/effect/dist/") || u.includes("/effect/src/")) return "effect runtime"
  if (u.includes("/@aws-sdk/") || u.includes("/@smithy/") || u.includes("/@aws-crypto/")) return "AWS SDK"
  if (u.includes("/libs/core/")) return "lo-migrate core (digests)"
  if (u.includes("/libs/postgres/")) return "lo-migrate postgres"
  if (u.includes("/libs/s3/")) return "lo-migrate s3"
  if (u.includes("/libs/pipeline/")) return "lo-migrate pipeline"
  if (u.includes("/apps/migrator/")) return "lo-migrate app"
  if (u.startsWith("node:internal/modules") || u.startsWith("node:internal/deps/amaro") || f.functionName === "compileSourceTextModule") {
    return "module loading and type stripping (start-up)"
  }
  if (u.startsWith("node:crypto") || u.includes("internal/crypto")) return "node crypto (hashing)"
  if (u.startsWith("node:") || u === "") return u === "" ? "native / builtins" : "node core (streams, net, fs)"
  if (u.includes("/node_modules/")) return `other: ${u.split("/node_modules/").pop()?.split("/")[0] ?? u}`
  return "other"
}

export interface ProfileSummary {
  readonly totalMs: number
  readonly byArea: ReadonlyArray<{ readonly area: string; readonly ms: number }>
  readonly byFunction: ReadonlyArray<{ readonly fn: string; readonly area: string; readonly ms: number }>
}

export const summarize = (p: CpuProfile): ProfileSummary => {
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000)
  }
  const area = new Map<string, number>()
  const fn = new Map<string, { area: string; ms: number }>()
  let totalMs = 0
  for (const [id, ms] of self) {
    const node = byId.get(id)
    if (node === undefined) continue
    totalMs += ms
    const a = areaOf(node.callFrame)
    area.set(a, (area.get(a) ?? 0) + ms)
    const file = node.callFrame.url.split("/").slice(-2).join("/")
    const key = `${node.callFrame.functionName || "(anonymous)"} ${file}:${node.callFrame.lineNumber + 1}`
    const cur = fn.get(key) ?? { area: a, ms: 0 }
    cur.ms += ms
    fn.set(key, cur)
  }
  return {
    totalMs,
    byArea: [...area].map(([a, ms]) => ({ area: a, ms })).sort((x, y) => y.ms - x.ms),
    byFunction: [...fn].map(([f, v]) => ({ fn: f, area: v.area, ms: v.ms })).sort((x, y) => y.ms - x.ms)
  }
}

export const readProfile = (path: string): CpuProfile => JSON.parse(readFileSync(path, "utf8")) as CpuProfile

export const renderProfile = (s: ProfileSummary, top = 15): string => {
  const pct = (ms: number) => `${((ms / s.totalMs) * 100).toFixed(1)}%`
  return [
    renderTable(["area (self time)", "s", "share"], s.byArea.map((a) => [a.area, (a.ms / 1000).toFixed(2), pct(a.ms)]), ["l", "r", "r"]),
    "",
    renderTable(
      ["top functions (self time)", "area", "s", "share"],
      s.byFunction.slice(0, top).map((f) => [f.fn, f.area, (f.ms / 1000).toFixed(2), pct(f.ms)]),
      ["l", "l", "r", "r"]
    )
  ].join("\n")
}

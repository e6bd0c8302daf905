/**
 * Renders what `stages.ts` measured: per-port busy time and utilization, queue fill, event-loop utilization, and a
 * plain-words reading of which stage limits the run.
 */
import { fmtNum, fmtPct, renderTable } from "./Format.ts"

export interface CallStats {
  readonly calls: number
  readonly busyMs: number
  readonly maxMs: number
}

export interface StageReport {
  readonly wallMs: number
  readonly cpuMs: number
  readonly eventLoopUtilization: number
  readonly config: { readonly readers: number; readonly storers: number; readonly committers: number; readonly commitChunk: number }
  readonly calls: Readonly<Record<string, CallStats>>
  readonly queueFill: Readonly<Record<string, { readonly meanUsed: number; readonly capacity: number }>>
  readonly migrated: number
  readonly migratedBytes: number
  readonly failed: number
  readonly peakRssBytes: number
  /** Peaks of process.memoryUsage() sampled every 100 ms: where the resident memory is (V8 heap vs buffers). */
  readonly memoryPeaks?: {
    readonly rss: number
    readonly heapTotal: number
    readonly heapUsed: number
    readonly external: number
    readonly arrayBuffers: number
  }
}

const mib = (bytes: number): string => fmtNum(bytes / 1048576)

const workersOf = (call: string, c: StageReport["config"]): number =>
  call.startsWith("read") ? c.readers : call === "put" ? c.storers : c.committers

/** Utilization of each stage: its workers' busy time over (wall × workers). */
export const stageUtilization = (r: StageReport): ReadonlyArray<{ readonly stage: string; readonly utilization: number }> => {
  const busy = { read: 0, store: 0, commit: 0 }
  for (const [call, s] of Object.entries(r.calls)) {
    if (call.startsWith("read")) busy.read += s.busyMs
    else if (call === "put") busy.store += s.busyMs
    else busy.commit += s.busyMs
  }
  return [
    { stage: "read", utilization: busy.read / (r.wallMs * r.config.readers) },
    { stage: "store", utilization: busy.store / (r.wallMs * r.config.storers) },
    { stage: "commit", utilization: busy.commit / (r.wallMs * r.config.committers) }
  ]
}

export const renderStages = (r: StageReport): string => {
  const calls = renderTable(
    ["port call", "calls", "busy s", "mean ms", "max ms", "workers", "utilization"],
    Object.entries(r.calls).map(([call, s]) => [
      call,
      String(s.calls),
      fmtNum(s.busyMs / 1000),
      fmtNum(s.busyMs / Math.max(1, s.calls)),
      fmtNum(s.maxMs),
      String(workersOf(call, r.config)),
      fmtPct(s.busyMs / (r.wallMs * workersOf(call, r.config)))
    ]),
    ["l", "r", "r", "r", "r", "r", "r"]
  )
  const queues = renderTable(
    ["queue", "mean used", "capacity", "mean fill"],
    Object.entries(r.queueFill).map(([q, f]) => [q, fmtNum(f.meanUsed), String(f.capacity), fmtPct(f.meanUsed / f.capacity)]),
    ["l", "r", "r", "r"]
  )
  const util = stageUtilization(r)
  const busiest = [...util].sort((a, b) => b.utilization - a.utilization)[0]!
  const lines = [
    `wall ${fmtNum(r.wallMs / 1000)} s, CPU ${fmtNum(r.cpuMs / 1000)} s (${fmtPct(r.cpuMs / r.wallMs)} of one core), ` +
      `event-loop utilization ${fmtPct(r.eventLoopUtilization)}, peak RSS ${fmtNum(r.peakRssBytes / 1048576)} MiB, ` +
      `${r.migrated} objects, ${r.failed} failed`,
    `stage utilization: ${util.map((u) => `${u.stage} ${fmtPct(u.utilization)}`).join(", ")}`,
    ...(r.memoryPeaks === undefined ? [] : [
      `memory peaks (sampled): rss ${mib(r.memoryPeaks.rss)}, V8 heap total ${mib(r.memoryPeaks.heapTotal)} / used ` +
      `${mib(r.memoryPeaks.heapUsed)}, external ${mib(r.memoryPeaks.external)} (ArrayBuffers ${mib(r.memoryPeaks.arrayBuffers)}) MiB`
    ]),
    r.eventLoopUtilization > 0.85
      ? `reading: the JavaScript thread is busy ${fmtPct(r.eventLoopUtilization)} of the time, so the port calls' latencies ` +
        "include waiting for it: the process is CPU-bound on its one thread (see the profile for where)."
      : `reading: the busiest stage is ${busiest.stage} (${fmtPct(busiest.utilization)} of its workers' time); ` +
        "a stage near 100% with a full queue in front of it is the bottleneck."
  ]
  return [...lines, "", calls, "", queues].join("\n")
}

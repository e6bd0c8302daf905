/**
 * The throttle's accuracy over a run: the migrator runs with `--max-objects-per-second` or `--max-bandwidth` and
 * `--log-format json`, and its JSON statuses give the read stage's counters over time. The achieved rate is measured
 * over the throttled part of the run: from the first status to the last one before the read stage has taken every
 * row (after that nothing is left to throttle, and the tail of uploads and commits is not the throttle's doing).
 */

export interface ThrottleAccuracy {
  readonly resource: "objects" | "bytes"
  /** Units per second the run was limited to. */
  readonly limit: number
  /** Units per second achieved by the read stage over `seconds`. */
  readonly achieved: number
  readonly seconds: number
  /** achieved / limit - 1 (positive: above the limit). */
  readonly deviation: number
}

interface Status {
  readonly type: string
  readonly time: string
  readonly stages: { readonly read: { readonly objects: number; readonly bytes: number } }
}

/** `undefined` when the run printed fewer than two statuses inside the throttled window. */
export const throttleAccuracy = (
  stdout: string,
  resource: "objects" | "bytes",
  limit: number,
  total: number
): ThrottleAccuracy | undefined => {
  // every line is a JSON record (the configuration, the statuses, the summary): only the statuses count here
  const statuses = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Status)
    .filter((r) => r.type === "status")
  const read = (s: Status) => (resource === "objects" ? s.stages.read.objects : s.stages.read.bytes)
  const window = statuses.filter((s) => read(s) < total)
  const first = window[0]
  const last = window.at(-1)
  if (first === undefined || last === undefined || last === first) return undefined
  const seconds = (Date.parse(last.time) - Date.parse(first.time)) / 1000
  const achieved = (read(last) - read(first)) / seconds
  return { resource, limit, achieved, seconds, deviation: achieved / limit - 1 }
}

export const renderThrottleAccuracy = (a: ThrottleAccuracy): string => {
  const unit = a.resource === "objects" ? "objects/s" : "MiB/s"
  const scale = a.resource === "objects" ? 1 : 1024 * 1024
  return `| ${a.resource} | ${(a.limit / scale).toFixed(2)} ${unit} | ${(a.achieved / scale).toFixed(2)} ${unit} | ` +
    `${(a.deviation * 100).toFixed(2)}% | ${a.seconds.toFixed(1)} s | ${Math.abs(a.deviation) <= 0.05 ? "PASS" : "FAIL"} |`
}

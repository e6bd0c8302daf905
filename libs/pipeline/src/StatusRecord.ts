/**
 * The monitor's status for log collectors and pipes (`--log-format json|line`), from the same snapshots as the text
 * block of Monitor.ts: `statusRecord` is one JSON-ready object per interval (`type: "status"`, fixed field names,
 * numbers in base units: objects, bytes, seconds), `renderStatusJson` prints it on one line, and `renderStatusLine` is a one-line text form for
 * piped output. All pure: snapshots in, text out.
 */
import type { MetricsSnapshot, Stage } from "@lo-migrate/core"
import { formatBytes, Stages } from "@lo-migrate/core"
import { formatElapsed, formatTimestamp, formatWait, statusBytes } from "./Monitor.ts"
import { renderLimits, type ThrottleLimits } from "./Throttle.ts"

/** The throttle limits the status shows beside the rates (`--max-objects-per-second`, `--max-bandwidth`). */
export type StatusLimits = ThrottleLimits

export interface StageRecord {
  readonly objects: number
  readonly bytes: number
  /** Since the previous status (since the start without one). */
  readonly objectsPerSecond: number
  readonly bytesPerSecond: number
}

export interface StatusRecord {
  /** What the record is, among the JSON lines of a run's stdout (the configuration and the summary have theirs). */
  readonly type: "status"
  /** ISO 8601, UTC. */
  readonly time: string
  readonly elapsedSeconds: number
  readonly progress: {
    /** Rows committed by this run. */
    readonly migrated: number
    readonly migratedBytes: number
    /** Rows whose sha2 was NULL when the run started; null until counted. */
    readonly pending: number | null
    readonly pendingBytes: number | null
    readonly percent: number | null
    /** Seconds left at the average rate so far; null when unknown. */
    readonly etaSeconds: number | null
  }
  readonly stages: { readonly [S in Stage]: StageRecord }
  readonly queues: Readonly<Record<string, { readonly used: number; readonly capacity: number }>>
  readonly concurrency: Readonly<
    Record<string, { readonly limit: number; readonly max: number; readonly inFlight: number; readonly decreases: number }>
  >
  readonly throttle: { readonly objectsPerSecond: number | null; readonly bytesPerSecond: number | null }
  readonly failed: number
  readonly failuresByReason: Readonly<Record<string, number>>
  readonly vanished: number
  readonly retries: number
  readonly alreadyPresent: number
  readonly waiting: ReadonlyArray<{
    readonly dependency: string
    readonly forSeconds: number
    readonly giveUpInSeconds: number
    readonly operations: number
    readonly detail: string
  }>
}

const perSecond = (amount: number, millis: number): number => (millis > 0 ? (amount * 1000) / millis : 0)
const round = (n: number, digits = 3): number => Number(n.toFixed(digits))

/** One status as a plain object (see `StatusRecord`); without `previous`, rates are averages since the start. */
export const statusRecord = (current: MetricsSnapshot, previous?: MetricsSnapshot, limits?: StatusLimits): StatusRecord => {
  const elapsed = current.at - current.startedAt
  const since = previous === undefined ? elapsed : current.at - previous.at
  const done = current.stages.commit.objects
  const counts = current.counts
  let percent: number | null = null
  let eta: number | null = null
  if (counts !== undefined) {
    percent = counts.remaining === 0 ? 100 : round(Math.min(100, (done / counts.remaining) * 100), 2)
    if (done >= counts.remaining) eta = 0
    else if (done > 0 && elapsed > 0) eta = Math.round(((counts.remaining - done) * elapsed) / done / 1000)
  }
  const stages = Object.fromEntries(Stages.map((stage) => {
    const now = current.stages[stage]
    const before = previous?.stages[stage] ?? { objects: 0, bytes: 0 }
    return [stage, {
      objects: now.objects,
      bytes: now.bytes,
      objectsPerSecond: round(perSecond(now.objects - before.objects, since)),
      bytesPerSecond: Math.round(perSecond(now.bytes - before.bytes, since))
    }]
  })) as { [S in Stage]: StageRecord }
  return {
    type: "status",
    time: new Date(current.at).toISOString(), // formatting only; the time itself comes from Clock
    elapsedSeconds: Math.round(elapsed / 1000),
    progress: {
      migrated: done,
      migratedBytes: current.stages.commit.bytes,
      pending: counts?.remaining ?? null,
      pendingBytes: counts?.remainingBytes ?? null,
      percent,
      etaSeconds: eta
    },
    stages,
    queues: Object.fromEntries(current.queues.map((q) => [q.name.replace(/ queue$/, ""), { used: q.used, capacity: q.capacity }])),
    concurrency: Object.fromEntries(
      current.concurrency.map((c) => [c.name, { limit: c.limit, max: c.max, inFlight: c.inFlight, decreases: c.decreases }])
    ),
    throttle: { objectsPerSecond: limits?.objectsPerSecond ?? null, bytesPerSecond: limits?.bytesPerSecond ?? null },
    failed: current.failed,
    failuresByReason: { ...current.failuresByReason },
    vanished: current.vanished,
    retries: current.retries,
    alreadyPresent: current.alreadyPresent,
    waiting: current.unavailable.map((u) => ({
      dependency: u.dependency,
      forSeconds: Math.round((current.at - u.since) / 1000),
      giveUpInSeconds: Math.round((u.giveUpAt - current.at) / 1000),
      operations: u.operations,
      detail: u.detail
    }))
  }
}

/** `--log-format json`: one JSON object on one line. */
export const renderStatusJson = (current: MetricsSnapshot, previous?: MetricsSnapshot, limits?: StatusLimits): string =>
  JSON.stringify(statusRecord(current, previous, limits))

const MiB = 1024 * 1024

/**
 * `--log-format line`: `2026-11-22 01:01:40 UTC 25.00% 2500/10000 objects, 125.0 MiB, 25.0 obj/s 1.25 MiB/s, ETA 0h 05m
 * 00s, queues read 400 store 50 commit 0, store 8/32, failed 3, retries 4`, with the throttle and waits when there are.
 */
export const renderStatusLine = (current: MetricsSnapshot, previous?: MetricsSnapshot, limits?: StatusLimits): string => {
  const r = statusRecord(current, previous, limits)
  const commit = r.stages.commit
  const parts = [
    `${formatTimestamp(current.at)} ${r.progress.percent === null ? "?" : r.progress.percent.toFixed(2)}% ${r.progress.migrated}/${
      r.progress.pending ?? "?"
    } objects, ${formatBytes(r.progress.migratedBytes, statusBytes)}`,
    `${commit.objectsPerSecond.toFixed(1)} obj/s ${(commit.bytesPerSecond / MiB).toFixed(2)} MiB/s`,
    `ETA ${r.progress.etaSeconds === null ? "?" : r.progress.etaSeconds === 0 ? "done" : formatElapsed(r.progress.etaSeconds * 1000)}`,
    `queues ${Object.entries(r.queues).map(([name, q]) => `${name} ${q.used}`).join(" ")}`,
    ...Object.entries(r.concurrency).map(([name, c]) => `${name} ${c.limit}/${c.max}`),
    `failed ${r.failed}`,
    `retries ${r.retries}`
  ]
  if (limits?.objectsPerSecond !== undefined || limits?.bytesPerSecond !== undefined) {
    parts.push(`throttle ${renderLimits(limits)}`)
  }
  for (const u of current.unavailable) {
    parts.push(`WAITING for ${u.dependency} ${formatWait(current.at - u.since)} (${u.operations} operations)`)
  }
  return parts.join(", ")
}

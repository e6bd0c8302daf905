/**
 * The status block the original tool's monitor printed every `--interval` seconds: progress and ETA, per-stage
 * throughput (current and average, objects/s and MiB/s), queue usage with the change since the last block, failures;
 * the adaptive concurrency of the store stage; the throttle's limits when set; and, while operations are being retried, which dependency the run waits for, since when and how long it has left.
 * `renderStatus` is pure (snapshots in, text out); `runMonitor` samples `Metrics` on a `Schedule`.
 */
import { formatBytes, type FormatBytesOptions, Metrics, type MetricsSnapshot, type Stage, Stages } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Duration from "effect/Duration"
import { renderLimits, type ThrottleLimits } from "./Throttle.ts"

const MiB = 1024 * 1024
const rule = "*".repeat(67)

const stageLabels: Record<Stage, string> = {
  source: "source",
  read: "read",
  store: "store",
  commit: "commit"
}

/** `2026-11-22 00:45:10 UTC` (always UTC, so the block does not depend on the machine's zone). */
export const formatTimestamp = (epochMillis: number): string => {
  const iso = new Date(epochMillis).toISOString() // formatting only; the time itself comes from Clock
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`
}

/** `3h 04m 05s` */
export const formatElapsed = (millis: number): string => {
  const total = Math.max(0, Math.floor(millis / 1000))
  const h = Math.floor(total / 3600)
  const m = Math.floor(total / 60) % 60
  const s = total % 60
  return `${h}h ${String(m).padStart(2, "0")}m ${String(s).padStart(2, "0")}s`
}

/** How the status blocks write bytes, with core's `formatBytes`: MiB / GiB / TiB with one decimal (`0.5 MiB`). */
export const statusBytes: FormatBytesOptions = { smallest: "MiB", decimals: 1 }

/** `42 s`, `3 min 05 s`, `1 h 02 min`: a wait as an operator reads it. */
export const formatWait = (millis: number): string => {
  const total = Math.max(0, Math.round(millis / 1000))
  if (total < 60) return `${total} s`
  if (total < 3600) return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, "0")} s`
  return `${Math.floor(total / 3600)} h ${String(Math.floor(total / 60) % 60).padStart(2, "0")} min`
}

/** `S3 unavailable for 42 s, retrying; 3 min 18 s left (4 operations; last error: ...)`, one per dependency. */
export const renderWaiting = (snapshot: MetricsSnapshot): ReadonlyArray<string> =>
  snapshot.unavailable.map((u) =>
    `${u.dependency} unavailable for ${formatWait(snapshot.at - u.since)}, retrying; ${
      formatWait(u.giveUpAt - snapshot.at)
    } left (${u.operations} operation${u.operations === 1 ? "" : "s"}; last error: ${u.detail})`
  )

const perSecond = (amount: number, millis: number): number => (millis > 0 ? (amount * 1000) / millis : 0)

const rate = (objects: number, bytes: number, millis: number): string =>
  `${perSecond(objects, millis).toFixed(1).padStart(8)} obj/s ${(perSecond(bytes, millis) / MiB).toFixed(2).padStart(8)} MiB/s`

const signed = (n: number): string => (n > 0 ? `+${n}` : String(n))

/**
 * Renders one status block. Without `previous`, "current" rates are averages since the start and queue changes are
 * counted from empty queues.
 */
export const renderStatus = (current: MetricsSnapshot, previous?: MetricsSnapshot, limits?: ThrottleLimits): string => {
  const lines: Array<string> = []
  const elapsed = current.at - current.startedAt
  const sincePrevious = previous === undefined ? elapsed : current.at - previous.at

  lines.push(rule)
  lines.push(
    `    Status at ${formatTimestamp(current.at)} (running for ${formatElapsed(elapsed)}${
      previous === undefined ? "" : `, last status ${(sincePrevious / 1000).toFixed(1)}s ago`
    })`
  )
  const waiting = renderWaiting(current)
  if (waiting.length > 0) {
    lines.push("WAITING:")
    for (const line of waiting) lines.push(`    ${line}`)
  }
  lines.push("")

  // Progress: rows committed by this run out of the rows whose sha2 was NULL when it started.
  const done = current.stages.commit.objects
  const doneBytes = current.stages.commit.bytes
  const counts = current.counts
  lines.push("Progress Overview:")
  if (counts === undefined) {
    lines.push(`    UNKNOWN, ${done} of UNKNOWN objects migrated, ETA: UNKNOWN`)
    lines.push(`    ${formatBytes(doneBytes, statusBytes)} of UNKNOWN`)
  } else {
    const total = counts.remaining
    const percent = total === 0 ? 100 : Math.min(100, (done / total) * 100)
    let eta = "UNKNOWN"
    if (done >= total) {
      eta = "done"
    } else if (done > 0 && elapsed > 0) {
      const etaMillis = ((total - done) * elapsed) / done
      eta = `${formatTimestamp(current.at + etaMillis)} (${formatElapsed(etaMillis)})`
    }
    lines.push(`    ${percent.toFixed(2)}%, ${done} of ${total} objects migrated, ETA: ${eta}`)
    lines.push(
      `    ${formatBytes(doneBytes, statusBytes)} of ${formatBytes(counts.remainingBytes, statusBytes)}; table: ${counts.total} rows, ${
        counts.total - counts.remaining
      } already migrated before this run, largest object ${formatBytes(counts.largest, statusBytes)}`
    )
  }
  lines.push("")

  lines.push("Processed Objects by Stage:")
  for (const stage of Stages) {
    const now = current.stages[stage]
    const before = previous?.stages[stage] ?? { objects: 0, bytes: 0 }
    lines.push(
      `    ${stageLabels[stage].padEnd(16)} - processed: ${String(now.objects).padStart(9)}, current: ${
        rate(now.objects - before.objects, now.bytes - before.bytes, sincePrevious)
      }, average: ${rate(now.objects, now.bytes, elapsed)}`
    )
  }
  lines.push("")

  lines.push("Queue Usage:")
  for (const q of current.queues) {
    const before = previous?.queues.find((p) => p.name === q.name)?.used ?? 0
    const percent = q.capacity > 0 ? (q.used / q.capacity) * 100 : 0
    lines.push(
      `    ${q.name.padEnd(16)} - used ${String(q.used).padStart(6)} of ${String(q.capacity).padStart(6)}, ${
        percent.toFixed(2).padStart(6)
      }% full, changed by: ${signed(q.used - before).padStart(6)}`
    )
  }
  lines.push("")

  // The adaptive limits (the store stage's, lowered by throttling): what is allowed now, of the configured maximum.
  for (const c of current.concurrency) {
    lines.push(
      `Concurrency: ${c.name} ${c.limit} of ${c.max} at once (${c.inFlight} running)${
        c.decreases > 0 ? `, lowered ${c.decreases} time${c.decreases === 1 ? "" : "s"} by throttling` : ""
      }`
    )
  }
  if (limits?.objectsPerSecond !== undefined || limits?.bytesPerSecond !== undefined) {
    lines.push(`Throttle: at most ${renderLimits(limits)} into the read stage (this process)`)
  }
  const reasons = Object.entries(current.failuresByReason)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([reason, n]) => `${reason}: ${n}`)
  lines.push(
    `Failures: ${current.failed} rows reported and skipped${reasons.length > 0 ? ` (${reasons.join(", ")})` : ""}`
  )
  lines.push(`Vanished: ${current.vanished} rows deleted by the application during the run (not failures)`)
  lines.push(`Retries: ${current.retries}, objects already in the store: ${current.alreadyPresent}`)
  return lines.join("\n")
}

/**
 * Writes a status block (`render`, default the text block) at once and then every `interval` (a `Schedule.spaced`),
 * each compared with the one before. Runs until interrupted (fork it beside `runMigration`).
 */
export const runMonitor = Effect.fn("runMonitor")(function*(
  interval: Duration.Input,
  write: (block: string) => Effect.Effect<void>,
  render: (current: MetricsSnapshot, previous?: MetricsSnapshot) => string = renderStatus
): Effect.fn.Return<never, never, Metrics> {
  const metrics = yield* Metrics
  let previous: MetricsSnapshot | undefined
  const tick = Effect.flatMap(metrics.snapshot, (current) =>
    Effect.andThen(
      write(render(current, previous)),
      Effect.sync(() => {
        previous = current
      })
    ))
  // the schedule recurs forever: the repeat ends only by interruption
  return yield* tick.pipe(Effect.repeat(Schedule.spaced(interval)), Effect.andThen(Effect.never))
})

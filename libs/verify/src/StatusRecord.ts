/**
 * The verify monitor and summary as JSON-ready records, for `--log-format json` (the text forms are in Status.ts):
 * `verifyProgressRecord` is one `type: "verify-progress"` object per interval, `verifyResultRecord` the closing
 * `type: "verify-result"`. Fixed field names, numbers as numbers in base units (rows, objects, bytes, seconds).
 * `renderVerifyStatusLine` is the one-line text form of a progress record, for `--log-format line`. Pure: counters
 * in, object or text out.
 */
import { formatBytes } from "@lo-migrate/core"
import { formatElapsed, formatTimestamp, statusBytes } from "@lo-migrate/pipeline"
import type { Problem } from "./Domain.ts"
import type { Progress } from "./Progress.ts"
import type { ProgressSample } from "./Status.ts"

const perSecond = (n: number, millis: number) => (millis > 0 ? (n * 1000) / millis : 0)
const round = (n: number, digits = 3): number => Number(n.toFixed(digits))

/** The counters both records carry: what was checked and found, what the listing and the downloads cost. */
const counters = (progress: Progress) => ({
  checked: progress.checked,
  checkedBytes: progress.checkedBytes,
  ok: progress.ok,
  bad: { ...progress.bad } as Record<Problem, number>,
  badRows: progress.badRows,
  listed: progress.listed,
  listRequests: progress.listRequests,
  orphans: progress.orphans,
  orphanBytes: progress.orphanBytes,
  downloaded: progress.downloaded,
  downloadedBytes: progress.downloadedBytes,
  heads: progress.heads,
  repaired: progress.repaired,
  repairSkipped: progress.repairSkipped,
  deletedObjects: progress.deletedObjects,
  retries: progress.retries
})

/**
 * One monitor sample: `total` (rows in the range, null until counted), `percent` and `etaSeconds` (null while
 * unknown), current and average rates, and the counters.
 */
export const verifyProgressRecord = (
  progress: Progress,
  startedAt: number,
  now: ProgressSample,
  previous: ProgressSample | undefined
) => {
  const elapsed = now.at - startedAt
  const since = previous === undefined ? elapsed : now.at - previous.at
  const before = previous ?? { at: startedAt, checked: 0, listed: 0, downloadedBytes: 0 }
  const total = progress.total ?? null
  const percent = total === null ? null : total === 0 ? 100 : round(Math.min(100, (now.checked / total) * 100), 2)
  const etaSeconds = total === null
    ? null
    : now.checked >= total
    ? 0
    : now.checked > 0 && elapsed > 0
    ? Math.round(((total - now.checked) * elapsed) / now.checked / 1000)
    : null
  return {
    type: "verify-progress" as const,
    time: new Date(now.at).toISOString(), // formatting only; the time itself comes from Clock
    elapsedSeconds: Math.round(elapsed / 1000),
    total,
    percent,
    etaSeconds,
    rowsPerSecond: { current: round(perSecond(now.checked - before.checked, since)), average: round(perSecond(now.checked, elapsed)) },
    listedPerSecond: round(perSecond(now.listed - before.listed, since)),
    downloadedBytesPerSecond: Math.round(perSecond(now.downloadedBytes - before.downloadedBytes, since)),
    ...counters(progress)
  }
}

/**
 * `--log-format line`: `2026-11-22 01:01:40 UTC 40.00% 40/100 rows checked, 2.0 rows/s, ETA 0h 00m 30s, ok 39, bad 1,
 * listed 42 in 1 requests, orphans 2, retries 0`, with the downloads, HEADs and repairs when there are (`?` while the
 * rows are not counted yet). The counters are those of the `verify-progress` record.
 */
export const renderVerifyStatusLine = (
  progress: Progress,
  startedAt: number,
  now: ProgressSample,
  previous: ProgressSample | undefined
): string => {
  const r = verifyProgressRecord(progress, startedAt, now, previous)
  const parts = [
    `${formatTimestamp(now.at)} ${r.percent === null ? "?" : r.percent.toFixed(2)}% ${r.checked}/${r.total ?? "?"} rows checked`,
    `${r.rowsPerSecond.current.toFixed(1)} rows/s`,
    `ETA ${r.etaSeconds === null ? "?" : r.etaSeconds === 0 ? "done" : formatElapsed(r.etaSeconds * 1000)}`,
    `ok ${r.ok}`,
    `bad ${r.badRows}`,
    `listed ${r.listed} in ${r.listRequests} requests`,
    `orphans ${r.orphans}`
  ]
  if (r.downloaded > 0 || r.heads > 0) {
    parts.push(`downloaded ${r.downloaded} (${formatBytes(r.downloadedBytes, statusBytes)}) ${r.heads} HEADs`)
  }
  if (r.repaired > 0 || r.repairSkipped > 0) parts.push(`repaired ${r.repaired} left alone ${r.repairSkipped}`)
  parts.push(`retries ${r.retries}`)
  return parts.join(", ")
}

/** The closing record: the counters, the time taken and the average rates; `good` when no row checked is bad. */
export const verifyResultRecord = (progress: Progress, elapsedMillis: number) => {
  const millis = Math.max(elapsedMillis, 1)
  return {
    type: "verify-result" as const,
    good: progress.badRows === 0,
    elapsedSeconds: round(millis / 1000, 1),
    rowsPerSecond: round(perSecond(progress.checked, millis), 1),
    listedPerSecond: round(perSecond(progress.listed, millis), 1),
    ...counters(progress)
  }
}

/**
 * The verify monitor, in the style of `migrate`'s status block: progress and ETA against the rows counted at the
 * start, rows checked per second (current and average), the listing's cost in requests, what is wrong so far, and the
 * final summary with the rate. Pure: counters in, text out; the caller samples them on its `--interval`.
 */
import { formatBytes } from "@lo-migrate/core"
import { formatElapsed, formatTimestamp, statusBytes } from "@lo-migrate/pipeline"
import type { Problem } from "./Domain.ts"
import type { Progress } from "./Progress.ts"

/** The counters at one instant, so that "current" rates can be computed between two blocks. */
export interface ProgressSample {
  readonly at: number
  readonly checked: number
  readonly listed: number
  readonly downloadedBytes: number
}

export const sampleOf = (progress: Progress, at: number): ProgressSample => ({
  at,
  checked: progress.checked,
  listed: progress.listed,
  downloadedBytes: progress.downloadedBytes
})

const rule = "*".repeat(67)
const perSecond = (n: number, millis: number) => (millis > 0 ? (n * 1000) / millis : 0)

const labels: Record<Problem, string> = {
  Missing: "missing",
  WrongSize: "wrong size",
  WrongContent: "wrong content",
  WrongContentType: "wrong Content-Type",
  MalformedSha2: "malformed sha2"
}

/** `ok 10, missing 1, wrong size 0, ...` */
export const describeCounts = (progress: Progress): string =>
  [`ok ${progress.ok}`, ...(Object.keys(labels) as Array<Problem>).map((p) => `${labels[p]} ${progress.bad[p]}`)].join(", ")

export const renderVerifyStatus = (
  progress: Progress,
  startedAt: number,
  now: ProgressSample,
  previous: ProgressSample | undefined
): string => {
  const elapsed = now.at - startedAt
  const since = previous === undefined ? elapsed : now.at - previous.at
  const before = previous ?? { at: startedAt, checked: 0, listed: 0, downloadedBytes: 0 }
  const lines: Array<string> = [rule, `    Verify status at ${formatTimestamp(now.at)} (running for ${formatElapsed(elapsed)})`, ""]
  const total = progress.total
  if (total === undefined) {
    lines.push(`Progress: ${now.checked} of UNKNOWN rows checked, ETA: UNKNOWN`)
  } else {
    const percent = total === 0 ? 100 : Math.min(100, (now.checked / total) * 100)
    const eta = now.checked >= total
      ? "done"
      : now.checked > 0
      ? (() => {
        const millis = ((total - now.checked) * elapsed) / now.checked
        return `${formatTimestamp(now.at + millis)} (${formatElapsed(millis)})`
      })()
      : "UNKNOWN"
    lines.push(`Progress: ${percent.toFixed(2)}%, ${now.checked} of ${total} rows checked, ETA: ${eta}`)
  }
  lines.push(
    `Rows:     current ${perSecond(now.checked - before.checked, since).toFixed(1)} rows/s, average ${
      perSecond(now.checked, elapsed).toFixed(1)
    } rows/s; ${describeCounts(progress)}`
  )
  lines.push(
    `Listing:  ${progress.listed} objects in ${progress.listRequests} ListObjectsV2 requests, current ${
      perSecond(now.listed - before.listed, since).toFixed(1)
    } obj/s; orphans ${progress.orphans} (${formatBytes(progress.orphanBytes, statusBytes)})`
  )
  if (progress.downloaded > 0 || progress.heads > 0) {
    lines.push(
      `Objects:  ${progress.downloaded} downloaded (${formatBytes(progress.downloadedBytes, statusBytes)}, current ${
        (perSecond(now.downloadedBytes - before.downloadedBytes, since) / (1024 * 1024)).toFixed(2)
      } MiB/s), ${progress.heads} HEADs`
    )
  }
  if (progress.repaired > 0 || progress.repairSkipped > 0) {
    lines.push(
      `Repair:   ${progress.repaired} rows reset to sha2 NULL, ${progress.repairSkipped} left alone (changed meanwhile), ` +
        `${progress.deletedObjects} objects with wrong content deleted`
    )
  }
  lines.push(`Retries:  ${progress.retries}`)
  return lines.join("\n")
}

/** The closing summary: counts, the listing's cost and the rate. */
export const renderVerifySummary = (progress: Progress, elapsedMillis: number): string => {
  const seconds = Math.max(elapsedMillis, 1) / 1000
  return [
    `verify: ${progress.checked} rows checked (${formatBytes(progress.checkedBytes, statusBytes)}): ${describeCounts(progress)}`,
    `verify: ${progress.listed} objects listed in ${progress.listRequests} ListObjectsV2 requests; ${progress.orphans} ` +
    `orphans (${formatBytes(progress.orphanBytes, statusBytes)}) no row references`,
    ...(progress.downloaded > 0 || progress.heads > 0
      ? [`verify: ${progress.downloaded} objects downloaded and hashed (${formatBytes(progress.downloadedBytes, statusBytes)}), ${progress.heads} HEADs`]
      : []),
    ...(progress.repaired > 0 || progress.repairSkipped > 0
      ? [`verify: repair: ${progress.repaired} rows reset to sha2 NULL, ${progress.repairSkipped} left alone, ` +
        `${progress.deletedObjects} objects deleted`]
      : []),
    `verify: ${(progress.checked / seconds).toFixed(1)} rows/s, ${(progress.listed / seconds).toFixed(1)} objects/s ` +
    `listed, in ${seconds.toFixed(1)} s`
  ].join("\n")
}

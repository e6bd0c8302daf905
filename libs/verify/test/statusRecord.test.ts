/**
 * The JSON records of the verify monitor (`verifyProgressRecord`, `verifyResultRecord`): numbers as numbers, null
 * while unknown, rates between two samples, and the counters of `Progress`; and the one-line form of a progress record
 * (`renderVerifyStatusLine`, `--log-format line`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Progress, renderVerifyStatusLine, sampleOf, verifyProgressRecord, verifyResultRecord } from "../src/index.ts"

const progressOf = (checked: number, total: number | undefined) => {
  const progress = new Progress()
  progress.checked = checked
  progress.ok = checked - 1
  progress.bad.Missing = 1
  progress.checkedBytes = checked * 100
  progress.listed = checked + 2
  progress.listRequests = 1
  progress.orphans = 2
  progress.orphanBytes = 50
  progress.total = total
  return progress
}

describe("verify status records", () => {
  it("progress: percent, ETA and current rate against the previous sample; null before the count", () => {
    const startedAt = Date.UTC(2026, 0, 1)
    const progress = progressOf(40, 100)
    const previous = { ...sampleOf(progress, startedAt + 10_000), checked: 20, listed: 20 }
    const record = verifyProgressRecord(progress, startedAt, sampleOf(progress, startedAt + 20_000), previous)
    assert.strictEqual(record.type, "verify-progress")
    assert.strictEqual(record.time, "2026-01-01T00:00:20.000Z")
    assert.strictEqual(record.elapsedSeconds, 20)
    assert.deepStrictEqual([record.total, record.percent, record.etaSeconds], [100, 40, 30])
    assert.deepStrictEqual(record.rowsPerSecond, { current: 2, average: 2 })
    assert.deepStrictEqual([record.checked, record.ok, record.bad.Missing, record.badRows], [40, 39, 1, 1])
    assert.deepStrictEqual([record.checkedBytes, record.listed, record.orphans, record.orphanBytes], [4000, 42, 2, 50])
    const uncounted = verifyProgressRecord(progressOf(0, undefined), startedAt, sampleOf(progress, startedAt), undefined)
    assert.deepStrictEqual([uncounted.total, uncounted.percent, uncounted.etaSeconds], [null, null, null])
    assert.strictEqual(JSON.parse(JSON.stringify(record)).checkedBytes, 4000)
  })

  it("result: good only without bad rows; average rates over the run", () => {
    const bad = verifyResultRecord(progressOf(10, 10), 4_000)
    assert.deepStrictEqual([bad.type, bad.good, bad.elapsedSeconds, bad.rowsPerSecond], ["verify-result", false, 4, 2.5])
    const clean = new Progress()
    clean.checked = 3
    clean.ok = 3
    assert.strictEqual(verifyResultRecord(clean, 0).good, true)
  })

  it("line: one line of the progress record's numbers; ? while uncounted; downloads and repairs only when there are", () => {
    const startedAt = Date.UTC(2026, 0, 1)
    const progress = progressOf(40, 100)
    const previous = { ...sampleOf(progress, startedAt + 10_000), checked: 20, listed: 20 }
    assert.strictEqual(
      renderVerifyStatusLine(progress, startedAt, sampleOf(progress, startedAt + 20_000), previous),
      "2026-01-01 00:00:20 UTC 40.00% 40/100 rows checked, 2.0 rows/s, ETA 0h 00m 30s, ok 39, bad 1, " +
        "listed 42 in 1 requests, orphans 2, retries 0"
    )
    assert.strictEqual(
      renderVerifyStatusLine(progressOf(0, undefined), startedAt, sampleOf(progressOf(0, undefined), startedAt), undefined),
      "2026-01-01 00:00:00 UTC ?% 0/? rows checked, 0.0 rows/s, ETA ?, ok -1, bad 1, listed 2 in 1 requests, orphans 2, retries 0"
    )
    const deep = progressOf(100, 100)
    deep.downloaded = 100
    deep.downloadedBytes = 3 * 1024 * 1024
    deep.repaired = 1
    const line = renderVerifyStatusLine(deep, startedAt, sampleOf(deep, startedAt + 10_000), undefined)
    assert.include(line, "100.00% 100/100 rows checked, 10.0 rows/s, ETA done, ")
    assert.include(line, ", downloaded 100 (3.0 MiB) 0 HEADs, repaired 1 left alone 0, retries 0")
    assert.notInclude(line, "\n")
  })
})

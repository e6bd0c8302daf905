/**
 * The JSON records of the verify monitor (`verifyProgressRecord`, `verifyResultRecord`): numbers as numbers, null
 * while unknown, rates between two samples, and the counters of `Progress`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Progress, sampleOf, verifyProgressRecord, verifyResultRecord } from "../src/index.ts"

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
})

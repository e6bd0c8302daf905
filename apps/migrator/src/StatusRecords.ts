/**
 * What `lo-migrate status` prints under `--log-format json`: JSON records, one a line, in the order of the text form
 * (`StatusCommand.ts`). `status-table`: the whole table (the redacted PostgreSQL URL, whether `sha2` exists, rows,
 * migrated, left, bytes left, and with `--report` the reported rows still left); `status-shard`: the same counts for
 * one shard (`shard: "I/N"`), one record each when there is more than one; `status-reports`: the failure reports
 * given with `--report` (lines per file, distinct rows, where they stand now). Numbers are numbers, bytes in bytes.
 */
import { renderShard } from "@lo-migrate/core"
import type { ReportedRows, ShardCounts, TableStatus } from "@lo-migrate/postgres"
import * as Effect from "effect/Effect"
import { printRecord } from "./RunOutput.ts"

/** What the reports given with `--report` hold: their distinct hashes, and the lines per file. */
export interface ReadReports {
  readonly hashes: ReadonlyArray<string>
  readonly lines: ReadonlyArray<readonly [string, number]>
}

type Counts = Omit<ShardCounts, "shard">

const countsOf = (c: Counts) => ({ total: c.total, migrated: c.migrated, left: c.left, bytesLeft: c.bytesLeft })

/** The counts of every shard added up: the whole table. */
export const sumShards = (shards: ReadonlyArray<ShardCounts>): Counts =>
  shards.reduce(
    (a, s) => ({
      total: a.total + s.total,
      migrated: a.migrated + s.migrated,
      left: a.left + s.left,
      bytesLeft: a.bytesLeft + s.bytesLeft
    }),
    { total: 0, migrated: 0, left: 0, bytesLeft: 0 }
  )

/** The reported rows still left, of one shard or (`undefined`) of all. */
export const reportedLeft = (reported: ReadonlyArray<ReportedRows>, shard: number | undefined): number =>
  reported.filter((r) => shard === undefined || r.shard === shard).reduce((n, r) => n + r.left, 0)

/** Where the rows of the reports stand now (the text's "failure reports: ..." line). */
export const reportsSummary = (reports: ReadReports, reported: ReadonlyArray<ReportedRows>) => {
  const found = reported.reduce((n, r) => n + r.found, 0)
  const stillLeft = reportedLeft(reported, undefined)
  return {
    distinctRows: reports.hashes.length,
    stillLeft,
    migratedSince: found - stillLeft,
    noLongerInTable: reports.hashes.length - found
  }
}

/** Prints the records of one `status` run; `reports` is undefined without `--report`. */
export const printStatusRecords = (
  postgres: string,
  status: TableStatus,
  reports: ReadReports | undefined
): Effect.Effect<void> => {
  const reported = (shard: number | undefined) =>
    reports === undefined ? {} : { reportedLeft: reportedLeft(status.reported, shard) }
  const records: Array<{ readonly type: string; readonly [field: string]: unknown }> = [
    {
      type: "status-table",
      postgres,
      hasSha2: status.hasSha2,
      pendingIndex: status.pendingIndex,
      ...countsOf(sumShards(status.shards)),
      ...reported(undefined)
    }
  ]
  if (status.shards.length > 1) {
    records.push(...status.shards.map((s) => ({
      type: "status-shard",
      shard: renderShard({ index: s.shard, count: status.shards.length }),
      ...countsOf(s),
      ...reported(s.shard)
    })))
  }
  if (reports !== undefined) {
    records.push({
      type: "status-reports",
      files: reports.lines.map(([path, lines]) => ({ path, lines })),
      ...reportsSummary(reports, status.reported)
    })
  }
  return Effect.forEach(records, printRecord, { discard: true })
}

/**
 * `lo-migrate status`: where the migration stands, from the database alone (no S3): rows, migrated, left and bytes
 * left of `_nice_binary` for the whole table and per shard of `--shards N` (or the N of `--shard I/N`), and where the
 * rows of the failure reports given with `--report FILE` (repeatable) stand now. See `TableStatus.ts` in
 * `@lo-migrate/postgres` for how it counts (exact, one sequential pass, read-only).
 *
 * Under `--log-format json` the same as JSON records, one a line (`StatusRecords.ts`).
 *
 * A server that is unavailable (refused, lost, failing over) is retried, connecting and the pass alike, within
 * `--retry-budget`, each retry logged.
 *
 * Exit codes: 0 nothing is left (the table is migrated: `finalize` may run); 1 rows are left; 2 usage (including an
 * unreadable or malformed report, and row-level security that may hide rows from the role: `RowSecurityActive`);
 * 3 the database failed.
 */
import { type DatabaseError, formatBytes, renderShard } from "@lo-migrate/core"
import {
  dropIndexStatement,
  type IndexCondition,
  PendingIndex,
  type ReportedRows,
  type RowSecurityActive,
  type ShardCounts,
  tableStatus
} from "@lo-migrate/postgres"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Redacted from "effect/Redacted"
import { redactUrl, UsageError } from "./ConfigValues.ts"
import { ExitCode } from "./ExitCode.ts"
import { fatal, retriedFor, where } from "./Outcomes.ts"
import { provideRetried, retriedStep } from "./Startup.ts"
import { printStderr } from "./Stderr.ts"
import { statusLayer } from "./LiveDatabase.ts"
import type { StatusConfig } from "./StatusOptions.ts"
import { printStatusRecords, type ReadReports, reportedLeft, reportsSummary, sumShards } from "./StatusRecords.ts"

/** The distinct hashes of failure reports (JSON lines with a `hash`), and the lines per file. */
export const readReports = Effect.fn("StatusCommand.readReports")(function*(
  paths: ReadonlyArray<string>
): Effect.fn.Return<ReadReports, UsageError, FileSystem.FileSystem> {
  const fs = yield* FileSystem.FileSystem
  const hashes = new Set<string>()
  const lines: Array<readonly [string, number]> = []
  for (const path of paths) {
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) => new UsageError({ option: "--report", detail: `cannot read ${path}: ${e.message}` }))
    )
    const entries = text.split("\n").filter((l) => l.trim() !== "")
    for (const [i, line] of entries.entries()) {
      const hash = yield* Effect.try({
        try: () => (JSON.parse(line) as { readonly hash?: unknown }).hash,
        catch: () => new UsageError({ option: "--report", detail: `${path} line ${i + 1} is not JSON` })
      })
      if (typeof hash !== "string") {
        return yield* new UsageError({
          option: "--report",
          detail: `${path} line ${i + 1} has no "hash" (not a failure report of migrate?)`
        })
      }
      hashes.add(hash)
    }
    lines.push([path, entries.length])
  }
  return { hashes: [...hashes], lines }
})

const cell = (value: string | number, width: number) => String(value).padStart(width)

const row = (label: string, c: Omit<ShardCounts, "shard">, reported: number | undefined) =>
  `  ${label.padEnd(12)}${cell(c.total, 12)}${cell(c.migrated, 12)}${cell(c.left, 12)}  ${
    formatBytes(c.bytesLeft).padStart(11)
  }${reported === undefined ? "" : cell(reported, 10)}`

/** The status table: the whole table, then one line per shard when there is more than one. */
export const renderTableStatus = (
  shards: ReadonlyArray<ShardCounts>,
  reported: ReadonlyArray<ReportedRows> | undefined
): string => {
  const leftReported = (shard: number | undefined) => (reported === undefined ? undefined : reportedLeft(reported, shard))
  const header = `  ${"shard".padEnd(12)}${cell("rows", 12)}${cell("migrated", 12)}${cell("left", 12)}  ${
    cell("bytes left", 11)
  }${reported === undefined ? "" : cell("reported", 10)}`
  const lines = [header, row("all", sumShards(shards), leftReported(undefined))]
  if (shards.length > 1) {
    lines.push(...shards.map((s) => row(renderShard({ index: s.shard, count: shards.length }), s, leftReported(s.shard))))
  }
  return lines.join("\n")
}

/** What the state of the optional index of pending rows means for the operator. */
const pendingIndexText: Record<IndexCondition, string> = {
  valid: "valid",
  building: "being built by another session (pg_stat_progress_create_index)",
  invalid: "INVALID, the leftover of a cancelled or killed build: the next run replaces it, and the application's " +
    `writes keep it up to date until then; to drop it now: ${dropIndexStatement(PendingIndex)};`,
  none: "none (a run builds it; finalize drops it)"
}

export const statusCommand = Effect.fn("StatusCommand.statusCommand")(
  function*(config: StatusConfig) {
    const reports = yield* readReports(config.reports)
    // an unavailable server (a failover, a restart) is waited out like in a run: connecting, then the pass, retried
    const budget = config.database.retryBudget
    const status = yield* tableStatus(config.shards, reports.hashes).pipe(
      retriedStep("status: count", budget),
      provideRetried(statusLayer(config.database), "status: connect", budget)
    )
    const left = status.shards.reduce((n, s) => n + s.left, 0)
    const code = left === 0 ? ExitCode.Ok : ExitCode.RowsFailed
    if (config.database.logFormat === "json") {
      const postgres = redactUrl(Redacted.value(config.database.pgUrl))
      yield* printStatusRecords(postgres, status, config.reports.length === 0 ? undefined : reports)
      return code
    }
    yield* Console.log(
      `_nice_binary at ${redactUrl(Redacted.value(config.database.pgUrl))}` +
        ` (exact counts, one pass over the table${status.hasSha2 ? "" : "; no sha2 column yet: nothing migrated"})`
    )
    yield* Console.log(renderTableStatus(status.shards, config.reports.length === 0 ? undefined : status.reported))
    if (config.reports.length > 0) {
      const r = reportsSummary(reports, status.reported)
      yield* Console.log(
        `failure reports: ${reports.lines.map(([p, n]) => `${p} (${n} lines)`).join(", ")}: ` +
          `${r.distinctRows} distinct rows, ${r.stillLeft} still left ("reported" above), ` +
          `${r.migratedSince} migrated since, ${r.noLongerInTable} no longer in the table`
      )
    }
    yield* Console.log(`index of pending rows (${PendingIndex}): ${pendingIndexText[status.pendingIndex]}`)
    yield* Console.log(left === 0 ? "nothing left to migrate" : `${left} rows left to migrate`)
    return code
  },
  (self, config) =>
    self.pipe(
      Effect.catchTags({
        UsageError: (e: UsageError) =>
          printStderr(`error: ${e.message}\nRun with --help for the options.`).pipe(Effect.as(ExitCode.Usage)),
        RowSecurityActive: (e: RowSecurityActive) =>
          printStderr(`error: ${e.message}\nNothing was counted.`).pipe(Effect.as(ExitCode.Usage)),
        // a retryable error gets here once the budget is spent
        DatabaseError: fatal(where(config.database, "-"), (e) =>
          e.retryable ? `${retriedFor(config.database.retryBudget)}; run again once the server answers.` : undefined)
      }),
      Effect.provide(NodeServices.layer)
    )
)

/**
 * What `migrate` prints on stdout besides the status: the configuration at the start, the summary and the closing
 * lines at the end, and the checks of `--dry-run`. Text under `--log-format text|line`; under `json` each is one JSON
 * object on one line whose `type` says what it is (`configuration`, `summary`, `finalize`, `check`), like the status
 * records (`type: "status"`), so that every line of stdout parses as JSON. With a shard, each record has
 * `shard: "I/N"`, as the status records do. `printRecord` prints the JSON records of the other commands too.
 */
import { formatBytes, renderShard, type RowCounts, type Shard } from "@lo-migrate/core"
import type { InFlightBound, MigrationSummary } from "@lo-migrate/pipeline"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type { MigratorConfig } from "./Config.ts"
import { configurationRecord, render } from "./ConfigRender.ts"
import type { LogFormat } from "./Options.ts"
import { withShard } from "./RunSettings.ts"

/** `" (shard 1/4)"`, or nothing without a shard: what the counts and the summary are about. */
export const ofShard = (shard: Shard | undefined) => (shard === undefined ? "" : ` (shard ${renderShard(shard)})`)

/** One JSON record on one line of stdout (`--log-format json`; every command's records go through here). */
export const printRecord = (record: { readonly type: string }): Effect.Effect<void> => Console.log(JSON.stringify(record))

/** The configuration, with the in-flight bound the settings give (`inFlightBound`). */
export const printConfiguration = (config: MigratorConfig, bound: InFlightBound): Effect.Effect<void> =>
  config.logFormat === "json"
    ? printRecord(configurationRecord(config, bound))
    : Console.log(
      `${render(config)}\n    in-flight bound:     ${bound.objects} objects, ${formatBytes(bound.bytes)} in memory at most ` +
        `(from --max-in-memory, the queue sizes, threads and --in-mem-max)`
    )

const summaryLine = (s: MigrationSummary) =>
  `${s.migrated} objects migrated (${formatBytes(s.migratedBytes)}), ${s.alreadyPresent} already in the bucket, ` +
  `${s.failed} failed, ${s.vanished} vanished (deleted by the application during the run)`

/**
 * The run's summary; then, when it neither stopped nor skipped a row, "migration completed". As JSON one record:
 * `migrated`, `migratedBytes`, `alreadyPresent`, `failed`, `vanished`, `stopped`, and `completed` for the closing line.
 */
export const printSummary = (
  config: MigratorConfig,
  summary: MigrationSummary,
  /** Rows without sha2 counted after a completed pass: inserted behind it meanwhile (undefined: not counted). */
  leftBehind?: number | undefined
): Effect.Effect<void> => {
  const completed = !summary.stopped && summary.failed === 0
  if (config.logFormat === "json") {
    return printRecord(withShard(config.shard, {
      type: "summary" as const,
      migrated: summary.migrated,
      migratedBytes: summary.migratedBytes,
      alreadyPresent: summary.alreadyPresent,
      failed: summary.failed,
      vanished: summary.vanished,
      stopped: summary.stopped,
      completed,
      ...(leftBehind === undefined ? {} : { leftBehind })
    }))
  }
  const line = Console.log(`${summaryLine(summary)}${ofShard(config.shard)}`)
  if (!completed) return line
  const done = Effect.andThen(line, Console.log(`migration completed${ofShard(config.shard)}`))
  return leftBehind === undefined || leftBehind === 0 ? done : Effect.andThen(
    done,
    Console.log(
      `${leftBehind} row(s) without sha2 are left${ofShard(config.shard)}: the application inserted them during the ` +
        "run, behind the pass (rows are taken in hash order); the next run migrates them"
    )
  )
}

/**
 * Around `--finalize` and the `finalize` command: its start and its end. As JSON `{"type":"finalize","state":"started"}`,
 * then `"done"`; `extra` fields go into the JSON record only (the command adds the redacted `postgres` URL).
 */
export const printFinalize = (
  config: { readonly logFormat: LogFormat; readonly shard?: Shard | undefined },
  state: "started" | "done",
  extra: object = {}
): Effect.Effect<void> =>
  config.logFormat === "json"
    ? printRecord(withShard(config.shard, { type: "finalize" as const, state, ...extra }))
    : Console.log(state === "started" ? finalizeStarted : "finalize: done")

export const finalizeStarted = "adding NOT NULL constraint and UNIQUE INDEX on _nice_binary.sha2 ..."

/** One passed check of `--dry-run`: `  bucket:      b reachable, ...`; as JSON `{"type":"check","check":"bucket",...}`. */
export const printCheck = (
  config: MigratorConfig,
  check: string,
  result: string,
  extra: object = {}
): Effect.Effect<void> =>
  config.logFormat === "json"
    ? printRecord(withShard(config.shard, { type: "check" as const, check, result, ...extra }))
    : Console.log(`  ${`${check}:`.padEnd(12)} ${result}`)

const describeCounts = (counts: RowCounts) =>
  `${counts.remaining} of ${counts.total} rows left to migrate, ${formatBytes(counts.remainingBytes)} ` +
  `(${counts.remainingBytes} bytes); largest object ${formatBytes(counts.largest)} (${counts.largest} bytes)`

/**
 * The rows `--dry-run` counted (`about`: `" (shard 1/4)"`, or that the whole table was counted); as JSON the check
 * `rows` with the numbers in `counts`.
 */
export const printCounts = (config: MigratorConfig, about: string, counts: RowCounts): Effect.Effect<void> =>
  config.logFormat === "json"
    ? printCheck(config, "rows", `${describeCounts(counts)}${about}`, {
      counts: {
        total: counts.total,
        remaining: counts.remaining,
        remainingBytes: counts.remainingBytes,
        largest: counts.largest
      }
    })
    : printCheck(config, `rows${about}`, describeCounts(counts))

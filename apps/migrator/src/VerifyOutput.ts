/**
 * What `verify` prints on stdout: the header, the monitor at every `--interval`, the summary and the closing line.
 * Text under `--log-format text|line` (under `line` the monitor is one status line per interval, as `migrate`'s);
 * under `json` JSON records, one a line, each with its `type`:
 * `verify-configuration` (connections with the secrets replaced, as in migrate's `configuration` record; mode, range,
 * shard, report), `verify-progress` per interval, `verify-result` at the end (its `good` replaces the closing line).
 * The records of bad rows, orphans and repairs come from the sink (`VerifyReport.ts`).
 */
import { renderShard } from "@lo-migrate/core"
import {
  type Progress,
  type ProgressSample,
  renderVerifyStatus,
  renderVerifyStatusLine,
  renderVerifySummary,
  verifyProgressRecord,
  verifyResultRecord
} from "@lo-migrate/verify"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { connectionsRecord, describeThrottle, throttleRecord } from "./ConfigRender.ts"
import { redactUrl } from "./ConfigValues.ts"
import { printRecord } from "./RunOutput.ts"
import { withShard, withShardPrefix } from "./RunSettings.ts"
import { appendOnly } from "./StatusWriter.ts"
import type { VerifyConfig } from "./VerifyOptions.ts"

const isJson = (config: VerifyConfig) => config.connection.logFormat === "json"

const describeMode = (config: VerifyConfig) =>
  [
    config.deep ? "deep (listing + download and SHA-256 of every object)" : "fast (listing: existence and size)",
    ...(config.contentType ? ["+ Content-Type"] : []),
    ...(config.sample < 1 ? [`sample ${config.sample} (seed ${config.seed})`] : []),
    ...(config.repair ? ["+ repair"] : [])
  ].join(" ")

const header = (config: VerifyConfig, throttle = describeThrottle(config.connection)) =>
  [
    "**************** verify ****************",
    `    PostgreSQL:  ${redactUrl(Redacted.value(config.connection.pgUrl))}`,
    `    S3:          ${config.connection.s3Url.toString()} bucket ${config.connection.bucket}`,
    `    mode:        ${describeMode(config)}`,
    `    range:       ${config.fromSha2 ?? "(start)"} .. ${config.toSha2 ?? "(end)"}` +
    (config.shard === undefined ? "" : ` (shard ${renderShard(config.shard)} of the SHA-256 keys)`),
    `    report:      ${config.connection.report ?? "(none; bad rows are logged)"}`,
    ...(throttle === undefined ? [] : [`    throttle:    ${throttle} (downloads or HEADs, this process)`])
  ].join("\n")

/** The header: what is checked where; as JSON the `verify-configuration` record (`null` for an open bound). */
export const printVerifyHeader = (config: VerifyConfig): Effect.Effect<void> =>
  isJson(config)
    ? printRecord(withShard(config.shard, {
      type: "verify-configuration" as const,
      ...connectionsRecord(config.connection),
      mode: {
        deep: config.deep,
        contentType: config.contentType,
        sample: config.sample,
        seed: config.seed,
        concurrency: config.concurrency,
        orphans: config.orphans,
        repair: config.repair,
        repairBatch: config.repairBatch
      },
      throttle: throttleRecord(config.connection),
      range: { fromSha2: config.fromSha2 ?? null, toSha2: config.toSha2 ?? null },
      report: config.connection.report ?? null
    }))
    : Console.log(header(config))

/**
 * The monitor's writer over `status` (StatusOutput): text blocks (redrawn in place on a terminal); under `line` one
 * status line per call (`shard 1/4: ` first with a shard), under JSON one `verify-progress` record; both never redrawn.
 */
export const verifyMonitor = (config: VerifyConfig, status: (block: string) => Effect.Effect<void>) => {
  const format = config.connection.logFormat
  const write = format === "text" ? status : appendOnly(status)
  return (progress: Progress, startedAt: number, now: ProgressSample, previous: ProgressSample | undefined) =>
    write(
      format === "json"
        ? JSON.stringify(withShard(config.shard, verifyProgressRecord(progress, startedAt, now, previous)))
        : format === "line"
        ? withShardPrefix(config.shard, renderVerifyStatusLine(progress, startedAt, now, previous))
        : renderVerifyStatus(progress, startedAt, now, previous)
    )
}

/** The summary, then (all good) the closing line; as JSON one `verify-result` record. */
export const printVerifyResult = (config: VerifyConfig, progress: Progress, elapsedMillis: number): Effect.Effect<void> =>
  isJson(config)
    ? printRecord(withShard(config.shard, verifyResultRecord(progress, elapsedMillis)))
    : Console.log(renderVerifySummary(progress, elapsedMillis)).pipe(
      Effect.andThen(progress.badRows > 0 ? Effect.void : Console.log("verify: every row checked is good"))
    )

/**
 * Where `verify` puts what it found: with `--report FILE` one JSON line per bad row
 * (`{"problem","hash","sha2","oid","size","mimeType","detail"}`), per orphan with `--orphans` (`{"orphan","size"}`)
 * and per `--repair` outcome (`{"repair","hash","sha2","objectDeleted"}`); the file is truncated at the start.
 * Without a file, bad rows are logged as warnings and orphans printed on stdout (`orphan KEY SIZE`). Under
 * `--log-format json` each is a JSON record on stdout instead, never also a log line (see `openVerifySink`).
 */
import type { Shard } from "@lo-migrate/core"
import type { BadRow, ListedObject, RepairOutcome } from "@lo-migrate/verify"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import { ReportError } from "./Report.ts"
import { printRecord } from "./RunOutput.ts"
import { withShard } from "./RunSettings.ts"

export const badRowLine = (bad: BadRow) => ({
  problem: bad.problem,
  hash: bad.row.hash,
  sha2: bad.row.sha2,
  oid: bad.row.oid,
  size: bad.row.size,
  mimeType: bad.row.mimeType,
  detail: bad.detail
})

export const orphanLine = (object: ListedObject) => ({ orphan: object.key, size: object.size })

export const repairLine = (outcome: RepairOutcome) => ({
  repair: outcome.reset ? "sha2 set to NULL" : "left alone: the row no longer has this sha2",
  hash: outcome.bad.row.hash,
  sha2: outcome.bad.row.sha2,
  objectDeleted: outcome.deleted
})

export interface VerifySink {
  readonly bad: (bad: BadRow) => Effect.Effect<void, ReportError>
  readonly orphan: (object: ListedObject) => Effect.Effect<void, ReportError>
  readonly repaired: (outcome: RepairOutcome) => Effect.Effect<void, ReportError>
}

const describeBad = (bad: BadRow) =>
  `row hash=${bad.row.hash} sha2=${bad.row.sha2} oid=${bad.row.oid ?? "NULL"}: ${bad.problem}: ${bad.detail}`

/**
 * The sink for `--report path` (or none), opened in the current scope. With `records` (`--log-format json`) every bad
 * row, orphan (`--orphans`) and repair outcome is one JSON record on stdout: `verify-mismatch`, `verify-orphan`,
 * `verify-repair`, with the fields of the report's lines; it replaces the warning or text line it would be otherwise,
 * so that a consumer of stdout and a reader of the log each see every finding once, as under `migrate`. With `shard`
 * each record has it, as verify's other records do.
 */
export const openVerifySink = Effect.fn("VerifyReport.openVerifySink")(function*(
  path: string | undefined,
  listOrphans: boolean,
  records = false,
  shard?: Shard
): Effect.fn.Return<VerifySink, ReportError, FileSystem.FileSystem | Scope.Scope> {
  /** The JSON record under `records`, else `text` (the log line or stdout line of `--log-format text|line`). */
  const record = (type: string, line: object, text: Effect.Effect<void> = Effect.void) =>
    records ? printRecord(withShard(shard, { type, ...line })) : text
  const mismatch = (bad: BadRow) => record("verify-mismatch", badRowLine(bad), Effect.logWarning(describeBad(bad)))
  if (path === undefined) {
    return {
      bad: mismatch,
      orphan: (o) => (listOrphans ? record("verify-orphan", orphanLine(o), Console.log(`orphan ${o.key} ${o.size}`)) : Effect.void),
      repaired: (r) =>
        record(
          "verify-repair",
          repairLine(r),
          Effect.logInfo(`repair: ${repairLine(r).repair}: hash=${r.bad.row.hash} sha2=${r.bad.row.sha2}`)
        )
    } satisfies VerifySink
  }
  const fs = yield* FileSystem.FileSystem
  const file = yield* fs.open(path, { flag: "w" }).pipe(Effect.mapError((e) => new ReportError({ path, detail: e.message })))
  const lock = yield* Semaphore.make(1)
  const encoder = new TextEncoder()
  const write = (line: object) =>
    lock.withPermits(1)(file.writeAll(encoder.encode(`${JSON.stringify(line)}\n`))).pipe(
      Effect.mapError((e) => new ReportError({ path, detail: e.message }))
    )
  return {
    bad: (bad) => Effect.andThen(write(badRowLine(bad)), mismatch(bad)),
    orphan: (o) => (listOrphans ? Effect.andThen(write(orphanLine(o)), record("verify-orphan", orphanLine(o))) : Effect.void),
    repaired: (r) => Effect.andThen(write(repairLine(r)), record("verify-repair", repairLine(r)))
  } satisfies VerifySink
})

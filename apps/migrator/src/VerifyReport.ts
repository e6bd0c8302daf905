/**
 * Where `verify` puts what it found: with `--report FILE` one JSON line per bad row
 * (`{"problem","hash","sha2","oid","size","mimeType","detail"}`), per orphan with `--orphans` (`{"orphan","size"}`)
 * and per `--repair` outcome (`{"repair","hash","sha2","objectDeleted"}`); the file is truncated at the start.
 * Without a file, bad rows are logged as warnings and orphans printed on stdout (`orphan KEY SIZE`).
 */
import type { BadRow, ListedObject, RepairOutcome } from "@lo-migrate/verify"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import { ReportError } from "./Report.ts"

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

/** The sink for `--report path` (or none), opened in the current scope. */
export const openVerifySink = Effect.fn("VerifyReport.openVerifySink")(function*(
  path: string | undefined,
  listOrphans: boolean
): Effect.fn.Return<VerifySink, ReportError, FileSystem.FileSystem | Scope.Scope> {
  if (path === undefined) {
    return {
      bad: (bad) => Effect.logWarning(describeBad(bad)),
      orphan: (o) => (listOrphans ? Console.log(`orphan ${o.key} ${o.size}`) : Effect.void),
      repaired: (r) => Effect.logInfo(`repair: ${repairLine(r).repair}: hash=${r.bad.row.hash} sha2=${r.bad.row.sha2}`)
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
    bad: (bad) => Effect.andThen(Effect.logWarning(describeBad(bad)), write(badRowLine(bad))),
    orphan: (o) => (listOrphans ? write(orphanLine(o)) : Effect.void),
    repaired: (r) => write(repairLine(r))
  } satisfies VerifySink
})

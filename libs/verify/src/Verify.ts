/**
 * One verify run: the merge of the bucket listing with the migrated rows, each pairing judged (fast: exists and has
 * the row's size; `--deep`: its bytes hash to the key; `--content-type`: its Content-Type is the one the migrator
 * writes), every bad row handed to `onBad`, orphans to `onOrphan`, and with `repair` the repairable bad rows reset in
 * batches. Counters go to `progress` as the run goes (the monitor reads them).
 *
 * Memory is bounded whatever the bucket's size: the merge holds one listing page (the next one is prefetched) and one
 * chunk of rows, at most `concurrency` downloads are in flight (each hashes its body as it arrives), and at most one
 * repair batch is pending.
 */
import { type DatabaseError, matchesMimeType, type Metrics, originalMimeType, type StorageError } from "@lo-migrate/core"
import {
  checkRepairable,
  checkSeesEveryRow,
  mapSqlError,
  type ReadOnlySession,
  type RowSecurityActive,
  type SchemaNotPermitted,
  type UpdatesNotReplicable
} from "@lo-migrate/postgres"
import { makeAdmission, noThrottle, type ThrottleLimits } from "@lo-migrate/pipeline"
import type { S3ClientService } from "@lo-migrate/s3"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as SqlClient from "effect/sql/SqlClient"
import { listPages } from "./BucketListing.ts"
import { makeObjectReader, type ObjectFacts } from "./DeepCheck.ts"
import { type BadRow, inSample, type KeyRange, type ListedObject, type MigratedRow, repairable } from "./Domain.ts"
import { type MergeStats, mergeJoin, type OrderViolation, type Pairing } from "./Merge.ts"
import { migratedRows } from "./MigratedRows.ts"
import type { Progress } from "./Progress.ts"
import { makeRepairer, type RepairOutcome } from "./Repair.ts"

export interface VerifyOptions {
  readonly range: KeyRange
  /** Download every (sampled) object and check its SHA-256 against the key. */
  readonly deep: boolean
  /** Downloads (or HEADs) in flight. */
  readonly concurrency: number
  /** Fraction of the keys whose objects are downloaded / HEADed (1 = all); the listing check covers every row. */
  readonly sample: number
  readonly seed: number
  /**
   * Compare the object's mime type with the row's, by the migrator's rule (core `ContentType`): the Content-Type, or
   * the original kept in user metadata when it could not be sent as one.
   */
  readonly contentType: boolean
  /** Reset the sha2 of bad rows (and delete objects with wrong content). */
  readonly repair: boolean
  /** Rows per repair transaction. */
  readonly repairBatch: number
  /**
   * Limits on the requests that read objects (`--max-objects-per-second`, `--max-bandwidth` of the CLI): downloads or
   * HEADs per second, and bytes downloaded per second charged by the rows' sizes as each download starts. The
   * listing and the rows' query are not throttled (one request per 1000 keys).
   */
  readonly throttle?: ThrottleLimits | undefined
}

export const defaultVerifyOptions: VerifyOptions = {
  range: {},
  deep: false,
  concurrency: 16,
  sample: 1,
  seed: 0,
  contentType: false,
  repair: false,
  repairBatch: 100
}

export interface VerifyHooks<E> {
  readonly onBad: (bad: BadRow) => Effect.Effect<void, E>
  readonly onOrphan: (object: ListedObject) => Effect.Effect<void, E>
  readonly onRepaired: (outcome: RepairOutcome) => Effect.Effect<void, E>
}

type Verdict =
  | { readonly _tag: "Ok"; readonly row: MigratedRow }
  | { readonly _tag: "Bad"; readonly bad: BadRow }
  | { readonly _tag: "Orphan"; readonly object: ListedObject }

const bad = (row: MigratedRow, problem: BadRow["problem"], detail: string): Verdict => ({
  _tag: "Bad",
  bad: { row, problem, detail }
})

/** Why `repair` cannot reset rows, found before anything is verified (`checkRepairable` of @lo-migrate/postgres). */
export type RepairRefused = SchemaNotPermitted | ReadOnlySession | UpdatesNotReplicable | RowSecurityActive

export type VerifyError = StorageError | DatabaseError | OrderViolation | RowSecurityActive | RepairRefused

/**
 * The role sees every row of `_nice_binary` (`RowSecurityActive` otherwise): a proof, or a count, of only the rows a
 * row-level security policy lets the role see would not be the table's. `runVerify` starts with it; a caller that
 * counts or prints anything before (the CLI's count for the ETA) runs it first.
 */
export const checkRowsVisible: Effect.Effect<void, RowSecurityActive | DatabaseError, SqlClient.SqlClient> = checkSeesEveryRow
  .pipe(mapSqlError("check row-level security"))

export const runVerify = Effect.fn("Verify.runVerify")(function*<E>(
  options: VerifyOptions,
  progress: Progress,
  hooks: VerifyHooks<E>
): Effect.fn.Return<MergeStats, VerifyError | E, SqlClient.SqlClient | S3ClientService | Metrics> {
  yield* checkRowsVisible
  if (options.repair) yield* checkRepairable
  const reader = yield* makeObjectReader
  const repairer = options.repair ? yield* makeRepairer : undefined
  const admit = options.throttle === undefined ? noThrottle : yield* makeAdmission(options.throttle)
  const stats: MergeStats = { maxHeld: 0 }
  const fetches = options.deep || options.contentType

  const judgeObject = (row: MigratedRow, facts: ObjectFacts): Verdict => {
    if (options.deep && (facts.sha256 !== row.sha2 || facts.size !== row.size)) {
      return bad(row, "WrongContent", `the object's ${facts.size} bytes hash to ${facts.sha256}, not to its key`)
    }
    if (options.contentType) {
      if (row.mimeTypeNotUtf8 !== undefined) {
        return bad(
          row,
          "WrongContentType",
          `mime_type is not valid UTF-8 (bytes ${row.mimeTypeNotUtf8}, hex), so no Content-Type or metadata stores ` +
            `it (the migrator reports such a row instead of migrating it)`
        )
      }
      const recovered = originalMimeType(facts.contentType, facts.metadata)
      if (recovered === undefined || !matchesMimeType(recovered, row.mimeType)) {
        return bad(
          row,
          "WrongContentType",
          `Content-Type is ${JSON.stringify(facts.contentType ?? null)}` +
            (recovered === undefined ? " with malformed lo-migrate mime-type metadata" : "") +
            `, which does not store mime_type ${JSON.stringify(row.mimeType)}`
        )
      }
    }
    return { _tag: "Ok", row }
  }

  const judge = (pairing: Pairing): Effect.Effect<Verdict, StorageError, Metrics> => {
    switch (pairing._tag) {
      case "Orphan":
        return Effect.succeed({ _tag: "Orphan", object: pairing.object })
      case "Malformed":
        return Effect.succeed(bad(pairing.row, "MalformedSha2", "sha2 is not 64 lowercase hexadecimal digits"))
      case "Row": {
        const { object, row } = pairing
        if (object === undefined) return Effect.succeed(bad(row, "Missing", "no object under this key in the bucket"))
        if (object.size !== row.size) {
          return Effect.succeed(bad(row, "WrongSize", `the object has ${object.size} bytes, the row says ${row.size}`))
        }
        if (!fetches || !inSample(row.sha2, options.sample, options.seed)) return Effect.succeed({ _tag: "Ok", row })
        if (options.deep) {
          return Effect.map(Effect.andThen(admit(1, row.size), reader.download(row.sha2)), (facts) => {
            progress.downloaded += 1
            progress.downloadedBytes += facts.size
            return judgeObject(row, facts)
          })
        }
        return Effect.map(Effect.andThen(admit(1, 0), reader.head(row.sha2)), (facts) => {
          progress.heads += 1
          return judgeObject(row, facts)
        })
      }
    }
  }

  // rows come in sha2 order, so the first bad row not yet repaired is where a rerun must resume (`progress.unrepaired`
  // stays set until its batch is done: a failed or interrupted batch keeps it)
  let pending: Array<BadRow> = []
  const flushRepairs = Effect.suspend(() => {
    if (repairer === undefined || pending.length === 0) return Effect.void
    const batch = pending
    pending = []
    return Effect.flatMap(repairer.repair(batch), (outcomes) =>
      Effect.forEach(outcomes, (outcome) => {
        if (outcome.reset) progress.repaired += 1
        else progress.repairSkipped += 1
        if (outcome.deleted) progress.deletedObjects += 1
        return hooks.onRepaired(outcome)
      }, { discard: true }).pipe(
        Effect.andThen(Effect.sync(() => void (progress.unrepaired = pending[0]?.row.sha2)))
      ))
  })

  const record = (verdict: Verdict) => {
    switch (verdict._tag) {
      case "Orphan":
        progress.orphans += 1
        progress.orphanBytes += verdict.object.size
        return hooks.onOrphan(verdict.object)
      case "Ok":
        progress.checked += 1
        progress.ok += 1
        progress.checkedBytes += verdict.row.size
        progress.lastSha2 = verdict.row.sha2
        return Effect.void
      case "Bad": {
        const { problem, row } = verdict.bad
        progress.checked += 1
        progress.checkedBytes += row.size
        progress.bad[problem] += 1
        progress.lastSha2 = row.sha2
        const reported = hooks.onBad(verdict.bad)
        if (repairer === undefined || !repairable(problem)) return reported
        if (progress.unrepaired === undefined) progress.unrepaired = row.sha2
        pending.push(verdict.bad)
        return pending.length >= options.repairBatch ? Effect.andThen(reported, flushRepairs) : reported
      }
    }
  }

  const pages = listPages(options.range, () => {
    progress.listRequests += 1
  }).pipe(
    Stream.tap((page) => Effect.sync(() => void (progress.listed += page.length))),
    // the next page is requested while the current one is merged
    Stream.buffer({ capacity: 1 })
  )
  yield* mergeJoin(pages, migratedRows(options.range), stats).pipe(
    Stream.mapEffect(judge, { concurrency: fetches ? Math.max(1, options.concurrency) : 1 }),
    Stream.runForEach(record)
  )
  yield* flushRepairs
  return stats
})

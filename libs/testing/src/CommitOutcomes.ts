/**
 * A batch's per-entry `CommitResult`s grouped by outcome, as hash lists: the readable form tests compare against
 * (`committed`, `alreadySet`, `vanished`, `conflicts`, each in the order of the batch).
 */
import type { CommitEntry, CommitResult } from "@lo-migrate/core"
import * as Result from "effect/Result"

export interface CommitOutcomes {
  readonly committed: ReadonlyArray<string>
  readonly alreadySet: ReadonlyArray<string>
  readonly vanished: ReadonlyArray<string>
  readonly conflicts: ReadonlyArray<{ readonly hash: string; readonly existing: string; readonly computed: string }>
}

/** Groups `results` (one per entry of `entries`) by outcome; fails loudly if the counts differ. */
export const commitOutcomes = (
  entries: ReadonlyArray<CommitEntry>,
  results: ReadonlyArray<CommitResult>
): CommitOutcomes => {
  if (entries.length !== results.length) {
    throw new Error(`commit returned ${results.length} results for ${entries.length} entries`)
  }
  const committed: Array<string> = []
  const alreadySet: Array<string> = []
  const vanished: Array<string> = []
  const conflicts: Array<{ hash: string; existing: string; computed: string }> = []
  results.forEach((r, i) => {
    const hash = entries[i]!.hash
    if (Result.isSuccess(r)) {
      ;(r.success === "Committed" ? committed : alreadySet).push(hash)
      return
    }
    const reason = r.failure.reason
    if (reason._tag === "RowVanished") vanished.push(hash)
    else if (reason._tag === "Sha2Conflict") conflicts.push({ hash, existing: reason.existing, computed: reason.computed })
    else throw new Error(`commit result for ${hash}: unexpected reason ${reason._tag}`)
  })
  return { committed, alreadySet, vanished, conflicts }
}

/**
 * The fake `HashCommitter`: applies batches to the world's table entry by entry, after checking that every key is in
 * the bucket with the right bytes.
 */
import {
  type CommitEntry,
  type CommitResult,
  DatabaseError,
  HashCommitter,
  RowVanished,
  RowFailed,
  Sha2Conflict
} from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import { begin, crash } from "./FakeOperations.ts"
import { sha256Hex, type World } from "./World.ts"

/** Checks, before anything is applied, that every key of the batch is in the bucket with the right bytes. */
const checkBatch = (world: World, batch: ReadonlyArray<CommitEntry>): string | undefined => {
  for (const entry of batch) {
    const object = world.bucket.get(entry.sha256)
    if (object === undefined) {
      return `commit of sha2=${entry.sha256} for hash=${entry.hash}: the object is not in the bucket`
    }
    const actual = sha256Hex(object.bytes)
    if (actual !== entry.sha256) {
      return `commit of sha2=${entry.sha256} for hash=${entry.hash}: the bucket holds bytes hashing to ${actual}`
    }
    for (const row of world.rowsWithHash(entry.hash)) {
      if (row.sha2 !== null || row.oid === null) continue
      const lo = world.largeObjects.get(row.oid)
      if (lo !== undefined && sha256Hex(lo) !== entry.sha256) {
        return `commit of sha2=${entry.sha256} for hash=${entry.hash}: row ${row.id}'s large object hashes to ${
          sha256Hex(lo)
        }`
      }
    }
  }
  return undefined
}

/**
 * Applies a batch like `UPDATE ... SET sha2 = $2 WHERE hash = $1 AND sha2 IS NULL`, entry after entry, plus the
 * classification of each entry (the `RowFailed` of a vanished or conflicting row made here, as the live adapter does).
 */
const applyBatch = (world: World, batch: ReadonlyArray<CommitEntry>): ReadonlyArray<CommitResult> =>
  batch.map((entry): CommitResult => {
    const failed = (reason: RowFailed["reason"]) => Result.fail(new RowFailed({ hash: entry.hash, oid: entry.oid, reason }))
    const rows = world.rowsWithHash(entry.hash)
    if (rows.length === 0) return failed(new RowVanished({ at: "commit" }))
    const unset = rows.filter((r) => r.sha2 === null)
    if (unset.length > 0) {
      for (const r of unset) r.sha2 = entry.sha256
      return Result.succeed("Committed")
    }
    const other = rows.find((r) => r.sha2 !== entry.sha256)
    return other === undefined
      ? Result.succeed("AlreadySet")
      : failed(new Sha2Conflict({ existing: other.sha2 ?? "", computed: entry.sha256 }))
  })

export const makeHashCommitter = (world: World): HashCommitter["Service"] =>
  HashCommitter.of({
    commit: Effect.fn("FakeHashCommitter.commit")(function*(batch: ReadonlyArray<CommitEntry>) {
      yield* begin(world, "commit")
      const faults = world.faults
      if (faults.commitFailures > 0) {
        faults.commitFailures--
        return yield* new DatabaseError({
          operation: "commit",
          detail: "fake: could not serialize access",
          retryable: faults.commitFailureRetryable
        })
      }
      const result = yield* Effect.suspend(() => {
        const problem = checkBatch(world, batch)
        if (problem !== undefined) return Effect.die(world.violation(problem))
        const result = applyBatch(world, batch)
        world.commits.push({ seq: world.nextSeq(), run: world.run, entries: [...batch], result })
        return Effect.succeed(result)
      }).pipe(Effect.uninterruptible)
      if (faults.crashAfterCommits !== undefined && --faults.crashAfterCommits <= 0) {
        faults.crashAfterCommits = undefined
        return yield* crash(world, "commit")
      }
      return result
    })
  })

export const fakeHashCommitter = (world: World): Layer.Layer<HashCommitter> =>
  Layer.sync(HashCommitter, () => makeHashCommitter(world))

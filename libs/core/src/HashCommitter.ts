/**
 * The port that records SHA-256 values: `HashCommitter.commit` and the per-entry result it returns.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Result from "effect/Result"
import type { Sha256Hex } from "./Domain.ts"
import type { DatabaseError, RowFailed } from "./Errors.ts"

export interface CommitEntry {
  /** The row's `hash` exactly as the source gave it. */
  readonly hash: string
  /** The row's oid, to name the row in a `RowFailed`. */
  readonly oid: number | null
  readonly sha256: Sha256Hex
}

/**
 * What became of one entry: `Committed` (this batch set its sha2), `AlreadySet` (every row with that hash already held
 * this very sha2: an earlier run got there), or a `RowFailed` for the entry's row: `RowVanished` (no row has that hash
 * any more) or `Sha2Conflict` (a row holds a different sha2, never overwritten).
 */
export type CommitResult = Result.Result<"Committed" | "AlreadySet", RowFailed>

/**
 * Records SHA-256 values for a batch of rows in one transaction. Called only for rows whose object is in the store.
 * Returns one result per entry, in the order of the batch (like `LoReader.readBatch`); entries that share a hash are
 * applied as if one after the other.
 */
export class HashCommitter extends Context.Service<HashCommitter, {
  readonly commit: (batch: ReadonlyArray<CommitEntry>) => Effect.Effect<ReadonlyArray<CommitResult>, DatabaseError>
}>()("lo-migrate/HashCommitter") {}

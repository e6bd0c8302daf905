import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { Sha256Hex } from "./Domain.ts"
import type { DatabaseError } from "./Errors.ts"

export interface CommitEntry {
  /** The row's `hash` exactly as the source gave it. */
  readonly hash: string
  readonly sha256: Sha256Hex
}

export interface CommitResult {
  /** Rows whose `sha2` this batch set. */
  readonly committed: ReadonlyArray<string>
  /** Rows that already held this same `sha2` (another run got there first): nothing to do. */
  readonly alreadySet: ReadonlyArray<string>
  /** Rows that no longer exist: reported as `RowVanished`. */
  readonly vanished: ReadonlyArray<string>
  /** Rows holding a different `sha2`: never overwritten, reported as `Sha2Conflict`. */
  readonly conflicts: ReadonlyArray<{ readonly hash: string; readonly existing: string; readonly computed: string }>
}

/**
 * Records SHA-256 values for a batch of rows in one transaction. Called only for rows whose object is in the store.
 */
export class HashCommitter extends Context.Service<HashCommitter, {
  readonly commit: (batch: ReadonlyArray<CommitEntry>) => Effect.Effect<CommitResult, DatabaseError>
}>()("lo-migrate/HashCommitter") {}

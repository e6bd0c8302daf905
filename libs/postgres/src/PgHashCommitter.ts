/**
 * `HashCommitter` on `@effect/sql-pg`: records the SHA-256 of a batch of rows with ONE statement in ONE transaction,
 * and says what became of each entry (one `CommitResult` per entry, the `RowFailed` values made here).
 *
 * The statement is an `UPDATE ... FROM unnest($hashes, $sha2s) ... WHERE sha2 IS NULL` in a CTE, and the outer SELECT
 * classifies every input against the statement's snapshot:
 * - Committed:    the UPDATE set sha2 on the row(s) with that hash;
 * - AlreadySet:   every row with that hash already holds this very sha2 (an earlier, interrupted run got there);
 * - Sha2Conflict: a row with that hash holds a different sha2 - it is never overwritten (`WHERE sha2 IS NULL`);
 * - RowVanished:  no row has that hash any more.
 *
 * The transaction is REPEATABLE READ. That is what makes the snapshot classification exact: if the application
 * deletes or changes one of the rows between the snapshot and the UPDATE, PostgreSQL raises a serialization failure
 * (40001) instead of silently skipping the row, and that surfaces as a retryable `DatabaseError`; the retried batch
 * then sees the row as vanished (or as set). Inputs are sent in hash order so two committers lock rows in the same
 * order; a deadlock (40P01) is retryable as well.
 *
 * Several entries with the same hash in one batch are applied like one after the other: the first decides, a later
 * one is AlreadySet (same sha2), a conflict (different sha2) or vanished, matching the in-memory fake.
 */
import {
  type CommitEntry,
  type CommitResult,
  HashCommitter,
  RowFailed,
  RowVanished,
  Sha2Conflict
} from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import { mapSqlError, withTransaction } from "./DatabaseErrors.ts"

interface Classified {
  readonly i: number
  /** The UPDATE set sha2 on at least one row with this hash (it had NULL rows). */
  readonly committed: boolean
  /** Rows with this hash in the snapshot. */
  readonly rows: bigint | number
  /** The distinct non-NULL sha2 values of those rows in the snapshot. */
  readonly existing: ReadonlyArray<string> | null
}

/** What the rows of one hash hold, as the entries of the batch are applied one after the other. */
interface HashState {
  readonly rows: number
  hasNull: boolean
  readonly values: Set<string>
}

/** One entry against what its hash's rows hold (updated as if the entries were applied one after the other). */
const classify = (entry: CommitEntry, state: HashState): CommitResult => {
  const failed = (reason: RowFailed["reason"]) => Result.fail(new RowFailed({ hash: entry.hash, oid: entry.oid, reason }))
  if (state.rows === 0) return failed(new RowVanished({ at: "commit" }))
  if (state.hasNull) {
    state.hasNull = false
    state.values.add(entry.sha256)
    return Result.succeed("Committed")
  }
  const others = [...state.values].filter((v) => v !== entry.sha256).sort()
  return others.length === 0
    ? Result.succeed("AlreadySet")
    : failed(new Sha2Conflict({ existing: others[0]!, computed: entry.sha256 }))
}

export const make: Effect.Effect<HashCommitter["Service"], never, SqlClient.SqlClient> = Effect.gen(
  function*() {
    const sql = yield* SqlClient.SqlClient

    const commit = Effect.fn("PgHashCommitter.commit")(function*(batch: ReadonlyArray<CommitEntry>) {
      if (batch.length === 0) return [] satisfies ReadonlyArray<CommitResult>

      // The one place entries are deduplicated by hash: the first entry per hash goes to the database, in hash order
      // (consistent lock order across committers); the others are classified after it below.
      const first = new Map<string, CommitEntry>()
      for (const entry of batch) if (!first.has(entry.hash)) first.set(entry.hash, entry)
      const unique = [...first.values()].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0))

      const rows = yield* withTransaction(
        sql,
        sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`.pipe(Effect.andThen(sql<Classified>`
          WITH input AS (
            SELECT t.i::int4 AS i, t.hash::bpchar AS hash, t.sha2::bpchar AS sha2
            FROM unnest(${unique.map((e) => e.hash)}::text[], ${unique.map((e) => e.sha256)}::text[])
                 WITH ORDINALITY AS t(hash, sha2, i)
          ),
          updated AS (
            UPDATE _nice_binary b SET sha2 = input.sha2
            FROM input
            WHERE b.hash = input.hash AND b.sha2 IS NULL
            RETURNING b.hash
          )
          SELECT input.i,
                 EXISTS (SELECT 1 FROM updated u WHERE u.hash = input.hash) AS committed,
                 (SELECT count(*) FROM _nice_binary b WHERE b.hash = input.hash) AS rows,
                 (SELECT array_agg(DISTINCT b.sha2::text) FROM _nice_binary b
                  WHERE b.hash = input.hash AND b.sha2 IS NOT NULL) AS existing
          FROM input`))
      ).pipe(mapSqlError("commit sha2"))

      const states = new Map<string, HashState>()
      for (const r of rows) {
        const entry = unique[r.i - 1]!
        // Under REPEATABLE READ the UPDATE touched exactly the rows that were NULL in the snapshot.
        states.set(entry.hash, { rows: Number(r.rows), hasNull: r.committed, values: new Set(r.existing ?? []) })
      }
      const results: Array<CommitResult> = []
      for (const entry of batch) {
        const state = states.get(entry.hash)
        if (state === undefined) {
          return yield* Effect.die(new Error(`commit: no classification for hash ${JSON.stringify(entry.hash)}`))
        }
        results.push(classify(entry, state))
      }
      return results
    })

    return HashCommitter.of({ commit })
  }
)

/** The committer over the `SqlClient` in context. */
export const layer: Layer.Layer<HashCommitter, never, SqlClient.SqlClient> = Layer.effect(HashCommitter, make)

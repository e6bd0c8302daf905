/**
 * `--repair`: bad rows get `sha2` back to NULL so that the next `migrate` uploads them again, in batched transactions
 * of one statement each. The statement matches `hash` AND the bad `sha2`, so a row the application (or a concurrent
 * migrate) changed meanwhile is left alone; `RETURNING` tells which rows were changed.
 *
 * An object whose bytes are wrong but whose size is right would be taken by `migrate` as already uploaded, so for
 * `WrongContent` the object is deleted too (after the rows are reset). Missing objects need nothing more, and an
 * object of the wrong size is overwritten by `migrate` itself.
 */
import { DeleteObjectCommand } from "@aws-sdk/client-s3"
import { type DatabaseError, type Metrics, retryInfrastructure, type StorageError } from "@lo-migrate/core"
import { mapSqlError, withTransaction } from "@lo-migrate/postgres"
import { clientCalls, sendS3 } from "@lo-migrate/s3"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import type { BadRow } from "./Domain.ts"

export interface RepairOutcome {
  readonly bad: BadRow
  /** `true`: sha2 set to NULL; `false`: the row no longer had this sha2 (left alone). */
  readonly reset: boolean
  /** The object was deleted (wrong content). */
  readonly deleted: boolean
}

export const makeRepairer = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { bucket, call, client } = yield* clientCalls

  const deleteObject = (key: string): Effect.Effect<void, StorageError, Metrics> =>
    call("DeleteObject", key, (signal) =>
      sendS3(client, new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal })).pipe(
        retryInfrastructure("DeleteObject"),
        Effect.asVoid
      )

  /** Resets one batch of rows in one transaction; then deletes the objects with wrong content. */
  const repair = Effect.fnUntraced(function*(
    batch: ReadonlyArray<BadRow>
  ): Effect.fn.Return<ReadonlyArray<RepairOutcome>, DatabaseError | StorageError, Metrics> {
    if (batch.length === 0) return []
    const changed = yield* withTransaction(
      sql,
      sql<{ readonly hash: string }>`
        UPDATE _nice_binary b SET sha2 = NULL
        FROM unnest(${batch.map((b) => b.row.hash)}::text[], ${batch.map((b) => b.row.sha2)}::text[]) AS u(hash, sha2)
        WHERE b.hash = u.hash AND b.sha2 = u.sha2
        RETURNING b.hash`
    ).pipe(mapSqlError("repair: reset sha2"), retryInfrastructure("repair"))
    const reset = new Set(changed.map((r) => r.hash))
    const outcomes: Array<RepairOutcome> = []
    for (const bad of batch) {
      const wasReset = reset.has(bad.row.hash)
      const deleted = wasReset && bad.problem === "WrongContent"
      if (deleted) yield* deleteObject(bad.row.sha2)
      outcomes.push({ bad, reset: wasReset, deleted })
    }
    return outcomes
  })

  return { repair } as const
})

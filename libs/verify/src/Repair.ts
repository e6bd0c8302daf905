/**
 * `--repair`: bad rows get `sha2` back to NULL so that the next `migrate` uploads them again, in batched transactions
 * of one statement each. The statement matches `hash` AND the bad `sha2`, so a row the application (or a concurrent
 * migrate) changed meanwhile is left alone; `RETURNING` tells which rows were changed.
 *
 * An object whose bytes are wrong but whose size is right would be taken by `migrate` as already uploaded, so for
 * `WrongContent` the object is deleted too, BEFORE the rows are reset: if the delete fails (a key without DeleteObject,
 * an outage), no row was reset, and the next verify finds them again. The other order left a row pending with the
 * wrong object still under its key, which `migrate` would then have accepted as uploaded. Deleting an object whose
 * bytes do not hash to its key loses nothing, even when its row changed meanwhile and is left alone. Missing objects
 * need nothing more, and an object of the wrong size is overwritten by `migrate` itself.
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
  /**
   * The object under the row's sha2 was deleted (wrong content), whether or not the row was reset; of rows sharing
   * that key, the first one in the batch.
   */
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

  /** Deletes the objects with wrong content of one batch, then resets its rows in one transaction. */
  const repair = Effect.fnUntraced(function*(
    batch: ReadonlyArray<BadRow>
  ): Effect.fn.Return<ReadonlyArray<RepairOutcome>, DatabaseError | StorageError, Metrics> {
    if (batch.length === 0) return []
    const wrongContent = new Set(batch.filter((b) => b.problem === "WrongContent").map((b) => b.row.sha2))
    for (const key of wrongContent) yield* deleteObject(key)
    const changed = yield* withTransaction(
      sql,
      sql<{ readonly hash: string }>`
        UPDATE _nice_binary b SET sha2 = NULL
        FROM unnest(${batch.map((b) => b.row.hash)}::text[], ${batch.map((b) => b.row.sha2)}::text[]) AS u(hash, sha2)
        WHERE b.hash = u.hash AND b.sha2 = u.sha2
        RETURNING b.hash`
    ).pipe(mapSqlError("repair: reset sha2"), retryInfrastructure("repair"))
    const reset = new Set(changed.map((r) => r.hash))
    // rows sharing a key share its object: the first of them names the deletion
    return batch.map((bad): RepairOutcome => ({
      bad,
      reset: reset.has(bad.row.hash),
      deleted: bad.problem === "WrongContent" && wrongContent.delete(bad.row.sha2)
    }))
  })

  return { repair } as const
})

/**
 * The naive baseline: what a user writes in an afternoon. One row at a time: read the whole large object with
 * `lo_get`, SHA-256 it, PutObject it under that key, UPDATE the row. No batching, no concurrency, no verification
 * of SHA-1 or Content-MD5 (so it does less work per object than the migrator).
 *
 * `every` > 1 migrates a sample: the rows ordered by size, every `every`-th of them, so the sample has the mix's sizes
 * in the mix's proportions (a big object per `every` of them). Its rate stands for the whole table's: one row at a
 * time, the rate is the same from the first row to the last, and the default mix's full naive pass alone took over
 * two minutes of the bench's fifteen.
 */
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { createHash } from "node:crypto"

export const naiveMigrate = Effect.fn("Naive.migrate")(function*(client: S3Client, bucket: string, every = 1) {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly hash: string; readonly oid: number; readonly mime_type: string | null }>`
    SELECT hash, oid, mime_type FROM (
      SELECT hash, data AS oid, mime_type, row_number() OVER (ORDER BY size, hash) - 1 AS i
      FROM _nice_binary WHERE sha2 IS NULL
    ) AS ranked WHERE i % ${every} = 0`
  let objects = 0
  let bytes = 0
  for (const row of rows) {
    const [lo] = yield* sql<{ readonly b: Uint8Array }>`SELECT lo_get(${row.oid}) AS b`
    const body = lo!.b
    const sha256 = createHash("sha256").update(body).digest("hex")
    yield* Effect.tryPromise({
      try: (signal) =>
        client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: sha256,
            Body: body,
            ...(row.mime_type === null ? {} : { ContentType: row.mime_type })
          }),
          { abortSignal: signal }
        ),
      catch: (cause) => new Error(`PUT ${sha256} failed: ${String(cause)}`)
    })
    yield* sql`UPDATE _nice_binary SET sha2 = ${sha256} WHERE hash = ${row.hash}`
    objects += 1
    bytes += body.byteLength
  }
  return { objects, bytes }
})

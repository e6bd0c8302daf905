/**
 * The combined limit: the least a concurrent migrator must do, hand-rolled, with none of the migrator's machinery
 * (no per-row checks, retries, metrics, spilling, resumability). Rows listed in one query; small objects read in
 * `lo_get` batches (256 objects / 4 MiB per statement) and big ones in 4 MiB slices on `readers` connections; every
 * object hashed once (SHA-1 + SHA-256 + MD5); PUT under its SHA-256 from memory with Content-MD5 and the payload
 * SHA-256, `storers` in flight; `sha2` recorded with one UPDATE … FROM unnest per 500 rows.
 *
 * On a machine where PostgreSQL, the S3 server and the migrator share the cores, this is the fairer ceiling: the two
 * single limits each run with the other server idle.
 */
import { makeDigester } from "@lo-migrate/core"
import type { S3Client } from "@aws-sdk/client-s3"
import { Effect, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { putAll } from "./S3Put.ts"

export interface CombinedOptions {
  readonly readers: number
  readonly storers: number
  readonly commitChunk: number
}

interface Row {
  readonly hash: string
  readonly oid: number
  readonly size: number
  readonly mimeType: string | null
}

interface Read {
  readonly row: Row
  readonly body: Uint8Array
  readonly sha256: string
  readonly md5Base64: string
}

const SLICE = 4 * 1024 * 1024
const BATCH_BYTES = 4 * 1024 * 1024
const BATCH_ROWS = 256

const groups = (rows: ReadonlyArray<Row>): ReadonlyArray<ReadonlyArray<Row>> => {
  const out: Array<Array<Row>> = []
  let cur: Array<Row> = []
  let bytes = 0
  for (const r of rows) {
    if (r.size > SLICE) {
      out.push([r])
      continue
    }
    if (cur.length > 0 && (bytes + r.size > BATCH_BYTES || cur.length >= BATCH_ROWS)) {
      out.push(cur)
      cur = []
      bytes = 0
    }
    cur.push(r)
    bytes += r.size
  }
  if (cur.length > 0) out.push(cur)
  return out
}

export const combined = Effect.fn("Combined.run")(function*(client: S3Client, bucket: string, options: CombinedOptions) {
  const sql = yield* SqlClient.SqlClient
  const listed = yield* sql<{ readonly hash: string; readonly oid: number; readonly size: bigint | number; readonly mime_type: string | null }>`
    SELECT hash, data AS oid, size, mime_type FROM _nice_binary ORDER BY hash`
  const rows = listed.map((r): Row => ({ hash: r.hash, oid: r.oid, size: Number(r.size), mimeType: r.mime_type }))

  const finish = (row: Row, body: Uint8Array): Read => {
    const d = makeDigester()
    d.update(body)
    const digests = d.digest()
    return { row, body, sha256: digests.sha256, md5Base64: digests.md5Base64 }
  }

  /** A big object in `SLICE` pieces. */
  const readBig = Effect.fnUntraced(function*(row: Row) {
    const body = new Uint8Array(row.size)
    for (let offset = 0; offset < row.size; offset += SLICE) {
      const [r] = yield* sql<{ readonly c: Uint8Array }>`SELECT lo_get(${row.oid}, ${offset}, ${SLICE}) AS c`
      body.set(r!.c, offset)
    }
    return [finish(row, body)]
  })

  const readGroup = (group: ReadonlyArray<Row>): Effect.Effect<ReadonlyArray<Read>, unknown> =>
    group.length === 1 && group[0]!.size > SLICE
      ? readBig(group[0]!)
      : Effect.map(
        sql<{ readonly c: Uint8Array }>`
          SELECT lo_get(u.o) AS c FROM unnest(${group.map((r) => r.oid)}::oid[]) WITH ORDINALITY AS u(o, i) ORDER BY u.i`,
        (got) => got.map((r, i) => finish(group[i]!, r.c))
      )

  const commit = (batch: ReadonlyArray<Read>) =>
    sql`UPDATE _nice_binary AS b SET sha2 = u.sha2
        FROM unnest(${batch.map((r) => r.row.hash)}::bpchar[], ${batch.map((r) => r.sha256)}::bpchar[]) AS u(hash, sha2)
        WHERE b.hash = u.hash`

  let objects = 0
  let bytes = 0
  yield* Stream.fromIterable(groups(rows)).pipe(
    Stream.mapEffect(readGroup, { concurrency: options.readers }),
    Stream.flattenIterable,
    Stream.mapEffect(
      (r) =>
        Effect.as(
          putAll(client, bucket, [{ key: r.sha256, body: r.body, md5Base64: r.md5Base64, sha256Hex: r.sha256, contentType: r.row.mimeType }], 1),
          r
        ),
      { concurrency: options.storers, unordered: true }
    ),
    Stream.grouped(options.commitChunk),
    Stream.mapEffect((batch) =>
      Effect.map(commit(batch), () => {
        objects += batch.length
        for (const r of batch) bytes += r.body.byteLength
      })
    ),
    Stream.runDrain
  )
  return { objects, bytes }
})

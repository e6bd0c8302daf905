/**
 * The PostgreSQL read limit: every large object's bytes streamed to this process, hashed (SHA-1 + SHA-256 + MD5, the
 * digests the migrator must compute) and discarded. Two methods:
 * - `lo_get`: many small objects per statement (`SELECT lo_get(o) FROM unnest($oids)`), big ones in
 *   `lo_get(oid, offset, chunk)` slices; no transaction needed.
 * - `loread`: per object `lo_open` then `loread(fd, chunk)` until the object's size, inside one transaction per batch.
 * Both on `concurrency` connections at once.
 */
import { makeDigester } from "@lo-migrate/core"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

export type ReadMethod = "lo_get" | "loread"

export interface ReadOptions {
  readonly method: ReadMethod
  readonly concurrency: number
  /** Objects up to this size are fetched whole (and batched); larger ones in slices of `chunk`. */
  readonly chunk: number
  /** Bytes per batch statement (lo_get) or per transaction (loread). */
  readonly batchBytes: number
  readonly batchCount: number
  /** false: count the bytes without hashing them (the transfer alone; default true). */
  readonly hash?: boolean
}

export interface LoRow {
  readonly oid: number
  readonly size: number
}

export interface ReadResult {
  readonly objects: number
  readonly bytes: number
  /** XOR of the first bytes of every SHA-256: a cheap check that two methods read the same data. */
  readonly fingerprint: string
}

/** The rows to read, in the order the migrator reads them (by hash). */
export const listRows = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly oid: number; readonly size: bigint | number }>`
    SELECT data AS oid, size FROM _nice_binary ORDER BY hash`
  return rows.map((r): LoRow => ({ oid: r.oid, size: Number(r.size) }))
})

const groupRows = (rows: ReadonlyArray<LoRow>, options: ReadOptions): ReadonlyArray<ReadonlyArray<LoRow>> => {
  const out: Array<Array<LoRow>> = []
  let cur: Array<LoRow> = []
  let bytes = 0
  for (const r of rows) {
    if (r.size > options.chunk) {
      out.push([r])
      continue
    }
    if (cur.length > 0 && (bytes + r.size > options.batchBytes || cur.length >= options.batchCount)) {
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

const INV_READ = 0x40000

export const readAll = Effect.fn("PgRead.readAll")(function*(rows: ReadonlyArray<LoRow>, options: ReadOptions) {
  const sql = yield* SqlClient.SqlClient
  let objects = 0
  let bytes = 0
  const fp = new Uint8Array(8)
  const noHash = options.hash === false
  const countOnly = () => {
    let size = 0
    return {
      update: (c: Uint8Array) => void (size += c.byteLength),
      digest: () => ({ size, sha1: "", sha256: "0000000000000000", md5Base64: "" })
    }
  }
  const digester = (): Pick<ReturnType<typeof makeDigester>, "update"> & { digest: () => { size: number; sha256: string } } =>
    noHash ? countOnly() : makeDigester()
  const done = (d: ReturnType<typeof digester>) => {
    const digests = d.digest()
    objects += 1
    bytes += digests.size
    const head = Buffer.from(digests.sha256.slice(0, 16), "hex")
    for (let i = 0; i < 8; i++) fp[i]! ^= head[i]!
  }

  const bigByLoGet = Effect.fnUntraced(function*(r: LoRow) {
    const d = digester()
    for (let offset = 0; offset < r.size; offset += options.chunk) {
      const [row] = yield* sql<{ readonly c: Uint8Array }>`SELECT lo_get(${r.oid}, ${offset}, ${options.chunk}) AS c`
      d.update(row!.c)
    }
    done(d)
  })

  const batchByLoGet = Effect.fnUntraced(function*(batch: ReadonlyArray<LoRow>) {
    const oids = batch.map((r) => r.oid)
    const rows = yield* sql<{ readonly c: Uint8Array }>`
      SELECT lo_get(u.o) AS c FROM unnest(${oids}::oid[]) WITH ORDINALITY AS u(o, i) ORDER BY u.i`
    for (const row of rows) {
      const d = digester()
      d.update(row.c)
      done(d)
    }
  })

  const batchByLoRead = Effect.fnUntraced(function*(batch: ReadonlyArray<LoRow>) {
    for (const r of batch) {
      const [opened] = yield* sql<{ readonly fd: number }>`SELECT lo_open(${r.oid}, ${INV_READ}) AS fd`
      const fd = opened!.fd
      const d = digester()
      for (let read = 0; read < r.size;) {
        const [row] = yield* sql<{ readonly c: Uint8Array }>`SELECT loread(${fd}, ${Math.min(options.chunk, r.size - read)}) AS c`
        if (row!.c.byteLength === 0) break
        d.update(row!.c)
        read += row!.c.byteLength
      }
      yield* sql`SELECT lo_close(${fd})`
      done(d)
    }
  }, sql.withTransaction)

  yield* Effect.forEach(
    groupRows(rows, options),
    (batch) =>
      options.method === "loread"
        ? batchByLoRead(batch)
        : batch.length === 1 && batch[0]!.size > options.chunk
        ? bigByLoGet(batch[0]!)
        : batchByLoGet(batch),
    { concurrency: options.concurrency, discard: true }
  )
  return { objects, bytes, fingerprint: Buffer.from(fp).toString("hex") } satisfies ReadResult
})

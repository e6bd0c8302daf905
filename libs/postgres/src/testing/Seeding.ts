/**
 * Seeding `_nice_binary` the way the application fills it: the table (`createNiceBinaryTable`, the one definition of
 * it in the tree's TypeScript), the batch-job table, deterministic generated content of any size, and rows with real
 * large objects (`insertBinary`) that report the digests of what they wrote.
 */
import { type Digests, makeDigester, type SourceRow } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { toDatabaseError } from "../DatabaseErrors.ts"
import { oidText } from "../Oids.ts"


export interface NiceBinaryTableOptions {
  /** Create the `sha2 char(64)` column (default true); false mimics a database before the first run. */
  readonly sha2Column?: boolean
  /** Make `hash` the primary key, as the application does (default true). */
  readonly primaryKey?: boolean
  /** Allow NULL in `mime_type` (the application's column is NOT NULL; default false). */
  readonly nullableMimeType?: boolean
}

/** Creates `_nice_binary` the way the application defines it. */
export const createNiceBinaryTable = Effect.fn("Seeding.createNiceBinaryTable")(function*(
  options: NiceBinaryTableOptions = {}
) {
  const sql = yield* SqlClient.SqlClient
  const sha2 = options.sha2Column ?? true
  const pk = options.primaryKey ?? true
  yield* sql.unsafe(`
    CREATE TABLE _nice_binary (
      hash char(40) NOT NULL,
      size bigint NOT NULL,
      mime_type varchar(255)${options.nullableMimeType === true ? "" : " NOT NULL"},
      data oid${sha2 ? ",\n        sha2 char(64)" : ""}${pk ? ",\n        CONSTRAINT _nice_binary_pkey PRIMARY KEY (hash)" : ""}
    )`).pipe(Effect.mapError((e) => toDatabaseError("testing.createNiceBinaryTable", e)))
})

/** Creates `nice_batch_job (id varchar(255), active boolean)` with the given jobs. */
export const createBatchJobTable = Effect.fn("Seeding.createBatchJobTable")(function*(
  jobs: ReadonlyArray<{ readonly id: string; readonly active: boolean }>
) {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE nice_batch_job (id varchar(255) NOT NULL PRIMARY KEY, active boolean NOT NULL)`
  for (const job of jobs) {
    yield* sql`INSERT INTO nice_batch_job (id, active) VALUES (${job.id}, ${job.active})`
  }
}, Effect.mapError((e) => toDatabaseError("testing.createBatchJobTable", e)))
/** Deterministic pseudo-random content of any size, produced in chunks (never held whole). */
export interface GeneratedContent {
  readonly size: number
  readonly seed?: number
}

const generatedChunkSize = 1024 * 1024

/** Consecutive chunks (1 MiB) of the generated content (xorshift32; fast, deterministic per seed). */
export function* generatedChunks(content: GeneratedContent): Generator<Uint8Array> {
  let state = (content.seed ?? 1) >>> 0 || 0x9e3779b9
  let remaining = content.size
  while (remaining > 0) {
    const n = Math.min(remaining, generatedChunkSize)
    const words = new Uint32Array(Math.ceil(n / 4))
    for (let i = 0; i < words.length; i++) {
      state ^= state << 13
      state >>>= 0
      state ^= state >>> 17
      state ^= state << 5
      state >>>= 0
      words[i] = state
    }
    yield new Uint8Array(words.buffer, 0, n)
    remaining -= n
  }
}

/** Calls `f` with consecutive chunks of the generated content. */
export const forEachGeneratedChunk = (content: GeneratedContent, f: (chunk: Uint8Array) => void): void => {
  for (const chunk of generatedChunks(content)) f(chunk)
}

/** The whole generated content in memory (for small sizes and for asserting on uploaded bytes). */
export const generateBytes = (content: GeneratedContent): Uint8Array => {
  const out = new Uint8Array(content.size)
  let offset = 0
  forEachGeneratedChunk(content, (chunk) => {
    out.set(chunk, offset)
    offset += chunk.byteLength
  })
  return out
}

export interface BinaryInput {
  /** The content: literal bytes, or generated content of a given size (for big objects). */
  readonly bytes: Uint8Array | GeneratedContent
  /** NULL needs a table created with `nullableMimeType`. */
  readonly mimeType: string | null
  /** Stored instead of the content's SHA-1 (to seed malformed or wrong hashes). */
  readonly hash?: string
  /** Stored instead of the content's size. */
  readonly size?: number
  /** An already recorded sha2 (a row migrated by an earlier run). */
  readonly sha2?: string | null
  /** Stored instead of a new large object's oid; no large object is created (NULL oid, missing object). */
  readonly oid?: number | null
  /** Create the large object at this id (`lo_create(id)`) instead of one the server picks. */
  readonly createAt?: number
}

export interface InsertedBinary {
  /** `hash` as stored (a `char(40)`: shorter values come back padded with spaces). */
  readonly hash: string
  readonly oid: number | null
  readonly size: number
  readonly mimeType: string | null
  readonly sha2: string | null
  /** The digests of the content that was written (whatever `hash` / `size` claim). */
  readonly digests: Digests
  /** The row as `LoSource` yields it. */
  readonly row: SourceRow
}

const isGenerated = (bytes: Uint8Array | GeneratedContent): bytes is GeneratedContent => !(bytes instanceof Uint8Array)

const writeChunkSize = 4 * 1024 * 1024

/**
 * Writes a large object in chunks inside one transaction and returns its oid: the server picks the id, or `at`
 * (`lo_create(at)`, e.g. an id above 2^31 as production databases have). Oids travel as text (see Oids.ts).
 */
const writeLargeObject = Effect.fn("Seeding.writeLargeObject")(function*(
  bytes: Uint8Array | GeneratedContent,
  at?: number
) {
  const sql = yield* SqlClient.SqlClient
  return yield* sql.withTransaction(Effect.gen(function*() {
    const [created] = yield* sql<{ readonly oid: number }>`SELECT lo_create(${oidText(at ?? 0)}::oid) AS oid`
    const oid = created!.oid
    let offset = 0
    // generated content is produced and written 1 MiB at a time: a 100 MiB object is never in memory as a whole
    const chunks = isGenerated(bytes) ? generatedChunks(bytes) : slices(bytes, writeChunkSize)
    for (const chunk of chunks) {
      yield* sql`SELECT lo_put(${oidText(oid)}::oid, ${offset}, ${chunk})`
      offset += chunk.byteLength
    }
    return oid
  }))
})

function* slices(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, Math.min(bytes.byteLength, at + size))
}

export const digestOf = (bytes: Uint8Array | GeneratedContent): Digests => {
  const d = makeDigester()
  if (isGenerated(bytes)) forEachGeneratedChunk(bytes, (c) => d.update(c))
  else d.update(bytes)
  return d.digest()
}

/**
 * Inserts one `_nice_binary` row and (unless `oid` is given) its large object. Returns what was stored and the real
 * digests of the content.
 */
export const insertBinary = Effect.fn("Seeding.insertBinary")(function*(input: BinaryInput) {
  const sql = yield* SqlClient.SqlClient
  const digests = digestOf(input.bytes)
  const oid = input.oid !== undefined ? input.oid : yield* writeLargeObject(input.bytes, input.createAt)
  const hash = input.hash ?? digests.sha1
  const size = input.size ?? digests.size
  const sha2 = input.sha2 ?? null
  const [stored] = yield* sql<{ readonly hash: string }>`
    INSERT INTO _nice_binary (hash, size, mime_type, data, sha2)
    VALUES (${hash}, ${size}, ${input.mimeType}, ${oid === null ? null : oidText(oid)}::oid, ${sha2})
    RETURNING hash`
  const storedHash = stored!.hash
  const inserted: InsertedBinary = {
    hash: storedHash,
    oid,
    size,
    mimeType: input.mimeType,
    sha2,
    digests,
    row: { hash: storedHash, oid, size, mimeType: input.mimeType }
  }
  return inserted
}, Effect.mapError((e) => toDatabaseError("testing.insertBinary", e)))

/**
 * Sets a row's `mime_type` to exactly `bytes`, UTF-8 or not: only a `SQL_ASCII` database (`DatabaseOptions`) takes
 * bytes that are not UTF-8 as text, as legacy applications wrote them.
 */
export const setMimeTypeBytes = Effect.fn("Seeding.setMimeTypeBytes")(function*(hash: string, bytes: Uint8Array) {
  const sql = yield* SqlClient.SqlClient
  yield* sql`UPDATE _nice_binary SET mime_type = convert_from(${bytes}, 'SQL_ASCII') WHERE hash = ${hash}`
}, Effect.mapError((e) => toDatabaseError("testing.setMimeTypeBytes", e)))

/** The large-object oids that exist in the current database. */
export const largeObjectOids = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly oid: number }>`SELECT oid FROM pg_largeobject_metadata ORDER BY oid`
  return rows.map((r) => r.oid)
}).pipe(Effect.mapError((e) => toDatabaseError("testing.largeObjectOids", e)))

/**
 * An oid that is not a large object (created and unlinked, so it is a plausible, real-looking oid); with `at`, that
 * very id (e.g. one above 2^31).
 */
export const unusedOidAt = Effect.fn("Seeding.unusedOidAt")(function*(at?: number) {
  const sql = yield* SqlClient.SqlClient
  const failed = Effect.mapError((e: SqlError) => toDatabaseError("testing.unusedOid", e))
  const [r] = yield* sql<{ readonly oid: number }>`SELECT lo_create(${oidText(at ?? 0)}::oid) AS oid`.pipe(failed)
  yield* sql`SELECT lo_unlink(${oidText(r!.oid)}::oid)`.pipe(failed)
  return r!.oid
})

/** An oid that is not a large object (created and unlinked, so it is a plausible, real-looking oid). */
export const unusedOid = unusedOidAt()

/**
 * Installs the `lo` extension's `lo_manage` trigger on `_nice_binary.data`, as the application has it: deleting a row
 * (or changing its oid) unlinks its large object in the same transaction.
 */
export const installLoManageTrigger = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE EXTENSION IF NOT EXISTS lo`
  yield* sql`CREATE TRIGGER t_nice_binary_data BEFORE UPDATE OR DELETE ON _nice_binary
             FOR EACH ROW EXECUTE FUNCTION lo_manage(data)`
}).pipe(Effect.mapError((e) => toDatabaseError("testing.installLoManageTrigger", e)))

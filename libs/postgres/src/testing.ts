/**
 * Test support for code that talks to a real PostgreSQL (`@lo-migrate/postgres/testing`).
 *
 * - `ThrowawayDatabase`: a uniquely named database on the server of `PG_TEST_URL`
 *   (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped WITH (FORCE) when the scope / layer is released.
 *   If that server is unreachable and Docker is available, a PostgreSQL testcontainer is started once per process.
 * - Seeding: `createNiceBinaryTable`, `insertBinary`, `seedOriginalDataSet`, `seedInvalidDataSet`,
 *   `createBatchJobTable`. Each returns what it inserted (including the real digests of the content) so that tests can
 *   assert on it.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { DatabaseError, type Digests, makeDigester, type RowFailureReason, type SourceRow } from "@lo-migrate/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as SqlClient from "effect/sql/SqlClient"
import { randomBytes } from "node:crypto"
import { toDatabaseError } from "./DatabaseErrors.ts"
import { oidText } from "./Oids.ts"
import { PgDatabase } from "./PgDatabase.ts"

// ---------------------------------------------------------------------------------------------------------------------
// Throwaway databases
// ---------------------------------------------------------------------------------------------------------------------

export const defaultAdminUrl = "postgres://postgres@127.0.0.1:5432/postgres"

/** The admin URL tests use: `PG_TEST_URL` or the local default. */
export const testAdminUrl = (): string => {
  const fromEnv = process.env["PG_TEST_URL"]
  return fromEnv === undefined || fromEnv.length === 0 ? defaultAdminUrl : fromEnv
}

const withDatabase = (url: string, database: string): string => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** Runs `f` on a single admin connection (not a pool) to `url`. */
const withAdmin = <A, E>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.flatMap(
      PgClient.makeClient({ url: Redacted.make(url), applicationName: "lo-migrate-tests", connectTimeout: "3 seconds" }),
      f
    )
  ).pipe(
    Effect.provide(Reactivity.layer),
    Effect.mapError((e) => toDatabaseError("testing.admin", e, [url]))
  )

const reachable = (url: string) =>
  withAdmin(url, (sql) => sql`SELECT 1`).pipe(
    Effect.as(true),
    Effect.catch(() => Effect.succeed(false))
  )


/**
 * Starts a PostgreSQL 15 testcontainer (once per process; Ryuk removes it when the process ends). Only used when
 * `PG_TEST_URL` cannot be reached.
 */
const startContainer = Effect.tryPromise({
  try: async () => {
    const { PostgreSqlContainer } = await import("@testcontainers/postgresql")
    const started = await new PostgreSqlContainer("postgres:15-alpine").start()
    return started.getConnectionUri()
  },
  catch: (cause) =>
    new DatabaseError({
      operation: "testing.container",
      detail: `PG_TEST_URL (${Redacted.make(testAdminUrl())}) is unreachable and no PostgreSQL testcontainer ` +
        `could be started: ${cause instanceof Error ? cause.message : String(cause)}`,
      retryable: false
    })
})

const resolveAdmin: Effect.Effect<string, DatabaseError> = Effect.runSync(Effect.cached(Effect.gen(function*() {
  const url = testAdminUrl()
  if (yield* reachable(url)) return url
  return yield* startContainer
})))

export interface ThrowawayDatabaseInfo {
  /** The database's name (unique per call). */
  readonly name: string
  /** A URL for it, on the same server and with the same credentials as the admin URL. */
  readonly url: Redacted.Redacted<string>
}

const makeThrowaway: Effect.Effect<ThrowawayDatabaseInfo, DatabaseError, Scope.Scope> = Effect.gen(function*() {
  const admin = yield* resolveAdmin
  const name = `lomt_${process.pid}_${randomBytes(6).toString("hex")}`
  const info: ThrowawayDatabaseInfo = { name, url: Redacted.make(withDatabase(admin, name)) }
  yield* Effect.acquireRelease(
    withAdmin(admin, (sql) => sql.unsafe(`CREATE DATABASE ${name}`)),
    () =>
      withAdmin(admin, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(
        Effect.catch((e) => Effect.logWarning(`could not drop throwaway database ${name}: ${e.message}`))
      )
  )
  return info
})

/** A uniquely named database, dropped (WITH (FORCE)) when released. */
export class ThrowawayDatabase extends Context.Service<ThrowawayDatabase, ThrowawayDatabaseInfo>()(
  "lo-migrate/testing/ThrowawayDatabase"
) {
  /** Creates the database; the enclosing scope drops it. */
  static readonly make: Effect.Effect<ThrowawayDatabaseInfo, DatabaseError, Scope.Scope> = makeThrowaway

  static readonly layer: Layer.Layer<ThrowawayDatabase, DatabaseError> = Layer.effect(ThrowawayDatabase, makeThrowaway)

  /** A throwaway database plus a `PgDatabase` pool on it (closed before the database is dropped). */
  static readonly layerWithClient = (
    maxConnections = 4
  ): Layer.Layer<ThrowawayDatabase | PgClient.PgClient | SqlClient.SqlClient, DatabaseError> =>
    Layer.unwrap(Effect.gen(function*() {
      const db = yield* ThrowawayDatabase
      return PgDatabase.layer({ url: db.url, maxConnections })
    }))
      .pipe(Layer.provideMerge(ThrowawayDatabase.layer))
}

// ---------------------------------------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------------------------------------

export interface NiceBinaryTableOptions {
  /** Create the `sha2 char(64)` column (default true); false mimics a database before the first run. */
  readonly sha2Column?: boolean
  /** Make `hash` the primary key, as the application does (default true). */
  readonly primaryKey?: boolean
  /** Allow NULL in `mime_type` (the application's column is NOT NULL; default false). */
  readonly nullableMimeType?: boolean
}

/** Creates `_nice_binary` the way the application defines it. */
export const createNiceBinaryTable = (options: NiceBinaryTableOptions = {}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const sha2 = options.sha2Column ?? true
    const pk = options.primaryKey ?? true
    yield* sql.unsafe(`
      CREATE TABLE _nice_binary (
        hash char(40) NOT NULL,
        size bigint NOT NULL,
        mime_type varchar(255)${options.nullableMimeType === true ? "" : " NOT NULL"},
        data oid${sha2 ? ",\n        sha2 char(64)" : ""}${pk ? ",\n        CONSTRAINT _nice_binary_pkey PRIMARY KEY (hash)" : ""}
      )`)
  }).pipe(Effect.mapError((e) => toDatabaseError("testing.createNiceBinaryTable", e)))

/** Creates `nice_batch_job (id varchar(255), active boolean)` with the given jobs. */
export const createBatchJobTable = (jobs: ReadonlyArray<{ readonly id: string; readonly active: boolean }>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE nice_batch_job (id varchar(255) NOT NULL PRIMARY KEY, active boolean NOT NULL)`
    for (const job of jobs) {
      yield* sql`INSERT INTO nice_batch_job (id, active) VALUES (${job.id}, ${job.active})`
    }
  }).pipe(Effect.mapError((e) => toDatabaseError("testing.createBatchJobTable", e)))

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
const writeLargeObject = (bytes: Uint8Array | GeneratedContent, at?: number) =>
  Effect.gen(function*() {
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

const digestOf = (bytes: Uint8Array | GeneratedContent): Digests => {
  const d = makeDigester()
  if (isGenerated(bytes)) forEachGeneratedChunk(bytes, (c) => d.update(c))
  else d.update(bytes)
  return d.digest()
}

/**
 * Inserts one `_nice_binary` row and (unless `oid` is given) its large object. Returns what was stored and the real
 * digests of the content.
 */
export const insertBinary = (input: BinaryInput) =>
  Effect.gen(function*() {
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
  }).pipe(Effect.mapError((e) => toDatabaseError("testing.insertBinary", e)))

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
export const unusedOidAt = (at?: number) => Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [r] = yield* sql<{ readonly oid: number }>`SELECT lo_create(${oidText(at ?? 0)}::oid) AS oid`
  yield* sql`SELECT lo_unlink(${oidText(r!.oid)}::oid)`
  return r!.oid
}).pipe(Effect.mapError((e) => toDatabaseError("testing.unusedOid", e)))

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

export interface OriginalDataSet {
  /** 10 MiB of generated content. */
  readonly big: InsertedBinary
  /** A 0-byte object. */
  readonly empty: InsertedBinary
  /** A few small objects of different sizes and mime types. */
  readonly small: ReadonlyArray<InsertedBinary>
  /** A row that already has its sha2 (migrated by an earlier run): the source must not yield it. */
  readonly migrated: InsertedBinary
  /** Every row the source must yield, in hash order. */
  readonly pending: ReadonlyArray<InsertedBinary>
}

const sha256Of = (bytes: Uint8Array) => digestOf(bytes).sha256

/** The data set of the original tool's end-to-end test, with a 10 MiB object added. */
export const seedOriginalDataSet = Effect.gen(function*() {
  const big = yield* insertBinary({ bytes: { size: 10 * 1024 * 1024, seed: 42 }, mimeType: "application/pdf" })
  const empty = yield* insertBinary({ bytes: new Uint8Array(0), mimeType: "octet/stream" })
  const small: Array<InsertedBinary> = []
  small.push(yield* insertBinary({ bytes: new TextEncoder().encode("hello, world\n"), mimeType: "text/plain" }))
  small.push(yield* insertBinary({ bytes: generateBytes({ size: 125, seed: 7 }), mimeType: "octet/stream" }))
  small.push(yield* insertBinary({ bytes: generateBytes({ size: 6842, seed: 8 }), mimeType: "" }))
  small.push(yield* insertBinary({ bytes: generateBytes({ size: 81, seed: 9 }), mimeType: "image/png" }))
  const migratedBytes = generateBytes({ size: 44, seed: 10 })
  const migrated = yield* insertBinary({
    bytes: migratedBytes,
    mimeType: "unused",
    sha2: sha256Of(migratedBytes)
  })
  const pending = [big, empty, ...small].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0))
  const set: OriginalDataSet = { big, empty, small, migrated, pending }
  return set
})

export interface InvalidRow extends InsertedBinary {
  /** The `RowFailed` reason a reader must report for this row. */
  readonly expected: RowFailureReason["_tag"]
}

export interface InvalidDataSet {
  readonly shortHash: InvalidRow
  readonly wrongHash: InvalidRow
  readonly nonHexHash: InvalidRow
  readonly missingObject: InvalidRow
  readonly nullOid: InvalidRow
  readonly wrongSize: InvalidRow
  readonly all: ReadonlyArray<InvalidRow>
}

/** The original tool's invalid data set, plus a missing object, a NULL oid and a wrong size. */
export const seedInvalidDataSet = Effect.gen(function*() {
  const content = (seed: number, size = 100) => generateBytes({ size, seed })
  const tag = (expected: RowFailureReason["_tag"]) => (row: InsertedBinary): InvalidRow => ({ ...row, expected })
  const shortHash = tag("MalformedHash")(
    yield* insertBinary({ bytes: content(21), mimeType: "octet/stream", hash: "392007d934dd54600110b683f5e52aeeedb1" })
  )
  const wrongHash = tag("Sha1Mismatch")(
    yield* insertBinary({
      bytes: content(22, 81),
      mimeType: "octet/stream",
      hash: "0000000042b415eaf546865acf6287fc8ac1f0e5"
    })
  )
  const nonHexHash = tag("MalformedHash")(
    yield* insertBinary({
      bytes: content(23, 81),
      mimeType: "octet/stream",
      hash: "d0706a2d42b415eaX546865acf6287fc8ac1f0e5"
    })
  )
  const missingOid = yield* unusedOid
  const missingObject = tag("MissingLargeObject")(
    yield* insertBinary({ bytes: content(24), mimeType: "text/plain", oid: missingOid })
  )
  const nullOid = tag("NullOid")(yield* insertBinary({ bytes: content(25), mimeType: "text/plain", oid: null }))
  const wrongSize = tag("SizeMismatch")(yield* insertBinary({ bytes: content(26, 300), mimeType: "x/y", size: 299 }))
  const all = [shortHash, wrongHash, nonHexHash, missingObject, nullOid, wrongSize]
  const set: InvalidDataSet = { shortHash, wrongHash, nonHexHash, missingObject, nullOid, wrongSize, all }
  return set
})

// ---------------------------------------------------------------------------------------------------------------------
// Least-privilege roles
// ---------------------------------------------------------------------------------------------------------------------

export interface ThrowawayRoleInfo {
  /** The role's name (unique per call; roles are cluster-wide). */
  readonly name: string
  /** The throwaway database's URL with this role as the user. */
  readonly url: Redacted.Redacted<string>
}

/** The statements that give `role` exactly the rights the README lists for the migrator (sha2 column present). */
export const minimalGrants = (role: string): ReadonlyArray<string> => [
  `GRANT SELECT, UPDATE (sha2) ON _nice_binary TO ${role}`,
  `GRANT SELECT ON nice_batch_job TO ${role}`,
  // every large object _nice_binary points at (what a DBA runs; a DO block, since GRANT takes no expression)
  `DO $$ DECLARE o oid; BEGIN
     FOR o IN SELECT m.oid FROM pg_largeobject_metadata m WHERE m.oid IN (SELECT data FROM _nice_binary) LOOP
       EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO ${role}', o);
     END LOOP; END $$`
]

/**
 * A LOGIN role that owns nothing, created in the current (throwaway) database's cluster; the scope revokes what it was
 * granted there (`DROP OWNED BY`) and drops it. `grants` run as the admin after the role is created (`minimalGrants`).
 */
export const throwawayRole = (grants: (role: string) => ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const db = yield* ThrowawayDatabase
    const name = `lomt_role_${process.pid}_${randomBytes(4).toString("hex")}`
    yield* Effect.acquireRelease(
      sql.unsafe(`CREATE ROLE ${name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`),
      () =>
        sql.unsafe(`DROP OWNED BY ${name}`).pipe(
          Effect.andThen(sql.unsafe(`DROP ROLE IF EXISTS ${name}`)),
          Effect.catch((e) => Effect.logWarning(`could not drop throwaway role ${name}: ${String(e)}`))
        )
    )
    for (const statement of grants(name)) yield* sql.unsafe(statement)
    const url = new URL(Redacted.value(db.url))
    url.username = name
    url.password = ""
    const info: ThrowawayRoleInfo = { name, url: Redacted.make(url.toString()) }
    return info
  }).pipe(Effect.mapError((e) => toDatabaseError("testing.throwawayRole", e)))

/** Runs `self` in a fresh throwaway database with a pool of `maxConnections` (dropped afterwards). */
export const inThrowawayDatabase = (maxConnections = 4) =>
<A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | DatabaseError, Exclude<R, ThrowawayDatabase | PgClient.PgClient | SqlClient.SqlClient>> =>
  Effect.provide(self, ThrowawayDatabase.layerWithClient(maxConnections))

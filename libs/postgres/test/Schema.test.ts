import { assert, describe, it } from "@effect/vitest"
import { DatabaseError } from "@lo-migrate/core"
import { Effect, Exit, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import {
  AddSha2ColumnStatement,
  BatchJobId,
  checkBatchJob,
  checkPrivileges,
  checkRepairable,
  checkSeesEveryRow,
  ensurePendingIndex,
  ensureSha2Column,
  finalize,
  FinalizeRefused,
  PendingIndex,
  PendingIndexStatement,
  PgDatabase,
  PreflightFailed,
  ReadOnlySession,
  SchemaNotPermitted,
  Sha2UniqueIndex,
  NoLargeObjects,
  RowSecurityActive,
  sqlStateOf,
  tableStatus,
  UpdatesNotReplicable
} from "../src/index.ts"
import {
  createBatchJobTable,
  createNiceBinaryTable,
  inThrowawayDatabase,
  insertBinary,
  minimalGrants,
  seedOriginalDataSet,
  throwawayRole,
  ThrowawayDatabase
} from "../src/testing.ts"

const columnInfo = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly type: string; readonly notNull: boolean }>`
    SELECT format_type(atttypid, atttypmod) AS type, attnotnull AS "notNull" FROM pg_attribute
    WHERE attrelid = '_nice_binary'::regclass AND attname = 'sha2' AND NOT attisdropped`
  return rows[0]
})

const indexInfo = (name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly valid: boolean; readonly unique: boolean; readonly def: string }>`
      SELECT indisvalid AS valid, indisunique AS unique, pg_get_indexdef(indexrelid) AS def
      FROM pg_index WHERE indexrelid = to_regclass(${name})`
    return rows[0]
  })

const setAllSha2 = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // a distinct fake sha2 per row (the unique index must accept it)
  yield* sql`UPDATE _nice_binary SET sha2 = encode(sha256(convert_to(hash, 'UTF8')), 'hex') WHERE sha2 IS NULL`
})

describe("ensureSha2Column", () => {
  it.live("adds sha2 char(64) once, then reports it present", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable({ sha2Column: false })
      assert.isUndefined(yield* columnInfo)
      assert.isTrue(yield* ensureSha2Column)
      assert.deepStrictEqual(yield* columnInfo, { type: "character(64)", notNull: false })
      assert.isFalse(yield* ensureSha2Column)
      assert.isFalse(yield* ensureSha2Column)
      assert.deepStrictEqual(yield* columnInfo, { type: "character(64)", notNull: false })
    }).pipe(inThrowawayDatabase()))

  it.live("refuses a sha2 column too short for 64 hex characters, and a missing table", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const missing = yield* Effect.flip(ensureSha2Column)
      assert.strictEqual(missing._tag, "DatabaseError")
      assert.include(missing.message, "_nice_binary does not exist")
      yield* createNiceBinaryTable({ sha2Column: false })
      yield* sql`ALTER TABLE _nice_binary ADD COLUMN sha2 char(44)`
      const error = yield* Effect.flip(ensureSha2Column)
      assert.strictEqual(error._tag, "DatabaseError")
      if (error._tag === "DatabaseError") assert.isFalse(error.retryable)
      assert.include(error.message, "character(44)")
    }).pipe(inThrowawayDatabase()))
})

describe("finalize", () => {
  it.live("is refused with the count while rows are pending, then makes sha2 NOT NULL and UNIQUE", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      const data = yield* seedOriginalDataSet
      yield* ensurePendingIndex
      const refused = yield* Effect.flip(finalize)
      assert.instanceOf(refused, FinalizeRefused)
      assert.strictEqual((refused as FinalizeRefused).reason, "RowsPending")
      assert.strictEqual((refused as FinalizeRefused).remaining, data.pending.length)
      assert.include(refused.message, `${data.pending.length} row(s)`)
      // nothing changed
      assert.deepStrictEqual(yield* columnInfo, { type: "character(64)", notNull: false })
      assert.isUndefined(yield* indexInfo(Sha2UniqueIndex))

      yield* setAllSha2
      yield* finalize
      assert.deepStrictEqual(yield* columnInfo, { type: "character(64)", notNull: true })
      const index = yield* indexInfo(Sha2UniqueIndex)
      assert.isTrue(index?.valid)
      assert.isTrue(index?.unique)
      assert.isUndefined(yield* indexInfo(PendingIndex), "the pending-rows index is dropped")
      const constraints = yield* sql<{ readonly n: bigint }>`
        SELECT count(*) AS n FROM pg_constraint WHERE conrelid = '_nice_binary'::regclass AND contype = 'c'`
      assert.strictEqual(constraints[0]?.n, 0n, "the helper CHECK constraint is gone")

      // idempotent
      yield* finalize

      // the constraints hold
      const nullInsert = yield* Effect.exit(insertBinary({ bytes: new Uint8Array([1]), mimeType: "a/b" }))
      assert.isTrue(Exit.isFailure(nullInsert))
      const dupInsert = yield* Effect.exit(
        insertBinary({ bytes: new Uint8Array([2]), mimeType: "a/b", sha2: data.migrated.sha2 })
      )
      assert.isTrue(Exit.isFailure(dupInsert))
    }).pipe(inThrowawayDatabase()))

  it.live("is refused when the sha2 column does not exist yet", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable({ sha2Column: false })
      const refused = yield* Effect.flip(finalize)
      assert.instanceOf(refused, FinalizeRefused)
      assert.strictEqual((refused as FinalizeRefused).reason, "ColumnMissing")
    }).pipe(inThrowawayDatabase()))

  it.live("is refused when two rows share a sha2, leaving no invalid index behind", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const same = "a".repeat(64)
      yield* insertBinary({ bytes: new Uint8Array([1]), mimeType: "a/b", sha2: same })
      yield* insertBinary({ bytes: new Uint8Array([2]), mimeType: "a/b", sha2: same })
      const refused = yield* Effect.flip(finalize)
      assert.instanceOf(refused, FinalizeRefused)
      assert.strictEqual((refused as FinalizeRefused).reason, "DuplicateSha2")
      assert.isUndefined(yield* indexInfo(Sha2UniqueIndex))
    }).pipe(inThrowawayDatabase()))
})

describe("ensurePendingIndex", () => {
  it.live("builds the partial index concurrently once", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      assert.isTrue(yield* ensurePendingIndex)
      assert.isFalse(yield* ensurePendingIndex)
      const index = yield* indexInfo(PendingIndex)
      assert.isTrue(index?.valid)
      assert.include(index?.def, "WHERE (sha2 IS NULL)")
    }).pipe(inThrowawayDatabase()))

  it.live("replaces an INVALID leftover of an interrupted build", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* sql.unsafe(`CREATE INDEX ${PendingIndex} ON _nice_binary (hash) WHERE sha2 IS NULL`)
      yield* sql`UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(${PendingIndex})`
      assert.isFalse((yield* indexInfo(PendingIndex))?.valid)
      assert.isTrue(yield* ensurePendingIndex)
      assert.isTrue((yield* indexInfo(PendingIndex))?.valid)
    }).pipe(inThrowawayDatabase()))
})

describe("checkBatchJob", () => {
  const preflight = (reason: PreflightFailed["reason"]) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(checkBatchJob)
      assert.instanceOf(error, PreflightFailed)
      assert.strictEqual((error as PreflightFailed).reason, reason)
      assert.include(error.message, BatchJobId)
      return error
    })

  it.live("fails when nice_batch_job does not exist", () =>
    preflight("TableMissing").pipe(inThrowawayDatabase()))

  it.live("fails when the job's row is missing", () =>
    Effect.gen(function*() {
      yield* createBatchJobTable([{ id: "nice2.dms.RandomBatchJob", active: true }, {
        id: "nice2.optional.an.Arbitrary",
        active: false
      }])
      const error = yield* preflight("JobMissing")
      assert.include(error.message, "not found")
    }).pipe(inThrowawayDatabase()))

  it.live("fails while the job is active", () =>
    Effect.gen(function*() {
      yield* createBatchJobTable([{ id: "nice2.dms.RandomBatchJob", active: false }, { id: BatchJobId, active: true }])
      const error = yield* preflight("JobActive")
      assert.include(error.message, "deactivate")
    }).pipe(inThrowawayDatabase()))

  it.live("passes when the job is inactive (other jobs may be active)", () =>
    Effect.gen(function*() {
      yield* createBatchJobTable([{ id: "nice2.dms.RandomBatchJob", active: true }, { id: BatchJobId, active: false }])
      yield* checkBatchJob
    }).pipe(inThrowawayDatabase()))
})

describe("a role that owns nothing (least privilege)", () => {
  /** Runs `self` on a pool connected as `url` (the throwaway role). */
  const asRole = (url: Redacted.Redacted<string>) => <A, E>(self: Effect.Effect<A, E, SqlClient.SqlClient>) =>
    self.pipe(Effect.scoped, Effect.provide(PgDatabase.layer({ url, maxConnections: 1 })))

  const refused = (error: unknown, what: SchemaNotPermitted["what"], statement: string) => {
    assert.instanceOf(error, SchemaNotPermitted)
    const e = error as SchemaNotPermitted
    assert.strictEqual(e.what, what)
    assert.strictEqual(e.statement, statement)
    assert.include(e.message, `${statement};`)
  }

  it.live("with the README's grants: the pre-flights pass, the pending index is SchemaNotPermitted with its statement", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      yield* createBatchJobTable([{ id: BatchJobId, active: false }])
      yield* insertBinary({ bytes: new Uint8Array([1, 2, 3]), mimeType: "a/b" })
      const role = yield* throwawayRole(minimalGrants)
      yield* Effect.gen(function*() {
        yield* checkBatchJob
        yield* checkPrivileges
        assert.isFalse(yield* ensureSha2Column)
        const error = yield* Effect.flip(ensurePendingIndex)
        refused(error, "CreatePendingIndex", PendingIndexStatement)
        assert.include(error.message, role.name)
      }).pipe(asRole(role.url))
      assert.isUndefined(yield* indexInfo(PendingIndex))
    }).pipe(Effect.scoped, inThrowawayDatabase()))

  it.live("a read-only session (the role's default_transaction_read_only) is refused before anything is written", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable({ sha2Column: false })
      const role = yield* throwawayRole((r) => [`GRANT SELECT ON _nice_binary TO ${r}`, `ALTER TABLE _nice_binary OWNER TO ${r}`])
      yield* sql.unsafe(`ALTER ROLE ${role.name} SET default_transaction_read_only = on`)
      for (const task of [checkPrivileges, ensureSha2Column]) {
        const error = yield* Effect.flip(task).pipe(asRole(role.url))
        assert.instanceOf(error, ReadOnlySession)
        const e = error as ReadOnlySession
        assert.isFalse(e.standby)
        assert.include(e.message, "the session is read-only (transaction_read_only is on")
        assert.include(e.message, `ALTER ROLE ${role.name} SET default_transaction_read_only = off;`)
      }
      assert.isUndefined(yield* columnInfo, "nothing was changed")
      // the statement it gives makes the same role pass (as the table's owner it adds the column)
      yield* sql.unsafe(`ALTER ROLE ${role.name} SET default_transaction_read_only = off`)
      assert.isTrue(yield* ensureSha2Column.pipe(asRole(role.url)))
      yield* sql.unsafe(`ALTER TABLE _nice_binary OWNER TO CURRENT_USER`)
    }).pipe(Effect.scoped, inThrowawayDatabase()))

  it.live("finalize whose statements the server cancels (a statement_timeout in the URL's options): not retryable, saying why; no INVALID index left", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const db = yield* ThrowawayDatabase
      yield* createNiceBinaryTable()
      // 300,000 migrated rows: the unique index build takes far longer than 20 ms
      yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data, sha2)
                 SELECT md5(i::text) || lpad(to_hex(i), 8, '0'), 1, 'a/b', NULL, md5(i::text) || md5((i + 1)::text)
                 FROM generate_series(1, 300000) i`
      // NOT NULL already (a finalize cancelled after that step): the statement cancelled is the index build
      yield* sql`ALTER TABLE _nice_binary ALTER COLUMN sha2 SET NOT NULL`
      const url = new URL(Redacted.value(db.url))
      url.searchParams.set("options", "-c statement_timeout=20")
      const error = yield* Effect.flip(finalize.pipe(
        Effect.provide(PgDatabase.layer({ url: Redacted.make(url.toString()), maxConnections: 2 }))
      ))
      assert.instanceOf(error, DatabaseError)
      const e = error as DatabaseError
      assert.isFalse(e.retryable, "a timeout cancels the same statement again: retrying only repeats it")
      assert.include(e.message, "the server cancelled a statement of finalize (")
      assert.include(e.message, "statement timeout")
      assert.include(e.message, "run finalize on a direct connection without a statement_timeout")
      // no unique index half built is left for the application's writes to maintain
      assert.isUndefined(yield* indexInfo(Sha2UniqueIndex))
      // and without the timeout it completes
      yield* finalize
      assert.deepStrictEqual(yield* columnInfo, { type: "character(64)", notNull: true })
      assert.strictEqual((yield* indexInfo(Sha2UniqueIndex))?.valid, true)
    }).pipe(inThrowawayDatabase()), 120_000)

  it.live("finalize by an owner under FORCE ROW LEVEL SECURITY that hides the pending rows: refused, saying the count does not see them, not a made-up count", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* insertBinary({ bytes: new Uint8Array([1, 2, 3]), mimeType: "a/b" })
      yield* insertBinary({ bytes: new Uint8Array([4, 5, 6]), mimeType: "a/b" })
      yield* sql`UPDATE _nice_binary SET sha2 = repeat('a', 64) WHERE hash = (SELECT min(hash) FROM _nice_binary)`
      const role = yield* throwawayRole((r) => [`ALTER TABLE _nice_binary OWNER TO ${r}`])
      yield* sql.unsafe(`ALTER TABLE _nice_binary ENABLE ROW LEVEL SECURITY`)
      yield* sql.unsafe(`ALTER TABLE _nice_binary FORCE ROW LEVEL SECURITY`)
      yield* sql.unsafe(`CREATE POLICY migrated_only ON _nice_binary USING (sha2 IS NOT NULL)`)
      const error = yield* Effect.flip(finalize).pipe(asRole(role.url))
      assert.instanceOf(error, FinalizeRefused)
      const refusal = error as FinalizeRefused
      assert.strictEqual(refusal.reason, "RowsPending")
      assert.include(refusal.message, "at least 1 row(s) of _nice_binary still have sha2 NULL")
      assert.include(refusal.message, "row-level security hides from the role")
      assert.deepStrictEqual(yield* columnInfo, { type: "character(64)", notNull: false }, "the column was left as it was")
      yield* sql.unsafe(`ALTER TABLE _nice_binary OWNER TO CURRENT_USER`)
    }).pipe(Effect.scoped, inThrowawayDatabase()))

  it.live("row-level security that hides rows from the role is refused before anything is written; the policy it names lets it see them all", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* createBatchJobTable([])
      yield* Effect.forEach([100, 200, 2000, 3000], (size, i) => insertBinary({ bytes: { size, seed: 60 + i }, mimeType: "a/b" }))
      const role = yield* throwawayRole(minimalGrants)
      yield* sql.unsafe("ALTER TABLE _nice_binary ENABLE ROW LEVEL SECURITY")
      yield* sql.unsafe(`CREATE POLICY tenant ON _nice_binary TO ${role.name} USING (size < 1000)`)
      const visible = Effect.flatMap(SqlClient.SqlClient, (asIt) =>
        asIt<{ readonly n: number }>`SELECT count(*)::int AS n FROM _nice_binary`).pipe(asRole(role.url))
      assert.strictEqual((yield* visible)[0]?.n, 2, "the role sees half of the rows")
      let statement = ""
      for (const task of [checkPrivileges, ensureSha2Column]) {
        const error = yield* Effect.flip(task.pipe(asRole(role.url)))
        assert.instanceOf(error, RowSecurityActive)
        const e = error as RowSecurityActive
        assert.include(e.message, `row-level security is active on _nice_binary for role ${role.name}`)
        statement = e.statement
      }
      // the owner (here the test's superuser) is not subject to it
      yield* checkPrivileges
      yield* sql.unsafe(statement)
      assert.strictEqual((yield* visible)[0]?.n, 4)
      yield* checkPrivileges.pipe(asRole(role.url))
      assert.isFalse(yield* ensureSha2Column.pipe(asRole(role.url)))
      // a restrictive policy can hide rows whatever the permissive ones allow
      yield* sql.unsafe(`CREATE POLICY small_only ON _nice_binary AS RESTRICTIVE TO ${role.name} USING (size < 1000)`)
      assert.instanceOf(yield* Effect.flip(checkPrivileges.pipe(asRole(role.url))), RowSecurityActive)
    }).pipe(Effect.scoped, inThrowawayDatabase()))

  it.live("status and verify's check: row-level security that may hide rows from a read-only role is refused; a SELECT policy for every row passes it, not the run's", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* createBatchJobTable([])
      yield* Effect.forEach([100, 200, 2000, 3000], (size, i) => insertBinary({ bytes: { size, seed: 70 + i }, mimeType: "a/b" }))
      const role = yield* throwawayRole(minimalGrants)
      // no row-level security: nothing to refuse
      yield* checkSeesEveryRow.pipe(asRole(role.url))
      yield* sql.unsafe("ALTER TABLE _nice_binary ENABLE ROW LEVEL SECURITY")
      // enabled without any policy: the role sees no row at all
      const none = yield* Effect.flip(checkSeesEveryRow.pipe(asRole(role.url)))
      assert.instanceOf(none, RowSecurityActive)
      yield* sql.unsafe(`CREATE POLICY tenant ON _nice_binary TO ${role.name} USING (size < 1000)`)
      const error = yield* Effect.flip(checkSeesEveryRow.pipe(asRole(role.url)))
      assert.instanceOf(error, RowSecurityActive)
      const e = error as RowSecurityActive
      assert.strictEqual(e.use, "read")
      assert.include(e.message, `row-level security is active on _nice_binary for role ${role.name}`)
      assert.include(e.message, "only the rows they allow would be counted or checked")
      assert.strictEqual(e.statement, `CREATE POLICY lo_migrate_read_all_rows ON _nice_binary FOR SELECT TO ${role.name} USING (true)`)
      // the table status refuses too, before counting
      assert.instanceOf(yield* Effect.flip(tableStatus(1, []).pipe(asRole(role.url))), RowSecurityActive)
      // the owner is not subject to it
      yield* checkSeesEveryRow
      yield* sql.unsafe(e.statement)
      yield* checkSeesEveryRow.pipe(asRole(role.url))
      const status = yield* tableStatus(1, []).pipe(asRole(role.url))
      assert.strictEqual(status.shards[0]?.total, 4)
      // reading every row is not updating every row: the run still refuses
      assert.instanceOf(yield* Effect.flip(checkPrivileges.pipe(asRole(role.url))), RowSecurityActive)
      // a restrictive policy on UPDATE hides no row from reading; one on SELECT does
      yield* sql.unsafe(`CREATE POLICY no_big_updates ON _nice_binary AS RESTRICTIVE FOR UPDATE TO ${role.name} USING (size < 1000)`)
      yield* checkSeesEveryRow.pipe(asRole(role.url))
      yield* sql.unsafe(`CREATE POLICY small_only ON _nice_binary AS RESTRICTIVE FOR SELECT TO ${role.name} USING (size < 1000)`)
      assert.instanceOf(yield* Effect.flip(checkSeesEveryRow.pipe(asRole(role.url))), RowSecurityActive)
    }).pipe(Effect.scoped, inThrowawayDatabase()))

  it.live("verify --repair's pre-flight: UPDATE (sha2), a writable session, every row updatable under row-level security; nothing written", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* Effect.forEach([100, 2000], (size, i) => insertBinary({ bytes: { size, seed: 90 + i }, mimeType: "a/b", sha2: "a".repeat(63) + i }))
      const reader = yield* throwawayRole((r) => [`GRANT SELECT ON _nice_binary TO ${r}`])
      refused(
        yield* Effect.flip(checkRepairable.pipe(asRole(reader.url))),
        "UpdateSha2",
        `GRANT UPDATE (sha2) ON _nice_binary TO ${reader.name}`
      )
      const role = yield* throwawayRole((r) => [`GRANT SELECT, UPDATE (sha2) ON _nice_binary TO ${r}`])
      yield* checkRepairable.pipe(asRole(role.url))
      // a policy that lets the role read every row but update only some: the reset would pass those rows over silently
      yield* sql.unsafe("ALTER TABLE _nice_binary ENABLE ROW LEVEL SECURITY")
      yield* sql.unsafe(`CREATE POLICY read_all ON _nice_binary FOR SELECT TO ${role.name} USING (true)`)
      yield* sql.unsafe(`CREATE POLICY small_updates ON _nice_binary FOR UPDATE TO ${role.name} USING (size < 1000)`)
      yield* checkSeesEveryRow.pipe(asRole(role.url))
      const error = yield* Effect.flip(checkRepairable.pipe(asRole(role.url)))
      assert.instanceOf(error, RowSecurityActive)
      const e = error as RowSecurityActive
      assert.strictEqual(e.use, "repair")
      assert.include(e.message, "--repair could set sha2 back to NULL only on the rows its policies allow")
      yield* sql.unsafe(e.statement)
      yield* checkRepairable.pipe(asRole(role.url))
      // a read-only session cannot reset anything
      yield* sql.unsafe(`ALTER ROLE ${role.name} SET default_transaction_read_only = on`)
      assert.instanceOf(yield* Effect.flip(checkRepairable.pipe(asRole(role.url))), ReadOnlySession)
      const rows = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM _nice_binary WHERE sha2 IS NOT NULL`
      assert.strictEqual(rows[0]!.n, 2, "nothing was changed")
    }).pipe(Effect.scoped, inThrowawayDatabase()))

  it.live("rows still to migrate pointing at large objects in a database that holds none (a logical replica, a dump without them): refused", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      const rows = yield* Effect.forEach([1, 2, 3], (i) => insertBinary({ bytes: { size: 100 * i, seed: 40 + i }, mimeType: "a/b" }))
      yield* sql`ALTER TABLE _nice_binary DROP COLUMN sha2` // as before the first run
      yield* createBatchJobTable([])
      // the copy without its large objects
      yield* sql`SELECT lo_unlink(oid) FROM pg_largeobject_metadata`
      for (const task of [checkPrivileges, ensureSha2Column]) {
        const error = yield* Effect.flip(task)
        assert.instanceOf(error, NoLargeObjects)
        assert.include(error.message, "holds no large object at all (pg_largeobject_metadata is empty)")
        assert.include(error.message, "logical replication does not copy large objects")
      }
      assert.isUndefined(yield* columnInfo, "nothing was changed")
      // a role that owns nothing reads pg_largeobject_metadata too
      yield* sql.unsafe(AddSha2ColumnStatement)
      const role = yield* throwawayRole(minimalGrants)
      assert.instanceOf(yield* Effect.flip(checkPrivileges.pipe(asRole(role.url))), NoLargeObjects)
      // one large object in the database: the rows fail one by one, as they would (no refusal)
      const [created] = yield* sql<{ readonly oid: string }>`SELECT lo_from_bytea(0, 'x'::bytea)::text AS oid`
      yield* checkPrivileges
      yield* sql`SELECT lo_unlink(${created!.oid}::oid)`
      // nothing left to migrate (the application dropped the objects after the migration): no refusal
      yield* sql`UPDATE _nice_binary SET sha2 = repeat('0', 64) WHERE hash = ${rows[0]!.hash}`
      yield* sql`UPDATE _nice_binary SET sha2 = repeat('1', 64) WHERE hash = ${rows[1]!.hash}`
      assert.instanceOf(yield* Effect.flip(ensureSha2Column), NoLargeObjects)
      yield* sql`UPDATE _nice_binary SET sha2 = repeat('2', 64) WHERE hash = ${rows[2]!.hash}`
      assert.isFalse(yield* ensureSha2Column)
      // pending rows without an object (data NULL) are bad rows, reported one by one: no refusal either
      yield* sql`UPDATE _nice_binary SET sha2 = NULL, data = NULL WHERE hash = ${rows[2]!.hash}`
      yield* checkPrivileges
    }).pipe(Effect.scoped, inThrowawayDatabase()))

  it.live("a publication of its UPDATEs without a replica identity (no primary key, or NOTHING) is refused before anything is written", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable({ sha2Column: false, primaryKey: false })
      // other publications: not of this table, or not of its UPDATEs
      yield* sql.unsafe(`CREATE TABLE other (id int)`)
      yield* sql.unsafe(`CREATE PUBLICATION "other pub" FOR TABLE other`)
      yield* sql.unsafe(`CREATE PUBLICATION inserts FOR TABLE _nice_binary WITH (publish = 'insert, delete')`)
      yield* checkPrivileges
      yield* sql.unsafe(`CREATE PUBLICATION cdc FOR ALL TABLES`)
      for (const task of [checkPrivileges, ensureSha2Column]) {
        const error = yield* Effect.flip(task)
        assert.instanceOf(error, UpdatesNotReplicable)
        assert.strictEqual((error as UpdatesNotReplicable).publications, "cdc")
        assert.include(error.message, "REPLICA IDENTITY DEFAULT without a primary key")
        assert.include(error.message, "ALTER TABLE _nice_binary REPLICA IDENTITY FULL;")
      }
      assert.isUndefined(yield* columnInfo, "nothing was changed")
      // what the server itself says of such an UPDATE (the check's reason)
      yield* sql.unsafe(AddSha2ColumnStatement)
      const refusal = yield* Effect.flip(sql`UPDATE _nice_binary SET sha2 = sha2`)
      assert.strictEqual(sqlStateOf(refusal), "55000")
      // the statement it gives makes it pass; a primary key does too, unless the identity is NOTHING
      yield* sql.unsafe(`ALTER TABLE _nice_binary REPLICA IDENTITY FULL`)
      yield* checkPrivileges
      yield* sql`UPDATE _nice_binary SET sha2 = sha2`
      yield* sql.unsafe(`ALTER TABLE _nice_binary REPLICA IDENTITY DEFAULT`)
      yield* sql.unsafe(`ALTER TABLE _nice_binary ADD PRIMARY KEY (hash)`)
      assert.isFalse(yield* ensureSha2Column)
      yield* sql.unsafe(`ALTER TABLE _nice_binary REPLICA IDENTITY NOTHING`)
      const nothing = yield* Effect.flip(ensureSha2Column)
      assert.include(nothing.message, "(REPLICA IDENTITY NOTHING)")
    }).pipe(inThrowawayDatabase()))

  it.live("a missing sha2 column it may not add, a missing UPDATE (sha2), SELECT on nice_batch_job: refused with the statement", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable({ sha2Column: false })
      yield* createBatchJobTable([{ id: BatchJobId, active: false }])
      const role = yield* throwawayRole((r) => [`GRANT SELECT ON _nice_binary TO ${r}`])
      refused(yield* Effect.flip(checkPrivileges).pipe(asRole(role.url)), "AddSha2Column", AddSha2ColumnStatement)
      const noColumn = yield* Effect.flip(ensureSha2Column).pipe(asRole(role.url))
      refused(noColumn, "AddSha2Column", AddSha2ColumnStatement)
      assert.isUndefined(yield* columnInfo, "nothing was changed")
      yield* sql.unsafe(AddSha2ColumnStatement)
      const noUpdate = yield* Effect.flip(ensureSha2Column).pipe(asRole(role.url))
      refused(noUpdate, "UpdateSha2", `GRANT UPDATE (sha2) ON _nice_binary TO ${role.name}`)
      const dryRun = yield* Effect.flip(checkPrivileges).pipe(asRole(role.url))
      refused(dryRun, "UpdateSha2", `GRANT UPDATE (sha2) ON _nice_binary TO ${role.name}`)
      const noJobTable = yield* Effect.flip(checkBatchJob).pipe(asRole(role.url))
      refused(noJobTable, "SelectBatchJob", `GRANT SELECT ON nice_batch_job TO ${role.name}`)
      yield* sql.unsafe(`GRANT UPDATE (sha2) ON _nice_binary TO ${role.name}`)
      assert.isFalse(yield* ensureSha2Column.pipe(asRole(role.url)))
    }).pipe(Effect.scoped, inThrowawayDatabase()))
})

/**
 * The schema steps run by several processes at once (shard processes of an Indexed Job start together): each process is
 * a pool of its own here (its own sessions), against the real PostgreSQL.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Logger, Schedule } from "effect"
import { DatabaseError, RetryPolicy } from "@lo-migrate/core"
import { SqlClient } from "effect/sql"
import { ensurePendingIndex, ensureSha2Column, finalize, PendingIndex, PgDatabase, SchemaLockKey, Sha2UniqueIndex } from "../src/index.ts"
import { withSchemaLock } from "../src/SchemaLock.ts"
import { createNiceBinaryTable, inThrowawayDatabase, ThrowawayDatabase } from "../src/testing.ts"

const processes = 8

/** Runs `self` as a separate process would: on a pool (two connections) of its own. */
const asProcess = <A, E>(self: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    const { url } = yield* ThrowawayDatabase
    return yield* self.pipe(Effect.provide(PgDatabase.layer({ url, maxConnections: 2 })))
  })

/** Rows enough that an index build takes a while (the others arrive while it runs). */
const fillTable = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data)
    SELECT left(encode(sha256(int4send(i)), 'hex'), 40), 1, 'application/octet-stream', 4294967295 - i
    FROM generate_series(1, 200000) AS i`
})

const indexes = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* sql<{ readonly name: string; readonly valid: boolean }>`
    SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = '_nice_binary'::regclass AND c.relname LIKE '_nice_binary_sha2%' ORDER BY 1`
})

const advisoryLocksHeld = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`
  return rows[0]?.n ?? -1
})

/** Another process takes the schema lock (as lo-migrate would) and holds it until `release`; `holder` ends then. */
const holdSchemaLock = Effect.gen(function*() {
  const locked = yield* Deferred.make<void>()
  const release = yield* Deferred.make<void>()
  const holder = yield* asProcess(Effect.scoped(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const conn = yield* sql.reserve
    yield* conn.executeUnprepared(`SELECT pg_advisory_lock(${BigInt(SchemaLockKey)})`, [], undefined)
    yield* Deferred.succeed(locked, undefined)
    yield* Deferred.await(release)
    yield* conn.executeUnprepared(`SELECT pg_advisory_unlock(${BigInt(SchemaLockKey)})`, [], undefined)
  }))).pipe(Effect.forkChild)
  yield* Deferred.await(locked)
  return { holder, release }
})

describe("schema steps from several processes at once", () => {
  it.live(`${processes} processes add the sha2 column: all succeed, exactly one adds it`, () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable({ sha2Column: false })
      const added = yield* Effect.all(Array.from({ length: processes }, () => asProcess(ensureSha2Column)), {
        concurrency: "unbounded"
      })
      assert.strictEqual(added.filter((a) => a).length, 1)
      assert.strictEqual(yield* advisoryLocksHeld, 0)
    }).pipe(inThrowawayDatabase()), 60_000)

  it.live(`${processes} processes build the pending index: all succeed, one valid index, no leftovers`, () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      yield* fillTable
      const built = yield* Effect.all(Array.from({ length: processes }, () => asProcess(ensurePendingIndex)), {
        concurrency: "unbounded"
      })
      // the others skipped the optional step (or found it built); none failed, none dropped the one being built
      assert.strictEqual(built.filter((b) => b).length, 1)
      assert.deepStrictEqual(yield* indexes, [{ name: PendingIndex, valid: true }])
      assert.strictEqual(yield* advisoryLocksHeld, 0)
    }).pipe(inThrowawayDatabase()), 120_000)

  it.live(`${processes} processes finalize at once: all succeed, one valid unique index`, () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* fillTable
      yield* sql`UPDATE _nice_binary SET sha2 = encode(sha256(convert_to(hash, 'UTF8')), 'hex')`
      yield* Effect.all(Array.from({ length: processes }, () => asProcess(finalize)), { concurrency: "unbounded" })
      assert.deepStrictEqual(yield* indexes, [{ name: Sha2UniqueIndex, valid: true }])
    }).pipe(inThrowawayDatabase()), 120_000)

  it.live("an INVALID index that another session is building right now is left alone; a leftover of a killed build is replaced", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* fillTable
      // a writer in an open transaction: CREATE INDEX CONCURRENTLY waits for it after creating its (INVALID) index
      const writerHolds = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const writer = yield* asProcess(Effect.gen(function*() {
        const conn = yield* SqlClient.SqlClient
        yield* conn.withTransaction(Effect.gen(function*() {
          yield* conn`UPDATE _nice_binary SET size = 2 WHERE data = 4294967294`
          yield* Deferred.succeed(writerHolds, undefined)
          yield* Deferred.await(release)
        }))
      })).pipe(Effect.forkChild)
      yield* Deferred.await(writerHolds)
      // a DBA builds the index by hand (not under lo-migrate's lock)
      const dba = yield* asProcess(Effect.gen(function*() {
        const conn = yield* SqlClient.SqlClient
        yield* conn.unsafe(`CREATE INDEX CONCURRENTLY ${PendingIndex} ON _nice_binary (hash) WHERE sha2 IS NULL`)
      })).pipe(Effect.forkChild)
      // wait until its index exists, INVALID, while it waits for the writer
      yield* Effect.gen(function*() {
        const rows = yield* indexes
        if (rows.length === 0) return yield* Effect.fail("not yet")
      }).pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 200 }))
      assert.deepStrictEqual(yield* indexes, [{ name: PendingIndex, valid: false }])
      assert.isFalse(yield* asProcess(ensurePendingIndex))
      assert.deepStrictEqual(yield* indexes, [{ name: PendingIndex, valid: false }])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(writer)
      yield* Fiber.join(dba)
      assert.deepStrictEqual(yield* indexes, [{ name: PendingIndex, valid: true }])

      // a killed build leaves an INVALID index that nobody builds: it is replaced
      yield* sql`UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(${PendingIndex})`
      assert.isTrue(yield* asProcess(ensurePendingIndex))
      assert.deepStrictEqual(yield* indexes, [{ name: PendingIndex, valid: true }])
    }).pipe(inThrowawayDatabase()), 120_000)

  it.live("while another session holds the schema lock, adding the sha2 column waits for it", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable({ sha2Column: false })
      const { holder, release } = yield* holdSchemaLock
      const adding = yield* asProcess(ensureSha2Column).pipe(Effect.forkChild)
      yield* Effect.sleep("1500 millis")
      const sql = yield* SqlClient.SqlClient
      const before = yield* sql<{ readonly n: number }>`
        SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = '_nice_binary'::regclass AND attname = 'sha2'`
      assert.strictEqual(before[0]?.n, 0)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      assert.isTrue(yield* Fiber.join(adding))
      assert.strictEqual(yield* advisoryLocksHeld, 0)
    }).pipe(inThrowawayDatabase()), 60_000)

  it.live("while another session holds the schema lock past the retry budget, adding the sha2 column fails naming the lock", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable({ sha2Column: false })
      const { holder, release } = yield* holdSchemaLock
      const error = yield* asProcess(ensureSha2Column).pipe(
        Effect.provideService(RetryPolicy, { budget: "1 second", base: "50 millis", cap: "200 millis" }),
        Effect.flip
      )
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      assert.instanceOf(error, DatabaseError)
      assert.strictEqual(error.operation, "ensureSha2Column")
      assert.isTrue(error.retryable)
      assert.include(error.detail, `another session holds the schema lock (pg_advisory_lock ${SchemaLockKey})`)
      // the query it gives lists the holder
      const query = /\((SELECT pid FROM pg_locks WHERE [^)]+)\)/.exec(error.detail)![1]!
      const { holder: again, release: releaseAgain } = yield* holdSchemaLock
      const sql = yield* SqlClient.SqlClient
      assert.strictEqual((yield* sql.unsafe<{ readonly pid: number }>(query)).length, 1, query)
      yield* Deferred.succeed(releaseAgain, undefined)
      yield* Fiber.join(again)
      assert.strictEqual((yield* sql.unsafe<{ readonly pid: number }>(query)).length, 0, query)
      assert.strictEqual(yield* advisoryLocksHeld, 0)
    }).pipe(inThrowawayDatabase()), 60_000)

  it.live("a release that finds the lock not held by its session (a pooler in transaction mode) is logged, naming the query", () =>
    Effect.gen(function*() {
      const warnings: Array<string> = []
      const collect = Logger.make((options) => void warnings.push(String(options.message)))
      // the step gives the lock up itself, as another server session behind a pooler would leave it held elsewhere
      const step = Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`SELECT pg_advisory_unlock(${BigInt(SchemaLockKey)})`)
        return "done"
      })
      const value = yield* asProcess(withSchemaLock("test", step, { wait: true })).pipe(
        Effect.provide(Logger.layer([collect]))
      )
      assert.strictEqual(value, "done")
      assert.strictEqual(warnings.length, 1, warnings.join("\n"))
      assert.include(warnings[0], "was not released by the session that took it")
      assert.include(warnings[0], "SELECT pid FROM pg_locks WHERE locktype = 'advisory'")
      // a normal step: no warning
      warnings.length = 0
      yield* asProcess(withSchemaLock("test", Effect.succeed(1), { wait: true })).pipe(Effect.provide(Logger.layer([collect])))
      assert.deepStrictEqual(warnings, [])
    }).pipe(inThrowawayDatabase()), 60_000)
})

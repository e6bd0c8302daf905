import { assert, describe, it } from "@effect/vitest"
import { type CommitEntry, HashCommitter, RowFailed, RowVanished, type Sha256Hex, Sha2Conflict } from "@lo-migrate/core"
import { type CommitOutcomes, commitOutcomes } from "@lo-migrate/testing"
import { Effect, Exit, Fiber, Result } from "effect"
import { SqlClient } from "effect/sql"
import fc from "fast-check"
import { PgHashCommitter } from "../src/index.ts"
import { createNiceBinaryTable, inThrowawayDatabase } from "../src/testing.ts"

const h = (c: string) => c.repeat(40).slice(0, 40)
const s = (c: string) => c.repeat(64).slice(0, 64) as Sha256Hex

const row = (hash: string, sha2: string | null = null) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO _nice_binary (hash, size, mime_type, data, sha2) VALUES (${hash}, 1, 'a/b', 4242, ${sha2})`
  })

const sha2Of = (hash: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly sha2: string | null }>`SELECT sha2 FROM _nice_binary WHERE hash = ${hash}`
    return rows.map((r) => r.sha2)
  })

/** The live committer, its per-entry results grouped by outcome (hash lists) for comparison. */
const committer = Effect.gen(function*() {
  const c = yield* HashCommitter
  return {
    commit: (batch: ReadonlyArray<CommitEntry>) => Effect.map(c.commit(batch), (results) => commitOutcomes(batch, results))
  }
}).pipe(Effect.provide(PgHashCommitter.layer))

const emptyResult: CommitOutcomes = { committed: [], alreadySet: [], vanished: [], conflicts: [] }

describe("PgHashCommitter", () => {
  it.live("classifies each entry: committed, alreadySet, conflict (left unchanged), vanished", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      yield* row(h("a"))
      yield* row(h("b"), s("b"))
      yield* row(h("c"), s("c"))
      const c = yield* committer
      const result = yield* c.commit([
        { hash: h("c"), oid: null, sha256: s("9") },
        { hash: h("a"), oid: null, sha256: s("1") },
        { hash: h("d"), oid: null, sha256: s("4") },
        { hash: h("b"), oid: null, sha256: s("b") }
      ])
      assert.deepStrictEqual(result, {
        committed: [h("a")],
        alreadySet: [h("b")],
        vanished: [h("d")],
        conflicts: [{ hash: h("c"), existing: s("c"), computed: s("9") }]
      })
      assert.deepStrictEqual(yield* sha2Of(h("a")), [s("1")])
      assert.deepStrictEqual(yield* sha2Of(h("c")), [s("c")], "never overwritten")
      // the same batch again: what was committed is now alreadySet
      const again = yield* c.commit([{ hash: h("a"), oid: null, sha256: s("1") }])
      assert.deepStrictEqual(again, { ...emptyResult, alreadySet: [h("a")] })
      assert.deepStrictEqual(yield* c.commit([]), emptyResult)
    }).pipe(inThrowawayDatabase()))

  it.live("returns one result per entry, in batch order; failed rows are RowFailed naming the entry's hash and oid", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      yield* row(h("a"))
      yield* row(h("c"), s("c"))
      const c = yield* HashCommitter.pipe(Effect.provide(PgHashCommitter.layer))
      const results = yield* c.commit([
        { hash: h("d"), oid: 4294967295, sha256: s("4") },
        { hash: h("c"), oid: 7, sha256: s("9") },
        { hash: h("a"), oid: 8, sha256: s("1") },
        { hash: h("a"), oid: 9, sha256: s("1") }
      ])
      assert.deepStrictEqual(results, [
        Result.fail(new RowFailed({ hash: h("d"), oid: 4294967295, reason: new RowVanished({ at: "commit" }) })),
        Result.fail(new RowFailed({ hash: h("c"), oid: 7, reason: new Sha2Conflict({ existing: s("c"), computed: s("9") }) })),
        Result.succeed("Committed" as const),
        Result.succeed("AlreadySet" as const)
      ])
    }).pipe(inThrowawayDatabase()))

  it.live("rows sharing a hash are set together; repeated entries in a batch apply in order", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable({ primaryKey: false })
      yield* row(h("a"))
      yield* row(h("a"))
      yield* row(h("e"))
      const c = yield* committer
      const result = yield* c.commit([
        { hash: h("a"), oid: null, sha256: s("1") },
        { hash: h("a"), oid: null, sha256: s("1") },
        { hash: h("a"), oid: null, sha256: s("2") },
        { hash: h("f"), oid: null, sha256: s("6") },
        { hash: h("f"), oid: null, sha256: s("6") }
      ])
      assert.deepStrictEqual(result, {
        committed: [h("a")],
        alreadySet: [h("a")],
        vanished: [h("f"), h("f")],
        conflicts: [{ hash: h("a"), existing: s("1"), computed: s("2") }]
      })
      assert.deepStrictEqual(yield* sha2Of(h("a")), [s("1"), s("1")])
      assert.deepStrictEqual(yield* sha2Of(h("e")), [null])
    }).pipe(inThrowawayDatabase()))

  it.live("matches a short (space-padded) hash as the source yields it, and never a truncated longer one", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* row("392007d934dd54600110b683f5e52aeeedb1")
      yield* row(h("7"))
      const [stored] = yield* sql<{ readonly hash: string }>`SELECT hash FROM _nice_binary WHERE hash LIKE '3920%'`
      assert.strictEqual(stored!.hash.length, 40)
      const c = yield* committer
      const result = yield* c.commit([
        { hash: stored!.hash, oid: null, sha256: s("3") },
        { hash: h("7") + "0", oid: null, sha256: s("8") }
      ])
      assert.deepStrictEqual(result.committed, [stored!.hash])
      assert.deepStrictEqual(result.vanished, [h("7") + "0"])
      assert.deepStrictEqual(yield* sha2Of(h("7")), [null])
    }).pipe(inThrowawayDatabase()))

  it.live("a row deleted before the commit is vanished", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* row(h("a"))
      yield* row(h("b"))
      yield* sql`DELETE FROM _nice_binary WHERE hash = ${h("a")}`
      const result = yield* (yield* committer).commit([{ hash: h("a"), oid: null, sha256: s("1") }, { hash: h("b"), oid: null, sha256: s("2") }])
      assert.deepStrictEqual(result, { ...emptyResult, committed: [h("b")], vanished: [h("a")] })
    }).pipe(inThrowawayDatabase()))

  it.live("a delete racing the commit is a retryable error, and the retry classifies the row as vanished", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* row(h("a"))
      yield* row(h("b"))
      const c = yield* committer
      const batch: ReadonlyArray<CommitEntry> = [{ hash: h("a"), oid: null, sha256: s("1") }, { hash: h("b"), oid: null, sha256: s("2") }]
      yield* Effect.scoped(Effect.gen(function*() {
        const app = yield* sql.reserve
        yield* app.executeRaw("BEGIN", [])
        yield* app.executeRaw(`DELETE FROM _nice_binary WHERE hash = '${h("a")}'`, [])
        const fiber = yield* Effect.forkChild(c.commit(batch))
        // the commit's UPDATE now waits for the application's row lock
        let waiting = false
        for (let i = 0; i < 200 && !waiting; i++) {
          yield* Effect.sleep("10 millis")
          const w = yield* sql<{ readonly n: bigint }>`
            SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`
          waiting = w[0]!.n > 0n
        }
        assert.isTrue(waiting, "the commit waits on the row lock")
        yield* app.executeRaw("COMMIT", [])
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const error = exit.cause.reasons.find((r) => r._tag === "Fail")
          assert.isDefined(error)
          if (error?._tag === "Fail") {
            assert.strictEqual(error.error._tag, "DatabaseError")
            assert.isTrue(error.error.retryable, error.error.message)
            assert.include(error.error.message, "40001")
          }
        }
      }))
      // nothing of the failed batch was applied
      assert.deepStrictEqual(yield* sha2Of(h("b")), [null])
      const retried = yield* c.commit(batch)
      assert.deepStrictEqual(retried, { ...emptyResult, committed: [h("b")], vanished: [h("a")] })
    }).pipe(inThrowawayDatabase(3)))

  it.live("a connection lost during the commit is a retryable DatabaseError (not a defect), and the retry commits", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      yield* row(h("a"))
      const c = yield* committer
      const batch: ReadonlyArray<CommitEntry> = [{ hash: h("a"), oid: null, sha256: s("1") }]
      yield* Effect.scoped(Effect.gen(function*() {
        const app = yield* sql.reserve
        yield* app.executeRaw("BEGIN", [])
        yield* app.executeRaw(`UPDATE _nice_binary SET mime_type = 'x/y' WHERE hash = '${h("a")}'`, [])
        const fiber = yield* Effect.forkChild(c.commit(batch))
        let killed = false
        for (let i = 0; i < 200 && !killed; i++) {
          yield* Effect.sleep("10 millis")
          const rows = yield* sql<{ readonly killed: boolean }>`
            SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`
          killed = rows.some((r) => r.killed)
        }
        assert.isTrue(killed, "killed the committer's backend while it waited")
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          assert.isFalse(exit.cause.reasons.some((r) => r._tag === "Die"), "no defect")
          const error = exit.cause.reasons.find((r) => r._tag === "Fail")
          if (error?._tag === "Fail") assert.isTrue(error.error.retryable, error.error.message)
          else assert.fail("expected a typed failure")
        }
        yield* app.executeRaw("COMMIT", [])
      }))
      assert.deepStrictEqual(yield* c.commit(batch), { ...emptyResult, committed: [h("a")] })
    }).pipe(inThrowawayDatabase(3)))

  it.live("concurrent committers with overlapping batches: each hash committed exactly once, errors only retryable", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      const keys = Array.from({ length: 60 }, (_, i) => i.toString(16).padStart(40, "0"))
      for (const k of keys) yield* row(k)
      const c = yield* committer
      const sha = (k: string) => (k.slice(-8) + "0".repeat(56)) as Sha256Hex
      // 4 committers, each committing every key in batches of 15, in different orders
      const orders = [keys, [...keys].reverse(), keys.filter((_, i) => i % 2 === 0).concat(keys.filter((_, i) => i % 2 === 1)),
        [...keys.slice(30), ...keys.slice(0, 30)]]
      let retries = 0
      const results = yield* Effect.forEach(orders, (order) =>
        Effect.gen(function*() {
          const all: Array<CommitOutcomes> = []
          for (let i = 0; i < order.length; i += 15) {
            const batch = order.slice(i, i + 15).map((hash) => ({ hash, oid: null, sha256: sha(hash) }))
            const result = yield* c.commit(batch).pipe(
              Effect.tapError((e) => Effect.sync(() => {
                assert.isTrue(e.retryable, e.message)
                retries++
              })),
              Effect.retry({ times: 20 })
            )
            all.push(result)
          }
          return all
        }), { concurrency: 4 })
      const flat = results.flat()
      const committed = flat.flatMap((r) => r.committed).sort()
      assert.deepStrictEqual(committed, [...keys].sort(), `each hash committed exactly once (${retries} retries)`)
      assert.strictEqual(flat.flatMap((r) => r.alreadySet).length, keys.length * 3)
      assert.strictEqual(flat.flatMap((r) => r.conflicts).length, 0)
      assert.strictEqual(flat.flatMap((r) => r.vanished).length, 0)
      const left = yield* sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM _nice_binary WHERE sha2 IS NULL`
      assert.strictEqual(left[0]!.n, 0n)
    }).pipe(inThrowawayDatabase(5)))

  it.live("a batch is all or nothing", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      yield* row(h("a"))
      yield* row(h("b"))
      const c = yield* committer
      const error = yield* Effect.flip(c.commit([
        { hash: h("a"), oid: null, sha256: s("1") },
        { hash: h("b"), oid: null, sha256: (s("2") + "2") as Sha256Hex } // too long for char(64): the statement fails
      ]))
      assert.strictEqual(error._tag, "DatabaseError")
      assert.isFalse(error.retryable)
      assert.deepStrictEqual(yield* sha2Of(h("a")), [null])
    }).pipe(inThrowawayDatabase()))

  it.live("property: matches the sequential model (the in-memory fake's semantics) on random tables and batches", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable({ primaryKey: false })
      const c = yield* committer
      const context = yield* Effect.context<SqlClient.SqlClient>()
      const key = fc.constantFrom("1", "2", "3", "4", "5", "6")
      const sha = fc.constantFrom("a", "b", "c")
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(fc.record({ key, sha2: fc.option(sha, { nil: null }) }), { maxLength: 10 }),
            fc.array(fc.record({ key, sha }), { maxLength: 10 }),
            (table, batch) =>
              Effect.runPromise(Effect.provideContext(
                Effect.gen(function*() {
                  yield* sql`TRUNCATE _nice_binary`
                  for (const t of table) yield* row(h(t.key), t.sha2 === null ? null : s(t.sha2))
                  const entries = batch.map((b) => ({ hash: h(b.key), oid: null, sha256: s(b.sha) }))
                  // the model: apply entries one by one
                  const model = table.map((t) => ({ hash: h(t.key), sha2: t.sha2 === null ? null : s(t.sha2) }))
                  const expected = {
                    committed: [] as Array<string>,
                    alreadySet: [] as Array<string>,
                    vanished: [] as Array<string>,
                    conflicts: [] as Array<{ hash: string; existing: string; computed: string }>
                  }
                  for (const e of entries) {
                    const rows = model.filter((r) => r.hash === e.hash)
                    if (rows.length === 0) expected.vanished.push(e.hash)
                    else if (rows.some((r) => r.sha2 === null)) {
                      for (const r of rows) if (r.sha2 === null) r.sha2 = e.sha256
                      expected.committed.push(e.hash)
                    } else {
                      const other = rows.filter((r) => r.sha2 !== e.sha256).map((r) => r.sha2!).sort()[0]
                      if (other === undefined) expected.alreadySet.push(e.hash)
                      else expected.conflicts.push({ hash: e.hash, existing: other, computed: e.sha256 })
                    }
                  }
                  const result = yield* c.commit(entries)
                  assert.deepStrictEqual(result, expected)
                  const after = yield* sql<{ readonly hash: string; readonly sha2: string | null }>`
                    SELECT hash, sha2 FROM _nice_binary`
                  const norm = (rs: ReadonlyArray<{ hash: string; sha2: string | null }>) =>
                    rs.map((r) => `${r.hash}:${r.sha2}`).sort()
                  assert.deepStrictEqual(norm(after), norm(model))
                }),
                context
              ))
          ),
          { numRuns: 30 }
        )
      )
    }).pipe(inThrowawayDatabase()))
})

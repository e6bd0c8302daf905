/**
 * `runVerify` against the real PostgreSQL (a throwaway database) and the real Ceph RGW (a throwaway bucket): an intact
 * migration verifies clean in every mode; each kind of damage is found by the mode that can see it; orphans; sample
 * and range; repair resets exactly the bad rows.
 */
import { assert, describe, it } from "@effect/vitest"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect } from "effect"
import { put, remove, seedMigrated, sha256, sha2Of, verify, VerifyEnv } from "./support.ts"

describe("verify (PostgreSQL + Ceph RGW)", () => {
  it.live("an intact migration verifies clean: default, --deep and --content-type", () =>
    Effect.gen(function*() {
      const seeded = yield* seedMigrated(40)
      const fast = yield* verify()
      assert.strictEqual(fast.progress.checked, 40)
      assert.strictEqual(fast.progress.ok, 40)
      assert.deepStrictEqual(fast.bad, [])
      assert.strictEqual(fast.progress.orphans, 0)
      assert.strictEqual(fast.progress.listRequests, 1)
      assert.strictEqual(fast.progress.downloaded, 0)
      const deep = yield* verify({ deep: true, contentType: true, concurrency: 8 })
      assert.strictEqual(deep.progress.ok, 40)
      assert.deepStrictEqual(deep.bad, [])
      assert.strictEqual(deep.progress.downloaded, 40)
      assert.strictEqual(deep.progress.downloadedBytes, seeded.reduce((n, s) => n + s.bytes.byteLength, 0))
    }).pipe(Effect.provide(VerifyEnv)), 120_000)

  it.live("deleted, truncated, overwritten and re-typed objects and an orphan are each found by the right mode", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      const seeded = (yield* seedMigrated(12)).filter((s) => s.bytes.byteLength > 20)
      const [deleted, truncated, overwritten, retyped] = seeded
      yield* remove(bucket.client, bucket.name, deleted!.sha2)
      yield* put(bucket.client, bucket.name, truncated!.sha2, truncated!.bytes.subarray(1), truncated!.mimeType)
      const other = new Uint8Array(overwritten!.bytes.byteLength).fill(42)
      yield* put(bucket.client, bucket.name, overwritten!.sha2, other, overwritten!.mimeType)
      yield* put(bucket.client, bucket.name, retyped!.sha2, retyped!.bytes, "text/html")
      const orphanBytes = new TextEncoder().encode("nobody references me")
      yield* put(bucket.client, bucket.name, sha256(orphanBytes), orphanBytes)
      // the migrator's bookkeeping (upload ledger) is neither checked nor an orphan
      yield* put(bucket.client, bucket.name, "lo-migrate/owners/some-host-1234", new TextEncoder().encode("{}"))

      const fast = yield* verify()
      const byProblem = (o: typeof fast) => Object.fromEntries(o.bad.map((b) => [b.row.hash, b.problem]))
      assert.deepStrictEqual(byProblem(fast), { [deleted!.hash]: "Missing", [truncated!.hash]: "WrongSize" })
      assert.deepStrictEqual(fast.orphans.map((o) => o.key), [sha256(orphanBytes)])
      assert.strictEqual(fast.progress.checked, 12)
      const deep = yield* verify({ deep: true })
      assert.deepStrictEqual(byProblem(deep), {
        [deleted!.hash]: "Missing",
        [truncated!.hash]: "WrongSize",
        [overwritten!.hash]: "WrongContent"
      })
      const typed = yield* verify({ contentType: true })
      assert.deepStrictEqual(byProblem(typed), {
        [deleted!.hash]: "Missing",
        [truncated!.hash]: "WrongSize",
        [retyped!.hash]: "WrongContentType"
      })
      const bad = deep.bad.find((b) => b.problem === "WrongContent")!
      assert.strictEqual(bad.row.sha2, overwritten!.sha2)
      assert.include(bad.detail, sha256(other))
    }).pipe(Effect.provide(VerifyEnv)), 120_000)

  it.live("--sample downloads a deterministic subset by key and seed; --from-sha2/--to-sha2 limit rows and listing", () =>
    Effect.gen(function*() {
      const seeded = yield* seedMigrated(60)
      const a = yield* verify({ deep: true, sample: 0.5, seed: 7 })
      const b = yield* verify({ deep: true, sample: 0.5, seed: 7 })
      const c = yield* verify({ deep: true, sample: 0.5, seed: 8 })
      assert.strictEqual(a.progress.checked, 60)
      assert.strictEqual(a.progress.downloaded, b.progress.downloaded)
      assert.isAbove(a.progress.downloaded, 10)
      assert.isBelow(a.progress.downloaded, 50)
      assert.notStrictEqual(a.progress.downloadedBytes, c.progress.downloadedBytes)
      const keys = seeded.map((s) => s.sha2).sort()
      const from = keys[10]!
      const to = keys[30]!.slice(0, 10)
      const ranged = yield* verify({ range: { from, to } })
      const expected = keys.filter((k) => k >= from && k < to).length
      assert.strictEqual(ranged.progress.checked, expected)
      assert.strictEqual(ranged.progress.listed, expected)
      assert.strictEqual(ranged.progress.orphans, 0)
    }).pipe(Effect.provide(VerifyEnv)), 120_000)

  it.live("repair resets sha2 of the bad rows only (hash AND the bad sha2), and deletes the object with wrong bytes", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      const seeded = (yield* seedMigrated(10)).filter((s) => s.bytes.byteLength > 20)
      const [deleted, overwritten, retyped, good] = seeded
      yield* remove(bucket.client, bucket.name, deleted!.sha2)
      yield* put(bucket.client, bucket.name, overwritten!.sha2, new Uint8Array(overwritten!.bytes.byteLength), overwritten!.mimeType)
      yield* put(bucket.client, bucket.name, retyped!.sha2, retyped!.bytes, "text/html")
      const run = yield* verify({ deep: true, contentType: true, repair: true, repairBatch: 1 })
      assert.strictEqual(run.bad.length, 3)
      assert.deepStrictEqual(
        run.repaired.map((r) => [r.bad.row.hash, r.reset, r.deleted]).sort(),
        [[deleted!.hash, true, false], [overwritten!.hash, true, true]].sort()
      )
      assert.strictEqual(yield* sha2Of(deleted!.hash), null)
      assert.strictEqual(yield* sha2Of(overwritten!.hash), null)
      // a wrong Content-Type is reported, not repairable by a re-upload: left as is
      assert.strictEqual(yield* sha2Of(retyped!.hash), retyped!.sha2)
      assert.strictEqual(yield* sha2Of(good!.hash), good!.sha2)
      const after = yield* verify({ deep: true })
      assert.deepStrictEqual(after.bad, [])
      assert.strictEqual(after.progress.checked, run.progress.checked - 2)
    }).pipe(Effect.provide(VerifyEnv)), 120_000)
})

/**
 * `runVerify` against the real PostgreSQL (a throwaway database) and the real Ceph RGW (a throwaway bucket): an intact
 * migration verifies clean in every mode; each kind of damage is found by the mode that can see it; orphans; sample
 * and range; repair resets exactly the bad rows.
 */
import { assert, describe, it } from "@effect/vitest"
import { readOnlyTestKey, TestBucket } from "@lo-migrate/s3/testing"
import { HeadObjectCommand } from "@aws-sdk/client-s3"
import { S3ClientService } from "@lo-migrate/s3"
import { Clock, Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { defaultVerifyOptions, Progress, runVerify } from "../src/index.ts"
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

  it.live("a repair batch that fails keeps its first row in progress.unrepaired; a rerun from there repairs every bad row", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      const sql = yield* SqlClient.SqlClient
      const seeded = [...(yield* seedMigrated(20))].sort((a, b) => (a.sha2 < b.sha2 ? -1 : 1))
      // two bad rows early in key order, so the check goes on well past them before the batch is flushed at the end
      const [first, second] = [seeded[1]!, seeded[4]!]
      yield* remove(bucket.client, bucket.name, first.sha2)
      yield* remove(bucket.client, bucket.name, second.sha2)
      // the server refuses the reset (as a lost connection or a revoked right would), after the pre-flight passed
      yield* sql.unsafe(`CREATE FUNCTION lomt_refuse() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`)
      yield* sql.unsafe(`CREATE TRIGGER lomt_refuse BEFORE UPDATE ON _nice_binary FOR EACH ROW EXECUTE FUNCTION lomt_refuse()`)
      const progress = new Progress()
      const failed = yield* runVerify({ ...defaultVerifyOptions, repair: true, repairBatch: 100 }, progress, {
        onBad: () => Effect.void,
        onOrphan: () => Effect.void,
        onRepaired: () => Effect.void
      }).pipe(Effect.flip)
      assert.strictEqual(failed._tag, "DatabaseError")
      assert.strictEqual(progress.badRows, 2)
      assert.strictEqual(progress.repaired, 0)
      // every row was checked, but resuming after the last one would leave both bad rows unrepaired for good
      assert.strictEqual(progress.lastSha2, seeded[seeded.length - 1]!.sha2)
      assert.strictEqual(progress.unrepaired, first.sha2)

      yield* sql.unsafe(`DROP TRIGGER lomt_refuse ON _nice_binary`)
      const resumed = yield* verify({ repair: true, range: { from: progress.unrepaired } })
      assert.sameMembers(resumed.repaired.filter((r) => r.reset).map((r) => r.bad.row.hash), [first.hash, second.hash])
      assert.isUndefined(resumed.progress.unrepaired)
      assert.strictEqual(yield* sha2Of(first.hash), null)
      assert.strictEqual(yield* sha2Of(second.hash), null)
    }).pipe(Effect.provide(VerifyEnv)), 120_000)

  it.live("repair deletes an object with wrong bytes before resetting its row: when the delete is refused, no row is left pending over it", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      const seeded = (yield* seedMigrated(8)).filter((s) => s.bytes.byteLength > 20)
      const [overwritten, deleted] = seeded
      yield* put(bucket.client, bucket.name, overwritten!.sha2, new Uint8Array(overwritten!.bytes.byteLength), overwritten!.mimeType)
      yield* remove(bucket.client, bucket.name, deleted!.sha2)
      // a key that lists and reads but may not delete (the gateway's read-only key)
      const readOnly = yield* Effect.sync(() => readOnlyTestKey())
      const refused = yield* verify({ deep: true, repair: true, repairBatch: 100 }).pipe(
        Effect.provide(S3ClientService.layer({
          ...bucket.config,
          accessKeyId: Redacted.make(readOnly.accessKeyId),
          secretAccessKey: Redacted.make(readOnly.secretAccessKey)
        })),
        Effect.flip
      )
      assert.strictEqual(refused._tag, "StorageError")
      // nothing was reset: the migrator would otherwise find the wrong object under the pending row's key and take
      // it as uploaded
      assert.strictEqual(yield* sha2Of(overwritten!.hash), overwritten!.sha2)
      assert.strictEqual(yield* sha2Of(deleted!.hash), deleted!.sha2)
      // with the rights, the same repair deletes the wrong object, then resets both rows
      const run = yield* verify({ deep: true, repair: true, repairBatch: 100 })
      assert.sameDeepMembers(
        run.repaired.map((r) => [r.bad.row.hash, r.reset, r.deleted]),
        [[overwritten!.hash, true, true], [deleted!.hash, true, false]]
      )
      assert.strictEqual(run.progress.deletedObjects, 1)
      assert.strictEqual(yield* sha2Of(overwritten!.hash), null)
      const listed = yield* Effect.tryPromise(() =>
        bucket.client.send(new HeadObjectCommand({ Bucket: bucket.name, Key: overwritten!.sha2 }))
      ).pipe(Effect.flip)
      assert.strictEqual((listed.cause as { name?: string }).name, "NotFound")
    }).pipe(Effect.provide(VerifyEnv)), 120_000)

  it.live("throttle: downloads wait for --max-objects-per-second and for --max-bandwidth by the rows' sizes; the listing does not", () =>
    Effect.gen(function*() {
      const seeded = yield* seedMigrated(12)
      const bytes = seeded.reduce((n, s) => n + s.bytes.byteLength, 0)
      const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
        Effect.gen(function*() {
          const started = yield* Clock.currentTimeMillis
          const result = yield* self
          return { result, seconds: ((yield* Clock.currentTimeMillis) - started) / 1000 }
        })
      // 12 downloads at 4 per second: the first passes at once, each of the other 11 waits its quarter second
      const byObjects = yield* timed(verify({ deep: true, throttle: { objectsPerSecond: 4 } }))
      assert.strictEqual(byObjects.result.progress.downloaded, 12)
      assert.deepStrictEqual(byObjects.result.bad, [])
      assert.isAtLeast(byObjects.seconds, 11 / 4 - 0.05)
      // every byte at half the total per second: about two seconds (one byte of credit at the start)
      const byBytes = yield* timed(verify({ deep: true, throttle: { bytesPerSecond: bytes / 2 } }))
      assert.strictEqual(byBytes.result.progress.downloaded, 12)
      assert.isAtLeast(byBytes.seconds, 2 - 0.05)
      // without --deep or --content-type nothing is fetched, so nothing waits, whatever the limit
      const listing = yield* timed(verify({ throttle: { objectsPerSecond: 0.01 } }))
      assert.strictEqual(listing.result.progress.checked, 12)
      assert.isBelow(listing.seconds, 60)
    }).pipe(Effect.provide(VerifyEnv)), 120_000)
})


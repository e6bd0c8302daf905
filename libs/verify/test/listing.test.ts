/**
 * A large bucket verifies in ONE listing pass: N objects cost ceil(N/1000) ListObjectsV2 requests (counted by the
 * verifier itself, retries included), never a HEAD per object, and the merge holds at most one page of objects and
 * one chunk of rows whatever N is. Against the real Ceph RGW and PostgreSQL; N is `VERIFY_LISTING_OBJECTS`
 * (default 5,500: the shared dev Ceph takes ~60 small PUTs/s under load, so seeding 50,000 would take ~14 minutes;
 * `VERIFY_LISTING_OBJECTS=50000` runs the full size, see libs/verify/README.md).
 */
import { assert, describe, it } from "@effect/vitest"
import { TestBucket } from "@lo-migrate/s3/testing"
import { createNiceBinaryTable } from "@lo-migrate/postgres/testing"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { put, sha1, sha256, verify, VerifyEnv } from "./support.ts"

const n = Number(process.env["VERIFY_LISTING_OBJECTS"] ?? 5_500)
/**
 * Pages the server hands out: ceil(N/1000). When N is a multiple of 1000, Ceph RGW marks the last full page as
 * truncated and answers one more, empty, request (AWS does not), so one more is allowed then.
 */
const expectedRequests = (n: number): ReadonlyArray<number> =>
  n % 1000 === 0 ? [Math.max(1, n / 1000), n / 1000 + 1] : [Math.ceil(n / 1000)]

describe("verify of a large bucket (Ceph RGW)", () => {
  it.live(`${n} objects: one listing pass of ${expectedRequests(n).join(" or ")} requests, every row checked, memory bounded`, () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      const bodies = Array.from({ length: n }, (_, i) => new TextEncoder().encode(String(i)))
      const started = Date.now()
      for (let at = 0; at < n; at += 5000) {
        const slice = bodies.slice(at, at + 5000)
        yield* sql`
          INSERT INTO _nice_binary (hash, size, mime_type, data, sha2)
          SELECT h, s, 'application/octet-stream', NULL, k
          FROM unnest(${slice.map(sha1)}::text[], ${slice.map((b) => b.byteLength)}::bigint[], ${slice.map(sha256)}::text[])
            AS u(h, s, k)`
      }
      yield* Effect.forEach(bodies, (b) => put(bucket.client, bucket.name, sha256(b), b), { concurrency: 64, discard: true })
      const seededIn = Date.now() - started
      const t0 = Date.now()
      const run = yield* verify()
      const verifiedIn = Date.now() - t0
      yield* Effect.logInfo(
        `seeded ${n} objects in ${seededIn} ms; verified in ${verifiedIn} ms (${((n * 1000) / verifiedIn).toFixed(0)} ` +
          `objects/s), ${run.progress.listRequests} ListObjectsV2 requests`
      )
      assert.strictEqual(run.progress.checked, n)
      assert.strictEqual(run.progress.ok, n)
      assert.strictEqual(run.progress.listed, n)
      assert.include(expectedRequests(n), run.progress.listRequests, `${run.progress.listRequests} ListObjectsV2 requests`)
      assert.strictEqual(run.progress.heads, 0)
      assert.strictEqual(run.progress.downloaded, 0)
      // one page (1000) plus the rows the driver hands over in one chunk
      assert.isAtMost(run.maxHeld, 1000 + 2048, `merge held ${run.maxHeld} items`)
      const t1 = Date.now()
      const deep = yield* verify({ deep: true, concurrency: 32 })
      const deepIn = Date.now() - t1
      yield* Effect.logInfo(`--deep --concurrency 32: ${deepIn} ms (${((n * 1000) / deepIn).toFixed(0)} objects/s)`)
      assert.strictEqual(deep.progress.ok, n)
      assert.strictEqual(deep.progress.downloaded, n)
      assert.include(expectedRequests(n), deep.progress.listRequests)
    }).pipe(Effect.provide(VerifyEnv)), Math.max(300_000, n * 40))
})

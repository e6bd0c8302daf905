/**
 * A large bucket verifies in ONE listing pass: verify sends exactly the ListObjectsV2 requests the server's pagination
 * takes (counted by the verifier itself, retries included), never a HEAD per object, and the merge holds at most one
 * page of objects and one chunk of rows whatever N is. That is ceil(N/1000) requests, plus one for each page the
 * server answers with fewer than 1000 keys before the last: Ceph RGW does that (a page of 982 or 983 keys, marked
 * truncated, from its merge of the bucket index shards; the same page on every listing of the same keys), so 20,000
 * objects can take 21 requests. Against the real Ceph RGW and PostgreSQL; N is `VERIFY_LISTING_OBJECTS`
 * (default 5,500: the shared dev Ceph takes ~60 small PUTs/s under load, so seeding 50,000 would take ~14 minutes;
 * `VERIFY_LISTING_OBJECTS=50000` runs the full size, see libs/verify/README.md).
 */
import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { TestBucket } from "@lo-migrate/s3/testing"
import { createNiceBinaryTable } from "@lo-migrate/postgres/testing"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { put, sha1, sha256, verify, VerifyEnv } from "./support.ts"

const n = Number(process.env["VERIFY_LISTING_OBJECTS"] ?? 5_500)

/** The keys per page of a bare listing of `bucket` (1000 per request at most, following the continuation token). */
const serverPages = (client: S3Client, bucket: string) =>
  Effect.promise(async () => {
    const pages: Array<number> = []
    let token: string | undefined
    for (;;) {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000, ContinuationToken: token }))
      pages.push(out.KeyCount ?? 0)
      if (out.IsTruncated !== true) return pages
      token = out.NextContinuationToken
    }
  })

describe("verify of a large bucket (Ceph RGW)", () => {
  it.live(`${n} objects: one listing pass (the server's pages, ~${Math.ceil(n / 1000)} requests), every row checked, memory bounded`, () =>
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
      // the server's own pagination: ceil(N/1000) pages, and at most one more per short page (fewer than 1000 keys)
      // before the last; verify sends exactly those requests, no re-list of its own
      const pages = yield* serverPages(bucket.client, bucket.name)
      const short = pages.slice(0, -1).filter((keys) => keys < 1000).length
      const described = `pages of ${pages.join(", ")} keys`
      yield* Effect.logInfo(`a bare listing: ${pages.length} requests, ${described}`)
      assert.strictEqual(pages.reduce((a, b) => a + b, 0), n, described)
      assert.isAtLeast(pages.length, Math.ceil(n / 1000), described)
      assert.isAtMost(pages.length, Math.ceil(n / 1000) + short, described)
      assert.strictEqual(run.progress.listRequests, pages.length, `${run.progress.listRequests} ListObjectsV2 requests`)
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
      assert.strictEqual(deep.progress.listRequests, pages.length)
    }).pipe(Effect.provide(VerifyEnv)), Math.max(300_000, n * 40))
})

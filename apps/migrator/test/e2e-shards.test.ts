/**
 * End-to-end: `--shard I/N`, several CLI processes at once over one table, against the real PostgreSQL and the real
 * Ceph RADOS Gateway.
 *
 * How "no object uploaded twice" is counted: the test bucket has S3 versioning on, so every PutObject or
 * CompleteMultipartUpload that stores bytes leaves a version. The number of versions of a key is then the number of
 * times its object was uploaded, counted by the gateway itself. (In such a bucket Ceph 16 stores even a conditional
 * PUT of an existing key as a new version instead of answering 412, so the store HEADs before every PUT there:
 * libs/s3/src/S3ConditionalPut.ts.)
 * Every version is also downloaded and hashed: a second upload (possible, by design, when two processes are given the
 * same shard: both may find the key absent before either stores it) must carry the same bytes.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client
} from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { parseShard, sha256Bits, shardOfKey, shardRange } from "@lo-migrate/core"
import type { InsertedBinary } from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect, Result } from "effect"
import { SqlClient } from "effect/sql"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  assertInvariant,
  assertMigrated,
  Env,
  listOpenUploads,
  runCli,
  seedMany,
  settings,
  setUpSchema,
  sha256,
  sha2Rows
} from "./cli.ts"

interface Version {
  readonly key: string
  readonly versionId: string
}

const listVersions = (client: S3Client, bucket: string) =>
  Effect.tryPromise(async () => {
    const versions: Array<Version> = []
    const markers: Array<Version> = []
    let keyMarker: string | undefined
    let versionIdMarker: string | undefined
    for (;;) {
      const page = await client.send(
        new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker })
      )
      for (const v of page.Versions ?? []) versions.push({ key: v.Key!, versionId: v.VersionId! })
      for (const m of page.DeleteMarkers ?? []) markers.push({ key: m.Key!, versionId: m.VersionId! })
      if (page.IsTruncated !== true) break
      keyMarker = page.NextKeyMarker
      versionIdMarker = page.NextVersionIdMarker
    }
    return { versions, markers }
  })

/** Versioning on for the test's bucket; every version deleted when the test ends, so the bucket can go. */
const versionedBucket = Effect.gen(function*() {
  const bucket = yield* TestBucket
  yield* Effect.tryPromise(() =>
    bucket.client.send(
      new PutBucketVersioningCommand({ Bucket: bucket.name, VersioningConfiguration: { Status: "Enabled" } })
    )
  )
  return bucket
})

const deleteAllVersions = Effect.gen(function*() {
  const bucket = yield* TestBucket
  const { markers, versions } = yield* listVersions(bucket.client, bucket.name)
  const all = [...versions, ...markers]
  for (let i = 0; i < all.length; i += 1000) {
    const Objects = all.slice(i, i + 1000).map((v) => ({ Key: v.key, VersionId: v.versionId }))
    yield* Effect.tryPromise(() =>
      bucket.client.send(new DeleteObjectsCommand({ Bucket: bucket.name, Delete: { Objects, Quiet: true } }))
    )
  }
}).pipe(Effect.orDie)

/** Uploads per object key (the upload ledger's own `lo-migrate/` objects aside), each version's bytes checked. */
const uploadsPerKey = Effect.gen(function*() {
  const bucket = yield* TestBucket
  const { markers, versions } = yield* listVersions(bucket.client, bucket.name)
  assert.deepStrictEqual(markers.filter((m) => !m.key.startsWith("lo-migrate/")), [], "no object was deleted")
  const counts = new Map<string, number>()
  for (const v of versions) {
    if (v.key.startsWith("lo-migrate/")) continue
    counts.set(v.key, (counts.get(v.key) ?? 0) + 1)
    const bytes = yield* Effect.tryPromise(async () => {
      const out = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.name, Key: v.key, VersionId: v.versionId }))
      return out.Body!.transformToByteArray()
    })
    assert.strictEqual(sha256(bytes), v.key, `version ${v.versionId} of ${v.key}`)
  }
  return counts
})

/**
 * `n` rows of 16-400 KiB, a quarter of them with their hash in upper case (the application stores some so): the rows as
 * they are in the table.
 */
const seed = (n: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* seedMany(n)
    const upper = rows.filter((_, i) => i % 4 === 0).map((r) => r.hash)
    yield* sql`UPDATE _nice_binary SET hash = upper(hash) WHERE hash = ANY(${upper}::text[]::bpchar[])`
    return rows.map((r): InsertedBinary => (upper.includes(r.hash) ? { ...r, hash: r.hash.toUpperCase() } : r))
  })

/** The rows of shard `i/n` (the table's collation is C here: an upper-case hash sorts by its bytes). */
const inShard = (rows: ReadonlyArray<InsertedBinary>, spec: string) => {
  const shard = Result.getOrThrow(parseShard(spec))
  const { high, low } = shardRange(shard)
  return rows.filter((r) => (low === undefined || r.hash >= low) && (high === undefined || r.hash < high))
}

const quick = ["-i", "1", "--storer-threads", "4"]

const specs4 = ["0/4", "1/4", "2/4", "3/4"]

/** Like cli.ts's `waitUntil`, with room for four processes starting at once on a loaded 2-core machine. */
const waitLong = <E, R>(what: string, condition: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function*() {
    while (!(yield* condition)) yield* Effect.sleep("50 millis")
  }).pipe(
    Effect.timeoutOrElse({ duration: "240 seconds", orElse: () => Effect.die(new Error(`timed out waiting for ${what}`)) })
  )

const runShards = (specs: ReadonlyArray<string>, env: Record<string, string>, extra: ReadonlyArray<string> = []) =>
  Effect.all(specs.map((spec) => runCli([...quick, ...extra, "--shard", spec], env)), { concurrency: "unbounded" })

interface StatusLine {
  readonly total: number
  readonly migrated: number
  readonly left: number
}

/** The lines of `status`'s table, by label ("all", "0/4", ...). */
const statusTable = (stdout: string): Map<string, StatusLine> =>
  new Map(
    [...stdout.matchAll(/^ {2}(all|\d+\/\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s/gm)].map((m) => [
      m[1]!,
      { total: Number(m[2]), migrated: Number(m[3]), left: Number(m[4]) }
    ])
  )

describe("sharded migration (PostgreSQL + Ceph RGW)", () => {
  it.live("status --log-format json: only JSON records on stdout, counts equal the table's, per shard and report", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const sql = yield* SqlClient.SqlClient
      const rows = yield* seed(16)
      // a few rows recorded as migrated (status reads the table only, the bucket plays no part)
      const done = rows.slice(0, 5).map((r) => r.hash)
      yield* sql`UPDATE _nice_binary SET sha2 = repeat('a', 64) WHERE hash = ANY(${done}::text[]::bpchar[])`
      const { env } = yield* settings
      const dir = mkdtempSync(join(tmpdir(), "lo-migrate-status-json-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const report = join(dir, "failed.jsonl")
      const line = (hash: string) => `${JSON.stringify({ hash, oid: 1, reason: "MissingLargeObject", detail: "-" })}\n`
      writeFileSync(report, line(rows[0]!.hash) + line(rows[9]!.hash) + line("cd".repeat(20)))

      const run = yield* runCli(["status", "--shards", "4", "--report", report, "--log-format", "json"], env)
      assert.strictEqual(run.code, 1, run.stderr)
      const records = run.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
      assert.deepStrictEqual(records.map((r) => r["type"]), ["status-table", ...specs4.map(() => "status-shard"), "status-reports"])
      // what the database says, counted here independently
      const table = yield* sql<{ readonly hash: string; readonly size: string; readonly sha2: string | null }>`
        SELECT hash, size::text AS size, sha2 FROM _nice_binary`
      const counts = (of: ReadonlyArray<(typeof table)[number]>) => ({
        total: of.length,
        migrated: of.filter((r) => r.sha2 !== null).length,
        left: of.filter((r) => r.sha2 === null).length,
        bytesLeft: of.filter((r) => r.sha2 === null).reduce((n, r) => n + Number(r.size), 0)
      })
      const rowsOf = (spec: string) => {
        const hashes = new Set(inShard(rows, spec).map((r) => r.hash))
        return table.filter((r) => hashes.has(r.hash))
      }
      const [whole, ...shards] = records
      assert.include(String(whole!["postgres"]), ":<redacted>@", "the password replaced")
      assert.deepStrictEqual(whole, {
        type: "status-table",
        postgres: whole!["postgres"],
        hasSha2: true,
        pendingIndex: "none", // no run has built it
        ...counts(table),
        reportedLeft: 1
      })
      assert.strictEqual(counts(table).left, 11)
      for (const [i, spec] of specs4.entries()) {
        const record = shards[i]!
        assert.strictEqual(record["shard"], spec)
        const reportedLeft = inShard(rows, spec).some((r) => r.hash === rows[9]!.hash) ? 1 : 0
        assert.deepStrictEqual(record, { type: "status-shard", shard: spec, ...counts(rowsOf(spec)), reportedLeft }, spec)
      }
      assert.deepStrictEqual(records.at(-1), {
        type: "status-reports",
        files: [{ path: report, lines: 3 }],
        distinctRows: 3,
        stillLeft: 1,
        migratedSince: 1,
        noLongerInTable: 1
      })
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("4 shards at once: all exit 0, every row right, each object uploaded once; status and dry run per shard", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const bucket = yield* versionedBucket
      const rows = yield* seed(60)
      const { env } = yield* settings
      const specs = specs4
      // every row in exactly one shard (upper-case hashes included)
      assert.strictEqual(specs.flatMap((s) => inShard(rows, s).map((r) => r.hash)).length, rows.length)

      // failure reports of earlier runs: 3 rows of the table (one listed twice), one row deleted since
      const dir = mkdtempSync(join(tmpdir(), "lo-migrate-shards-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const line = (hash: string) => `${JSON.stringify({ hash, oid: 1, reason: "MissingLargeObject", detail: "-" })}\n`
      const [r0, r1, r2] = [rows[0]!, rows[1]!, rows[2]!]
      writeFileSync(join(dir, "a.jsonl"), line(r0.hash) + line(r1.hash))
      writeFileSync(join(dir, "b.jsonl"), line(r1.hash) + line(r2.hash) + line("ab".repeat(20)))
      writeFileSync(join(dir, "bad.jsonl"), line(r0.hash) + "{not json\n")
      const badReport = yield* runCli(["status", "--report", join(dir, "bad.jsonl")], env)
      assert.strictEqual(badReport.code, 2)
      assert.include(badReport.stderr, `--report: ${join(dir, "bad.jsonl")} line 2 is not JSON`)

      const before = yield* runCli(
        ["status", "--shards", "4", "--report", join(dir, "a.jsonl"), "--report", join(dir, "b.jsonl")],
        env
      )
      assert.strictEqual(before.code, 1, before.stderr)
      assert.include(before.stdout, "(2 lines)")
      assert.include(before.stdout, "(3 lines): 4 distinct rows, 3 still left")
      assert.include(before.stdout, "0 migrated since, 1 no longer in the table")
      assert.match(before.stdout, /^ {2}all\s+60\s+0\s+60\s+\S+ \S+\s+3$/m)
      const table = statusTable(before.stdout)
      assert.deepStrictEqual(table.get("all"), { total: 60, migrated: 0, left: 60 })
      for (const spec of specs) {
        const n = inShard(rows, spec).length
        assert.deepStrictEqual(table.get(spec), { total: n, migrated: 0, left: n }, spec)
        const dry = yield* runCli(["--dry-run", "--shard", spec], env)
        assert.strictEqual(dry.code, 0, dry.stderr)
        assert.include(dry.stdout, `rows (shard ${spec}): ${n} of ${n} rows left to migrate`)
      }

      const runs = yield* runShards(specs, env)
      for (const [i, run] of runs.entries()) {
        assert.strictEqual(run.code, 0, `${specs[i]}: ${run.stderr}`)
        assert.include(run.stdout, `migration completed (shard ${specs[i]})`)
        assert.include(run.stdout, `shard: ${specs[i]} (hash`)
        const n = inShard(rows, specs[i]!).length
        assert.include(run.stdout, `${n} objects migrated`, specs[i])
      }
      yield* assertMigrated(rows)
      const uploads = yield* uploadsPerKey
      assert.strictEqual(uploads.size, rows.length)
      for (const [key, n] of uploads) assert.strictEqual(n, 1, `${key} uploaded ${n} times`)

      const after = yield* runCli(["status", "--shards", "4"], env)
      assert.strictEqual(after.code, 0, after.stderr)
      assert.include(after.stdout, "nothing left to migrate")
      const done = statusTable(after.stdout)
      assert.deepStrictEqual(done.get("all"), { total: 60, migrated: 60, left: 0 })
      for (const spec of specs) {
        const n = inShard(rows, spec).length
        assert.deepStrictEqual(done.get(spec), { total: n, migrated: n, left: 0 }, spec)
      }
      assert.deepStrictEqual(yield* listOpenUploads(bucket.client, bucket.name), [])
    }).pipe(Effect.ensuring(deleteAllVersions), Effect.provide(Env)), 300_000)

  it.live("mistakes: the same shard twice and overlapping counts (0/4 next to 1/8) all exit 0, right rows only", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      yield* versionedBucket
      const rows = yield* seed(60)
      const { env } = yield* settings
      const runs = yield* runShards(["2/4", "2/4", "0/4", "1/8"], env)
      for (const run of runs) assert.strictEqual(run.code, 0, run.stderr)
      const covered = [...inShard(rows, "0/4"), ...inShard(rows, "2/4")]
      yield* assertMigrated(covered)
      // the other shards are untouched
      const untouched = new Set([...inShard(rows, "1/4"), ...inShard(rows, "3/4")].map((r) => r.hash))
      const sha2 = new Map((yield* sha2Rows).map((r) => [r.hash, r.sha2]))
      for (const h of untouched) assert.isNull(sha2.get(h), h)
      // each migrated row's object: there, right bytes in every version; no object of an untouched row
      const uploads = yield* uploadsPerKey
      assert.deepStrictEqual([...uploads.keys()].sort(), [...new Set(covered.map((r) => r.digests.sha256))].sort())
      // 1/8 lies inside 0/4 and 2/4 ran twice: both may upload a key both found absent; the rest exactly once
      const once = inShard(rows, "0/4").filter((r) => inShard(rows, "1/8").every((o) => o.hash !== r.hash))
      for (const r of once) assert.strictEqual(uploads.get(r.digests.sha256), 1, r.hash)
      const repeated = [...uploads.values()].filter((n) => n > 1).length
      yield* Effect.logInfo(`overlapping runs: ${repeated} of ${uploads.size} objects uploaded twice (same bytes)`)
      const inv = yield* assertInvariant
      assert.strictEqual(inv.left, untouched.size)

      const status = yield* runCli(["status", "--shards", "4"], env)
      assert.strictEqual(status.code, 1, status.stderr)
      assert.deepStrictEqual(statusTable(status.stdout).get("all"), {
        total: 60,
        migrated: covered.length,
        left: untouched.size
      })
    }).pipe(Effect.ensuring(deleteAllVersions), Effect.provide(Env)), 300_000)

  it.live("an Indexed Job's pods (JOB_COMPLETION_INDEX + LO_MIGRATE_SHARDS): kill -9 of one mid-run, its rerun completes", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      const bucket = yield* versionedBucket
      const rows = yield* seed(80)
      const { env } = yield* settings
      const { high, low } = shardRange({ index: 1, count: 4 })
      const committedInShard1 = sql<{ readonly n: number }>`
        SELECT count(*)::int AS n FROM _nice_binary WHERE sha2 IS NOT NULL AND hash >= ${low!} AND hash < ${high!}`.pipe(
        Effect.map((r) => r[0]?.n ?? 0)
      )
      const pod = (index: number) => ({ ...env, JOB_COMPLETION_INDEX: String(index), LO_MIGRATE_SHARDS: "4" })
      const shard1 = inShard(rows, "1/4").length
      assert.isAbove(shard1, 4)
      const runs = yield* Effect.all(
        [0, 1, 2, 3].map((index) =>
          index === 1
            ? runCli(["-i", "1", "--storer-threads", "1", "--commit-chunk", "1"], pod(1), (child, output) =>
              waitLong(
                "a commit of shard 1/4",
                Effect.flatMap(committedInShard1, (n) =>
                  child.exitCode === null
                    ? Effect.succeed(n >= 1)
                    : Effect.die(new Error(`shard 1/4 ended before the kill: ${child.exitCode}\n${output.stderr}`)))
              ).pipe(Effect.andThen(Effect.sync(() => child.kill("SIGKILL")))))
            : runCli(quick, pod(index))
        ),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(runs[1]!.signal, "SIGKILL")
      for (const i of [0, 2, 3]) {
        assert.strictEqual(runs[i]!.code, 0, runs[i]!.stderr)
        assert.include(runs[i]!.stdout, `migration completed (shard ${i}/4)`)
      }
      const left = yield* committedInShard1
      assert.isBelow(left, shard1, "the kill came before shard 1/4 was done")
      const status = yield* runCli(["status", "--shards", "4"], env)
      assert.strictEqual(status.code, 1)
      assert.strictEqual(statusTable(status.stdout).get("1/4")?.left, shard1 - left)
      assert.strictEqual(statusTable(status.stdout).get("0/4")?.left, 0)

      const rerun = yield* runCli(quick, pod(1))
      assert.strictEqual(rerun.code, 0, rerun.stderr)
      assert.include(rerun.stdout, "migration completed (shard 1/4)")
      yield* assertMigrated(rows)
      const uploads = yield* uploadsPerKey
      assert.strictEqual(uploads.size, rows.length)
      for (const [key, n] of uploads) assert.strictEqual(n, 1, `${key} uploaded ${n} times`)
      assert.deepStrictEqual(yield* listOpenUploads(bucket.client, bucket.name), [])
      const done = yield* runCli(["status", "--shards", "4"], env)
      assert.strictEqual(done.code, 0, done.stderr)
      assert.deepStrictEqual(statusTable(done.stdout).get("all"), { total: 80, migrated: 80, left: 0 })
    }).pipe(Effect.ensuring(deleteAllVersions), Effect.provide(Env)), 300_000)

  it.live("verify --shard I/N: the N shards split the SHA-256 keys, rows and listing alike; each problem found once", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      yield* setUpSchema
      const rows = yield* seed(40)
      const { env } = yield* settings
      const migrated = yield* runCli(quick, env)
      assert.strictEqual(migrated.code, 0, migrated.stderr)
      const gone = rows[7]!
      yield* Effect.tryPromise(() =>
        bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.name, Key: gone.digests.sha256 }))
      )
      const orphan = new TextEncoder().encode("an object no row references")
      yield* Effect.tryPromise(() =>
        bucket.client.send(new PutObjectCommand({ Bucket: bucket.name, Key: sha256(orphan), Body: orphan }))
      )
      const shardOfSha2 = (key: string) => shardOfKey(key, 4, sha256Bits)
      let checked = 0
      for (const index of [0, 1, 2, 3]) {
        // the shard from an Indexed Job's environment, as for migrate
        const run = yield* runCli(
          ["verify", "--deep", "--orphans"],
          { ...env, JOB_COMPLETION_INDEX: String(index), LO_MIGRATE_SHARDS: "4" }
        )
        const mine = rows.filter((r) => shardOfSha2(r.digests.sha256) === index)
        const bad = shardOfSha2(gone.digests.sha256) === index
        assert.strictEqual(run.code, bad ? 1 : 0, run.stdout + run.stderr)
        assert.include(run.stdout, `(shard ${index}/4 of the SHA-256 keys)`)
        assert.include(run.stdout, `${mine.length} rows checked`)
        // the listing covers only the shard's keys (and the orphan if it falls in it)
        const listed = mine.length - (bad ? 1 : 0) + (shardOfSha2(sha256(orphan)) === index ? 1 : 0)
        assert.include(run.stdout, `${listed} objects listed`)
        if (bad) assert.include(run.stdout + run.stderr, gone.digests.sha256)
        if (shardOfSha2(sha256(orphan)) === index) assert.include(run.stdout, sha256(orphan))
        else assert.notInclude(run.stdout, sha256(orphan))
        checked += mine.length
      }
      assert.strictEqual(checked, rows.length)
      // a shard and a range intersect (resuming inside a shard); a range outside the shard is a usage error
      const upper = shardRange({ index: 2, count: 4 }, sha256Bits).high!
      const resumed = yield* runCli(["verify", "--shard", "2/4", "--from-sha2", "a"], env)
      assert.include(resumed.stdout, `range:       a .. ${upper} (shard 2/4 of the SHA-256 keys)`)
      const whole = yield* runCli(["verify", "--shard", "2/4", "--from-sha2", "1"], env)
      assert.include(whole.stdout, `range:       8${"0".repeat(63)} .. ${upper}`)
      const outside = yield* runCli(["verify", "--shard", "0/4", "--from-sha2", "c"], env)
      assert.strictEqual(outside.code, 2)
      assert.include(outside.stderr, "--shard: 0/4 covers")
    }).pipe(Effect.provide(Env)), 300_000)
})

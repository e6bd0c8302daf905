/**
 * End-to-end: what `kill -9` leaves behind is cleaned up by the next run. The CLI runs as a child process against a
 * real PostgreSQL and the real Ceph RADOS Gateway, is killed while a multipart upload is in flight and spill files
 * are on disk, and the rerun leaves zero incomplete uploads of its own, zero spill directories and every row
 * migrated, while an upload somebody else started and one of a live lo-migrate process stay untouched.
 */
import { CreateMultipartUploadCommand, PutObjectCommand } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { currentOwner } from "@lo-migrate/core"
import { insertBinary } from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assertInvariant, assertMigrated, Env, runCli, settings, setUpSchema, waitUntil } from "./cli.ts"
import { recordedUploadInFlight, seedMultipart, spills, stateKeys, uploads } from "./production-rows.ts"

const ownerIdOf = (hostTag: string, boot: string, pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  return `${hostTag}-${pid}-${boot}-${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`
}

describe("leftovers of a killed run (PostgreSQL + Ceph RGW)", () => {
  it.live("kill -9 during multipart uploads and spills; the rerun cleans up and finishes", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const big = yield* seedMultipart(10, 900)
      const small = yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => insertBinary({ bytes: { size: 100 * 1024 + i, seed: 300 + i }, mimeType: "image/png" })
      )
      const { env } = yield* settings
      const bucket = yield* TestBucket
      const temp = mkdtempSync(join(tmpdir(), "lo-migrate-e2e-temp-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(temp, { recursive: true, force: true })))
      // One storer: the upload in flight at the kill is the recorded one (a kill in the one round trip between
      // CreateMultipartUpload and its record leaves an upload nobody can attribute: see libs/s3/README.md).
      const args = ["--in-mem-max", "64", "--upload-chunk-size", "5120", "--storer-threads", "1", "--temp-dir", temp]

      const first = yield* runCli(args, env, (child) =>
        waitUntil("a recorded multipart upload in flight and spill files on disk", recordedUploadInFlight(bucket, temp))
          .pipe(Effect.andThen(Effect.sync(() => child.kill("SIGKILL")))))
      assert.strictEqual(first.signal, "SIGKILL")
      const left = yield* uploads(bucket.client, bucket.name)
      assert.isAbove(left.length, 0, "the kill should leave an incomplete multipart upload")
      assert.isAbove(spills(temp).files, 0, "the kill should leave spill files")
      assert.isAbove((yield* stateKeys(bucket.client, bucket.name)).length, 0, "the killed run's lease and markers")

      // Somebody else's upload (no marker), and one of a live lo-migrate process (a real process on this host).
      const foreign = (yield* Effect.promise(() =>
        bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.name, Key: big[0]!.digests.sha256 }))
      )).UploadId!
      const me = yield* currentOwner
      const live = spawn("sleep", ["120"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => void live.kill("SIGKILL")))
      const liveId = ownerIdOf(me.hostTag, me.boot, live.pid!)
      const liveKey = createHash("sha256").update(randomBytes(8)).digest("hex")
      const liveUpload = (yield* Effect.promise(() =>
        bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.name, Key: liveKey }))
      )).UploadId!
      const put = (Key: string, body: unknown) =>
        Effect.promise(() => bucket.client.send(new PutObjectCommand({ Bucket: bucket.name, Key, Body: JSON.stringify(body) })))
      yield* put(`lo-migrate/owners/${liveId}`, { owner: liveId })
      const liveMarker = `lo-migrate/uploads/${liveId}/${liveKey}/${createHash("sha256").update(liveUpload).digest("hex").slice(0, 16)}`
      yield* put(liveMarker, { key: liveKey, uploadId: liveUpload, owner: liveId })

      const second = yield* runCli(args, env)
      assert.strictEqual(second.code, 0, second.stderr)
      assert.match(second.stderr, /aborted incomplete multipart upload/)
      assert.match(second.stderr, /removed 1 spill directory of ended runs/)
      // zero incomplete uploads of the killed run; the foreign one and the live process's one untouched
      assert.sameMembers(yield* uploads(bucket.client, bucket.name), [foreign, liveUpload])
      assert.deepStrictEqual(spills(temp), { dirs: 0, files: 0 })
      assert.sameMembers(yield* stateKeys(bucket.client, bucket.name), [`lo-migrate/owners/${liveId}`, liveMarker])
      yield* assertMigrated([...big, ...small])
      assert.strictEqual((yield* assertInvariant).left, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("two runs at once on the same bucket and temp dir: the second one's cleanup leaves the first one's work alone", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMultipart(16, 700)
      const { env } = yield* settings
      const bucket = yield* TestBucket
      const temp = mkdtempSync(join(tmpdir(), "lo-migrate-e2e-temp-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(temp, { recursive: true, force: true })))
      const args = ["--in-mem-max", "64", "--upload-chunk-size", "5120", "--storer-threads", "1", "--temp-dir", temp]
      let firstRunningAfterSweep = false
      let second: { code: number | null; stderr: string } | undefined
      const first = yield* runCli(args, env, (firstChild) =>
        Effect.gen(function*() {
          yield* waitUntil(
            "the first run's multipart upload and spill files",
            Effect.map(uploads(bucket.client, bucket.name), (open) => open.length > 0 && spills(temp).files > 0)
          )
          // the second run sweeps at start-up, before its monitor prints the first status block
          second = yield* runCli(args, env, (_, output) =>
            waitUntil("the second run's first status block", Effect.sync(() => output.stdout.includes("Progress Overview")))
              .pipe(Effect.andThen(Effect.sync(() => {
                firstRunningAfterSweep = firstChild.exitCode === null && firstChild.signalCode === null
              }))))
        }))
      assert.isTrue(firstRunningAfterSweep, "the first run should still have been running when the second one swept")
      assert.strictEqual(second?.code, 0, second?.stderr)
      assert.strictEqual(first.code, 0, first.stderr)
      assert.notMatch(second!.stderr, /aborted incomplete multipart upload|spill director(y|ies) of ended runs/)
      assert.deepStrictEqual(yield* uploads(bucket.client, bucket.name), [])
      assert.deepStrictEqual(spills(temp), { dirs: 0, files: 0 })
      assert.deepStrictEqual(yield* stateKeys(bucket.client, bucket.name), [])
      yield* assertMigrated(rows)
      assert.strictEqual((yield* assertInvariant).left, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)
})

/**
 * The upload ledger against the real S3 server (Ceph RGW): a sweep aborts exactly the recorded uploads of ended
 * lo-migrate processes, and leaves alone uploads of live processes (this host: by pid; another host: by lease) and
 * uploads nobody recorded (somebody else's).
 */
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client
} from "@aws-sdk/client-s3"
import { assert, layer } from "@effect/vitest"
import { currentOwner } from "@lo-migrate/core"
import { Deferred, Effect, Fiber } from "effect"
import { spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { makeUploadLedger, MiB, S3ClientService } from "../src/index.ts"
import { TestBucket } from "../src/testing.ts"
import { injectFaults, openUploads, recordRequests, requestOf, spill, storeOn, tempDir } from "./support.ts"

const key = () => createHash("sha256").update(randomBytes(16)).digest("hex")

const createUpload = (client: S3Client, bucket: string, k: string) =>
  Effect.promise(() => client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: k }))).pipe(
    Effect.map((out) => out.UploadId!)
  )

/** What another process's ledger would have written: its lease (optional) and the marker of one upload. */
const fakeOwner = (client: S3Client, bucket: string, ownerId: string, withLease: boolean) =>
  Effect.gen(function*() {
    const k = key()
    const uploadId = yield* createUpload(client, bucket, k)
    const put = (Key: string, body: unknown) =>
      Effect.promise(() => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: JSON.stringify(body) })))
    if (withLease) yield* put(`lo-migrate/owners/${ownerId}`, { owner: ownerId })
    yield* put(`lo-migrate/uploads/${ownerId}/${k}/${createHash("sha256").update(uploadId).digest("hex").slice(0, 16)}`, {
      key: k,
      uploadId,
      owner: ownerId
    })
    return { key: k, uploadId }
  })

const stateKeys = (client: S3Client, bucket: string) =>
  Effect.promise(() => client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "lo-migrate/" }))).pipe(
    Effect.map((out) => (out.Contents ?? []).map((o) => o.Key!).sort())
  )

const markerBody = (client: S3Client, bucket: string, Key: string) =>
  Effect.promise(async () => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key }))
    return JSON.parse(await out.Body!.transformToString()) as { key: string; uploadId: string | null; owner: string }
  })

const ownerIdOf = (hostTag: string, boot: string, pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  return `${hostTag}-${pid}-${boot}-${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`
}

layer(TestBucket.layer, { excludeTestServices: true })("S3UploadLedger on a real S3 server", (it) => {
  it.effect("a sweep aborts only the recorded uploads of ended runs", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      const { client, name } = bucket
      const me = yield* currentOwner
      const otherHost = me.hostTag === "0".repeat(12) ? "1".repeat(12) : "0".repeat(12)

      // somebody else's upload of a content-like key: never recorded, never touched
      const foreign = yield* createUpload(client, name, key())
      // a live lo-migrate process on this host (a real process: its pid and start time are checked)
      const liveChild = spawn("sleep", ["60"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => void liveChild.kill("SIGKILL")))
      const live = yield* fakeOwner(client, name, ownerIdOf(me.hostTag, me.boot, liveChild.pid!), true)
      // one that was killed (its process has ended; its lease is still there, fresh)
      const deadChild = spawn("true", [], { stdio: "ignore" })
      const deadId = ownerIdOf(me.hostTag, me.boot, deadChild.pid!)
      yield* Effect.callback<void>((resume) => void deadChild.once("exit", () => resume(Effect.void)))
      const dead = yield* fakeOwner(client, name, deadId, true)
      // another host: fresh lease (running), and no lease at all (gone)
      const remoteLive = yield* fakeOwner(client, name, `${otherHost}-4242-abcdef01-77`, true)
      const remoteGone = yield* fakeOwner(client, name, `${otherHost}-4343-abcdef01-78`, false)
      // a marker whose upload has completed or been aborted already
      const finished = yield* fakeOwner(client, name, deadId, false)
      yield* Effect.promise(() =>
        import("@aws-sdk/client-s3").then((s3) =>
          client.send(new s3.AbortMultipartUploadCommand({ Bucket: name, Key: finished.key, UploadId: finished.uploadId }))
        )
      )

      // killed between its pending marker and the upload id: an upload of that key since then is not attributable
      const pendingKey = key()
      yield* Effect.promise(() =>
        client.send(
          new PutObjectCommand({
            Bucket: name,
            Key: `lo-migrate/uploads/${deadId}/${pendingKey}/0123456789abcdef`,
            Body: JSON.stringify({ key: pendingKey, uploadId: null, owner: deadId })
          })
        )
      )
      const unattributable = yield* createUpload(client, name, pendingKey)

      const ledger = yield* makeUploadLedger(client, { ...bucket.config, leaseTimeoutMs: 60_000 })
      const result = yield* ledger.sweep
      assert.deepStrictEqual(result, { aborted: 3, kept: 2, goneOwners: 2 })
      const left = (yield* openUploads(client, name)).map((u) => u.UploadId).sort()
      assert.deepStrictEqual(left, [foreign, live.uploadId, remoteLive.uploadId, unattributable].sort())
      assert.notInclude(left, dead.uploadId)
      assert.notInclude(left, remoteGone.uploadId)
      // the gone owners' markers and leases are deleted; the live ones' stay; this sweep wrote its own lease
      const keys = yield* stateKeys(client, name)
      assert.isFalse(keys.some((k) => k.includes(deadId)), keys.join("\n"))
      assert.isFalse(keys.some((k) => k.includes("-4343-")), keys.join("\n"))
      assert.isTrue(keys.some((k) => k.startsWith(`lo-migrate/uploads/${otherHost}-4242-`)))
      assert.include(keys, `lo-migrate/owners/${me.id}`)

      // the other host's lease expires (server time): then its upload counts as left behind too
      const strict = yield* makeUploadLedger(client, { ...bucket.config, leaseTimeoutMs: 1500 })
      yield* Effect.sleep("2500 millis")
      const later = yield* strict.sweep
      assert.deepStrictEqual(later, { aborted: 1, kept: 1, goneOwners: 1 })
      assert.deepStrictEqual(
        (yield* openUploads(client, name)).map((u) => u.UploadId).sort(),
        [foreign, live.uploadId, unattributable].sort()
      )
    }).pipe(Effect.scoped), 60_000)

  it.effect("a sweep of a ledger that records no other owner is one listing: no lease written, nothing deleted", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      const { client } = yield* S3ClientService.make(bucket.config)
      const log = recordRequests(client, { ledger: true })
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const ledger = yield* makeUploadLedger(client, { ...bucket.config, statePrefix: "lo-migrate-empty/" })
        return yield* ledger.sweep
      }))
      assert.deepStrictEqual(result, { aborted: 0, kept: 0, goneOwners: 0 })
      // the listing, and no lease to delete when the scope closed
      assert.deepStrictEqual(log.map((r) => `${r.command} ${r.status} ${String(r.input["Prefix"])}`), [
        "ListObjectsV2Command 200 lo-migrate-empty/"
      ])
    }), 30_000)

  it.effect("record writes the lease first and a marker; forget deletes the marker; the lease goes with the scope", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      const { client, name } = bucket
      const me = yield* currentOwner
      const k = key()
      const before = yield* stateKeys(client, name)
      yield* Effect.scoped(Effect.gen(function*() {
        const ledger = yield* makeUploadLedger(client, bucket.config)
        assert.strictEqual(ledger.ownerId, me.id)
        const entry = yield* ledger.begin(k)
        const during = yield* stateKeys(client, name)
        assert.include(during, `lo-migrate/owners/${me.id}`)
        assert.include(during, entry.markerKey)
        assert.isTrue(entry.markerKey.startsWith(`lo-migrate/uploads/${me.id}/${k}/`))
        assert.deepStrictEqual(yield* markerBody(client, name, entry.markerKey), { key: k, uploadId: null, owner: me.id })
        yield* ledger.started(entry, "upload-1")
        assert.deepStrictEqual(yield* markerBody(client, name, entry.markerKey), { key: k, uploadId: "upload-1", owner: me.id })
        yield* ledger.forget(entry)
        assert.isFalse((yield* stateKeys(client, name)).some((x) => x.includes(k)))
      }))
      assert.deepStrictEqual(
        (yield* stateKeys(client, name)).filter((x) => !before.includes(x)),
        [],
        "nothing of this owner is left once its scope closed"
      )
    }), 30_000)

  it.effect("the store records each multipart upload before its first part, and forgets it after completion", () =>
    Effect.gen(function*() {
      const { store, ledger, client, bucket } = yield* storeOn({ partSize: 5 * MiB })
      const dir = yield* tempDir
      const bytes = randomBytes(5 * MiB + 100)
      const request = requestOf(bytes, { body: spill(dir, bytes) })
      const partAsked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      let seenAtFirstPart: ReadonlyArray<string> = []
      injectFaults(client, (command, input) =>
        command === "UploadPartCommand" && input["PartNumber"] === 1
          ? Effect.runPromise(
            stateKeys(client, bucket).pipe(
              Effect.tap((keys) => Effect.sync(() => void (seenAtFirstPart = keys))),
              Effect.andThen(Deferred.succeed(partAsked, undefined)),
              Effect.andThen(Deferred.await(release))
            )
          )
          : undefined)
      const fiber = yield* Effect.forkChild(store.put(request))
      yield* Deferred.await(partAsked)
      const [upload] = yield* openUploads(client, bucket, request.key)
      assert.isDefined(upload)
      const marker = seenAtFirstPart.find((k) => k.startsWith(`lo-migrate/uploads/${ledger.ownerId}/${request.key}/`))
      assert.isDefined(marker, seenAtFirstPart.join("\n"))
      assert.strictEqual((yield* markerBody(client, bucket, marker!)).uploadId, upload!.UploadId)
      assert.include(seenAtFirstPart, `lo-migrate/owners/${ledger.ownerId}`)
      yield* Deferred.succeed(release, undefined)
      assert.strictEqual(yield* Fiber.join(fiber), "Uploaded")
      // (the bucket is the file's: other tests' owners may be in it)
      const mine = (yield* stateKeys(client, bucket)).filter((k) => k.includes(ledger.ownerId))
      assert.deepStrictEqual(mine, [`lo-migrate/owners/${ledger.ownerId}`])
      assert.deepStrictEqual(yield* openUploads(client, bucket, request.key), [])
    }), 60_000)
})

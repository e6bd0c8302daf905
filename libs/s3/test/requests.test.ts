/**
 * Which requests the live S3ObjectStore sends per object in its default mode (`headBeforePut: "resume"`), counted by
 * an SDK middleware on the store's own client, against the real S3 server of the test environment (Ceph RGW).
 *
 * The file's bucket is unversioned, as a migration's target normally is: there a conditional PUT of a present key is
 * refused with 412 and stores nothing. In a versioned bucket Ceph 16 stores it as a new version instead, so the store
 * HEADs first there (S3ConditionalPut.ts); those tests use a bucket of their own with versioning on, where "not stored
 * twice" is counted by the gateway itself: every PutObject or CompleteMultipartUpload that stores bytes leaves a
 * version.
 */
import {
  DeleteObjectsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client
} from "@aws-sdk/client-s3"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { defaultS3StoreConfig, MiB } from "../src/index.ts"
import { TestBucket } from "../src/testing.ts"
import {
  count,
  getObject,
  injectFaults,
  type Recorded,
  requestOf,
  serviceError,
  spill,
  storeOn,
  tempDir
} from "./support.ts"

/** Every version in the bucket (the upload ledger's `lo-migrate/` objects included), with delete markers. */
const listVersions = (client: S3Client, bucket: string) =>
  Effect.promise(async () => {
    const versions: Array<{ readonly Key: string; readonly VersionId: string }> = []
    let keyMarker: string | undefined
    let versionIdMarker: string | undefined
    for (;;) {
      const page = await client.send(
        new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker })
      )
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        versions.push({ Key: v.Key!, VersionId: v.VersionId! })
      }
      if (page.IsTruncated !== true) return versions
      keyMarker = page.NextKeyMarker
      versionIdMarker = page.NextVersionIdMarker
    }
  })

/**
 * A bucket of the test's own with versioning on, in place of the file's `TestBucket` for the effect it is given; every
 * version is deleted when the test's scope closes (before `TestBucket` deletes the bucket).
 */
const versioned = Effect.gen(function*() {
  const bucket = yield* TestBucket.make()
  const { client, name } = bucket
  yield* Effect.acquireRelease(
    Effect.promise(() =>
      client.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: "Enabled" } }))
    ),
    () =>
      Effect.gen(function*() {
        const all = yield* listVersions(client, name)
        for (let i = 0; i < all.length; i += 1000) {
          const Objects = all.slice(i, i + 1000)
          yield* Effect.promise(() =>
            client.send(new DeleteObjectsCommand({ Bucket: name, Delete: { Objects, Quiet: true } }))
          )
        }
      })
  )
  /** Stored versions per content key (the ledger's own objects aside). */
  const versionsPerKey = Effect.map(listVersions(client, name), (all) => {
    const counts = new Map<string, number>()
    for (const v of all) if (!v.Key.startsWith("lo-migrate/")) counts.set(v.Key, (counts.get(v.Key) ?? 0) + 1)
    return counts
  })
  const inIt = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, TestBucket, bucket)
  return { versionsPerKey, inIt, bucket }
})

const calls = (log: Array<Recorded>) => log.splice(0).map((r) => `${r.command.replace("Command", "")} ${r.status}`)

/** Small objects of an earlier run (uploaded, not committed) and new ones, met in this order by a resumed run. */
const resumedSet = (dir: string) => {
  const earlier = Array.from({ length: 6 }, (_, i) => randomBytes(2000 + i * 9_001))
  const fresh = Array.from({ length: 6 }, (_, i) => randomBytes(3000 + i * 11_003))
  // one spilled body of each kind (a small spilled body when --in-mem-max is lowered)
  const requests = (all: ReadonlyArray<Uint8Array>) => all.map((b, i) => requestOf(b, i === 0 ? { body: spill(dir, b) } : {}))
  return { earlier, present: requests(earlier), fresh: requests(fresh) }
}

// excludeTestServices: these tests talk to a real server in real time.
layer(TestBucket.layer, { excludeTestServices: true })("S3ObjectStore requests per object (headBeforePut resume)", (it) => {
  describe("small objects (up to headAbove, 1 MiB), unversioned bucket", () => {
    it.effect("a fresh run sends no HEAD and exactly one conditional PUT per object", () =>
      Effect.gen(function*() {
        const { store, log, config } = yield* storeOn()
        assert.strictEqual(config.headBeforePut, "resume")
        yield* store.check // start-up: learns that conditional PUTs are honoured here
        assert.deepStrictEqual(calls(log), ["HeadBucket 200", "HeadObject 404", "GetBucketVersioning 200"])
        const dir = yield* tempDir
        const bodies = [...Array.from({ length: 40 }, (_, i) => randomBytes(1 + i * 997)), randomBytes(MiB)]
        const requests = bodies.map((bytes, i) => requestOf(bytes, i % 5 === 0 ? { body: spill(dir, bytes) } : {}))
        const outcomes = yield* Effect.forEach(requests, (r) => store.put(r), { concurrency: 8 })
        assert.deepStrictEqual(outcomes, requests.map(() => "Uploaded"))
        assert.strictEqual(count(log, "HeadObjectCommand"), 0)
        assert.strictEqual(log.length, requests.length)
        for (const r of log) {
          assert.strictEqual(r.command, "PutObjectCommand")
          assert.strictEqual(r.status, 200)
          assert.strictEqual(r.headers["if-none-match"], "*")
        }
        assert.deepStrictEqual(
          log.map((r) => r.input["Key"]).sort(),
          requests.map((r) => r.key).sort(),
          "one PUT per object"
        )
      }))

    it.effect("without a start-up check, the first put learns the versioning once, then none", () =>
      Effect.gen(function*() {
        const { store, log } = yield* storeOn()
        const requests = Array.from({ length: 8 }, (_, i) => requestOf(randomBytes(100 + i)))
        yield* Effect.forEach(requests, (r) => store.put(r), { concurrency: 8 })
        assert.strictEqual(count(log, "GetBucketVersioningCommand"), 1)
        assert.strictEqual(count(log, "PutObjectCommand"), 8)
        assert.strictEqual(log.length, 9)
      }))

    it.effect("versioning that cannot be read (no s3:GetBucketVersioning) is taken as versioned: HEAD first", () =>
      Effect.gen(function*() {
        const { store, log, client } = yield* storeOn()
        injectFaults(client, (command) =>
          command === "GetBucketVersioningCommand" ? serviceError("AccessDenied", 403) : undefined)
        yield* store.check // not a start-up failure: the migration goes on, at the cost of the HEADs
        log.splice(0)
        for (let i = 0; i < 2; i++) {
          assert.strictEqual(yield* store.put(requestOf(randomBytes(100 + i))), "Uploaded")
          assert.deepStrictEqual(calls(log), ["HeadObject 404", "PutObject 200"])
        }
      }))

    it.effect("a resumed run: objects uploaded but not committed are refused with 412 and found by HEAD", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const { earlier, fresh, present } = resumedSet(dir)
        const first = yield* storeOn() // the earlier run, killed before it committed these rows
        for (const bytes of earlier) assert.strictEqual(yield* first.store.put(requestOf(bytes)), "Uploaded")
        const { store, log, client, bucket } = yield* storeOn() // the resumed run, its own client
        yield* store.check
        log.splice(0)
        for (const request of present) {
          assert.strictEqual(yield* store.put(request), "AlreadyPresent")
          // the conditional PUT was refused (nothing stored), the HEAD confirmed the size
          assert.deepStrictEqual(calls(log), ["PutObject 412", "HeadObject 200"])
        }
        for (const request of fresh) {
          assert.strictEqual(yield* store.put(request), "Uploaded")
          assert.deepStrictEqual(calls(log), ["PutObject 200"])
        }
        const back = yield* getObject(client, bucket, present[0]!.key)
        assert.isTrue(Buffer.from(back.bytes).equals(earlier[0]!))
      }))
  })

  describe("the conditional window (conditionalWindow: If-None-Match only until keys prove new)", () => {
    const ifNoneMatch = (log: Array<Recorded>) =>
      log.splice(0).map((r) => `${r.command.replace("Command", "")} ${r.status} ${r.headers["if-none-match"] ?? "-"}`)

    it.effect("after that many new keys in a row, small PUTs go unconditionally; the default is 1000", () =>
      Effect.gen(function*() {
        assert.strictEqual(defaultS3StoreConfig.conditionalWindow, 1000)
        const { store, log } = yield* storeOn({ conditionalWindow: 3 })
        yield* store.check
        log.splice(0)
        const dir = yield* tempDir
        const bodies = Array.from({ length: 6 }, (_, i) => randomBytes(100 + i * 5_003))
        for (const [i, bytes] of bodies.entries()) {
          // a spilled small body counts like one in memory
          assert.strictEqual(yield* store.put(requestOf(bytes, i === 4 ? { body: spill(dir, bytes) } : {})), "Uploaded")
        }
        assert.deepStrictEqual(ifNoneMatch(log), [
          "PutObject 200 *",
          "PutObject 200 *",
          "PutObject 200 *",
          "PutObject 200 -",
          "PutObject 200 -",
          "PutObject 200 -"
        ])
      }))

    it.effect("a present key within the window starts the count again; a HEAD that finds none counts as new", () =>
      Effect.gen(function*() {
        const first = yield* storeOn()
        const earlier = randomBytes(700)
        assert.strictEqual(yield* first.store.put(requestOf(earlier)), "Uploaded")
        const { store, log } = yield* storeOn({ conditionalWindow: 2 })
        yield* store.check
        log.splice(0)
        assert.strictEqual(yield* store.put(requestOf(randomBytes(300))), "Uploaded")
        assert.strictEqual(yield* store.put(requestOf(earlier)), "AlreadyPresent")
        assert.strictEqual(yield* store.put(requestOf(randomBytes(MiB + 1))), "Uploaded") // above headAbove: HEAD 404
        assert.strictEqual(yield* store.put(requestOf(randomBytes(400))), "Uploaded")
        assert.strictEqual(yield* store.put(requestOf(randomBytes(500))), "Uploaded")
        assert.deepStrictEqual(ifNoneMatch(log), [
          "PutObject 200 *",
          "PutObject 412 *",
          "HeadObject 200 -",
          "HeadObject 404 -",
          "PutObject 200 -",
          "PutObject 200 *",
          "PutObject 200 -"
        ])
      }))

    it.effect("past the window a present key is written again with the same bytes, its Content-Type from this put", () =>
      Effect.gen(function*() {
        const bytes = randomBytes(900)
        const first = yield* storeOn()
        assert.strictEqual(yield* first.store.put(requestOf(bytes, { contentType: "text/plain" })), "Uploaded")
        const { store, log, client, bucket } = yield* storeOn({ conditionalWindow: 0 })
        yield* store.check
        log.splice(0)
        const request = requestOf(bytes, { contentType: "application/pdf" })
        assert.strictEqual(yield* store.put(request), "Uploaded")
        assert.deepStrictEqual(ifNoneMatch(log), ["PutObject 200 -"])
        const back = yield* getObject(client, bucket, request.key)
        assert.isTrue(Buffer.from(back.bytes).equals(bytes))
        assert.strictEqual(back.contentType, "application/pdf")
      }))

    it.effect("headBeforePut never: every small PUT stays conditional, whatever the window", () =>
      Effect.gen(function*() {
        const { store, log } = yield* storeOn({ headBeforePut: "never", conditionalWindow: 1 })
        yield* store.check
        log.splice(0)
        for (let i = 0; i < 3; i++) assert.strictEqual(yield* store.put(requestOf(randomBytes(200 + i))), "Uploaded")
        assert.deepStrictEqual(ifNoneMatch(log), ["PutObject 200 *", "PutObject 200 *", "PutObject 200 *"])
      }))
  })

  describe("versioned bucket (Ceph stores a conditional PUT there as a new version)", () => {
    it.effect("the gateway does store a conditional PUT of a present key as a second version (why the store HEADs)", () =>
      Effect.gen(function*() {
        const { bucket, versionsPerKey } = yield* versioned
        const bytes = randomBytes(500)
        const key = requestOf(bytes).key
        for (let i = 0; i < 2; i++) {
          yield* Effect.promise(() =>
            bucket.client.send(new PutObjectCommand({ Bucket: bucket.name, Key: key, Body: bytes, IfNoneMatch: "*" }))
          )
        }
        // If this ever becomes 1 (a 412 on the second PUT), S3ConditionalPut.ts may trust versioned buckets too.
        assert.strictEqual((yield* versionsPerKey).get(key), 2)
      }))

    it.effect("a resumed run HEADs every PUT: present objects are not stored again (one version each)", () =>
      Effect.gen(function*() {
        const { inIt, versionsPerKey } = yield* versioned
        const dir = yield* tempDir
        const { earlier, fresh, present } = resumedSet(dir)
        const first = yield* inIt(storeOn())
        for (const bytes of earlier) assert.strictEqual(yield* first.store.put(requestOf(bytes)), "Uploaded")
        // a window shorter than the fresh objects: a versioned bucket is HEADed first all the same
        const { store, log } = yield* inIt(storeOn({ conditionalWindow: 2 }))
        yield* store.check
        assert.deepStrictEqual(calls(log), ["HeadBucket 200", "HeadObject 404", "GetBucketVersioning 200"])
        for (const request of present) {
          assert.strictEqual(yield* store.put(request), "AlreadyPresent")
          assert.deepStrictEqual(calls(log), ["HeadObject 200"])
        }
        for (const request of fresh) {
          assert.strictEqual(yield* store.put(request), "Uploaded")
          assert.deepStrictEqual(calls(log), ["HeadObject 404", "PutObject 200"])
        }
        const versions = yield* versionsPerKey
        assert.strictEqual(versions.size, present.length + fresh.length)
        for (const r of [...present, ...fresh]) assert.strictEqual(versions.get(r.key), 1, `versions of ${r.key}`)
      }))
  })

  describe("large objects (above headAbove) and multipart uploads", () => {
    it.effect("a body above 1 MiB is HEADed first: new costs HEAD + PUT, present costs one HEAD", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const { store, log } = yield* storeOn()
        const inMemory = randomBytes(MiB + 1)
        const spilled = randomBytes(2 * MiB)
        for (const request of [requestOf(inMemory), requestOf(spilled, { body: spill(dir, spilled) })]) {
          assert.strictEqual(yield* store.put(request), "Uploaded")
          const sent = log.slice()
          assert.deepStrictEqual(calls(log), ["HeadObject 404", "PutObject 200"])
          assert.isUndefined(sent[1]!.headers["if-none-match"])
          assert.strictEqual(yield* store.put(request), "AlreadyPresent")
          assert.deepStrictEqual(calls(log), ["HeadObject 200"]) // no body re-sent
        }
      }))

    it.effect("a multipart upload is HEADed first; present, it costs one HEAD and is not uploaded again", () =>
      Effect.gen(function*() {
        const { inIt, versionsPerKey } = yield* versioned
        const dir = yield* tempDir
        const { store, log } = yield* inIt(storeOn({ partSize: 5 * MiB }))
        const bytes = randomBytes(6 * MiB)
        const request = requestOf(bytes, { body: spill(dir, bytes) })
        assert.strictEqual(yield* store.put(request), "Uploaded")
        assert.deepStrictEqual(calls(log), [
          "HeadObject 404",
          "CreateMultipartUpload 200",
          "UploadPart 200",
          "UploadPart 200",
          "CompleteMultipartUpload 200",
          "HeadObject 200" // Ceph answers CompleteMultipartUpload with an empty ETag: the size is checked instead
        ])
        assert.strictEqual(yield* store.put(request), "AlreadyPresent")
        assert.deepStrictEqual(calls(log), ["HeadObject 200"])
        assert.deepStrictEqual([...(yield* versionsPerKey).values()], [1])
      }))
  })
})

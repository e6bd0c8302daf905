/**
 * The live S3ObjectStore against the real S3 server of the test environment (Ceph RGW, started by `npm test`).
 * The file works in its own bucket, created before and emptied and deleted after.
 */
import { CreateMultipartUploadCommand, HeadBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3"
import { assert, describe, layer } from "@effect/vitest"
import { vi } from "vitest"
import { Metrics, ObjectStore, StorageError, type TransferCorrupted } from "@lo-migrate/core"
import { Cause, Deferred, Effect, Exit, Fiber, Option, Redacted } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { join } from "node:path"
import {
  makeUploadLedger,
  MiB,
  S3ClientService,
  S3ObjectStore,
  S3UploadLedger
} from "../src/index.ts"
import { TestBucket, testObjectStoreLayer } from "../src/testing.ts"
import {
  count,
  exists,
  getObject,
  injectFaults,
  md5Base64,
  openUploads,
  requestOf,
  rewriteHeader,
  serviceError,
  sha256Hex,
  spill,
  storeOn,
  tempDir
} from "./support.ts"

const failureOf = <A>(exit: Exit.Exit<A, StorageError | TransferCorrupted>): StorageError => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${String(exit.value)}`)
  const error = Exit.findErrorOption(exit)
  if (Option.isNone(error)) throw new Error("expected a StorageError, got a defect or an interruption")
  if (error.value._tag !== "StorageError") throw new Error(`expected a StorageError, got ${error.value.message}`)
  return error.value
}

/** The `TransferCorrupted` a put ended with (a body the server kept rejecting as corrupted in transit). */
const corruptionOf = <A>(exit: Exit.Exit<A, StorageError | TransferCorrupted>): TransferCorrupted => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${String(exit.value)}`)
  const error = Exit.findErrorOption(exit)
  if (Option.isNone(error) || error.value._tag !== "TransferCorrupted") {
    throw new Error(`expected TransferCorrupted, got ${Option.isSome(error) ? error.value.message : "a defect"}`)
  }
  return error.value
}

/** Headers the SDK adds for its own checksums, which break Ceph: none may be sent. */
const assertNoSdkChecksums = (headers: Record<string, string>) => {
  for (const name of Object.keys(headers)) {
    assert.notMatch(name, /^x-amz-checksum-|^x-amz-trailer$|^x-amz-sdk-checksum-algorithm$/)
  }
  assert.notStrictEqual(headers["content-encoding"], "aws-chunked")
}

// excludeTestServices: these tests talk to a real server in real time (the per-part retry waits on the real clock).
layer(TestBucket.layer, { excludeTestServices: true })("S3ObjectStore on a real S3 server", (it) => {
  describe("check", () => {
    it.effect("succeeds on an existing bucket with valid credentials", () =>
      Effect.gen(function*() {
        const { store, log } = yield* storeOn()
        yield* store.check
        // HeadBucket, then a read-only HEAD of a key that is never a content key (it must answer 404, not 403), then
        // the bucket's versioning (whether conditional PUTs are honoured, S3ConditionalPut.ts).
        assert.deepStrictEqual(log.map((r) => `${r.command} ${r.status}`), [
          "HeadBucketCommand 200",
          "HeadObjectCommand 404",
          "GetBucketVersioningCommand 200"
        ])
        assert.strictEqual(log[1]!.input["Key"], S3ObjectStore.checkProbeKey)
      }))

    it.effect("fails fast and names a missing bucket", () =>
      Effect.gen(function*() {
        const { store } = yield* storeOn({})
        const bucket = yield* TestBucket
        const e = failureOf(
          yield* Effect.exit(Effect.flatMap(Effect.service(ObjectStore), (missing) => missing.check)).pipe(
            Effect.provide(S3ObjectStore.layer({ ...bucket.config, bucket: `${bucket.name}-missing` }))
          )
        )
        assert.isFalse(e.retryable)
        assert.include(e.message, `"${bucket.name}-missing" does not exist`)
        yield* store.check // the real bucket is still fine
      }))

    it.effect("credentials whose HEAD of a missing key answers 403 fail the check, naming the permissions", () =>
      Effect.gen(function*() {
        const { store, client } = yield* storeOn()
        // What AWS answers without s3:ListBucket (Ceph answers 404 whenever HeadBucket is allowed): injected.
        injectFaults(client, (command, input) =>
          command === "HeadObjectCommand" && input["Key"] === S3ObjectStore.checkProbeKey ? serviceError("Forbidden", 403) : undefined)
        const e = failureOf(yield* Effect.exit(store.check))
        assert.isFalse(e.retryable)
        assert.strictEqual(e.operation, "HeadObject")
        assert.include(e.message, "HEAD of a missing key must answer 404: the credentials need s3:GetObject")
        assert.strictEqual((e.cause as Error | undefined)?.name, "Forbidden", "the SDK error is kept as the cause")
      }))

    it.effect("a wrong secret key fails clearly (signature mismatch) and the secret is nowhere in the error", () =>
      Effect.gen(function*() {
        const bucket = yield* TestBucket
        const wrong = "wrong-secret-0123456789abcdefghijklmnopqrstuv"
        // "never": the first request of a put is the bucket's GetBucketVersioning (once per store, whether conditional
        // PUTs are honoured), whose error response names the code, as the PUT's would.
        const { store } = yield* storeOn({ secretAccessKey: Redacted.make(wrong), headBeforePut: "never" })
        const e = failureOf(yield* Effect.exit(store.check))
        assert.isFalse(e.retryable)
        assert.include(e.message, "Forbidden (HTTP 403): access denied: check the credentials")
        const put = failureOf(yield* Effect.exit(store.put(requestOf(randomBytes(100)))))
        assert.isFalse(put.retryable)
        assert.include(put.message, "SignatureDoesNotMatch")
        // the server only says the signatures differ: the message lists causes, it claims none
        assert.include(put.message, "the server computed a different signature")
        assert.notInclude(put.message, "is wrong")
        // "always": the first request is a HEAD, whose 403 has no body: still a clear, fatal error.
        const { store: headFirst } = yield* storeOn({ secretAccessKey: Redacted.make(wrong), headBeforePut: "always" })
        const head = failureOf(yield* Effect.exit(headFirst.put(requestOf(randomBytes(100)))))
        assert.isFalse(head.retryable)
        assert.include(head.message, "HeadObject")
        assert.include(head.message, "check the credentials")
        const real = Redacted.value(bucket.config.secretAccessKey!)
        for (const text of [e.message, put.message, String(put.cause), JSON.stringify(put), String(put), head.message]) {
          assert.notInclude(text, wrong)
          assert.notInclude(text, real)
        }
      }))

    /**
     * This host's clock set 20 minutes off (only `Date` is faked; timers and sockets run in real time). Every answer
     * gives the SDK the server's time, so only the first request is signed with the wrong one; the server refuses it
     * with a 403, and a HEAD's 403 has no body to say why.
     */
    const withHostClockOff = <A, E, R>(offMinutes: number, self: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + offMinutes * 60_000, shouldAdvanceTime: true })),
        () => self,
        () => Effect.sync(() => vi.useRealTimers())
      )

    it.effect("a host clock 20 minutes off: the refused first request is retryable and says why; then all works", () =>
      Effect.forEach([-20, 20], (offMinutes) =>
        Effect.gen(function*() {
          const { store, client, bucket, log } = yield* storeOn()
          const first = failureOf(yield* Effect.exit(store.check))
          assert.strictEqual(first.operation, "HeadBucket")
          assert.isTrue(first.retryable, first.message)
          assert.match(first.message, /Forbidden \(HTTP 403\): the request was signed at \d{8}T\d{6}Z .* 20 minutes apart/)
          assert.include(first.message, "the refusal may be for its time")
          assert.notInclude(first.message, "check the credentials")
          yield* store.check
          const bytes = randomBytes(5000)
          assert.strictEqual(yield* store.put(requestOf(bytes)), "Uploaded")
          assert.deepStrictEqual(Buffer.from((yield* getObject(client, bucket, requestOf(bytes).key)).bytes), bytes)
          assert.deepStrictEqual(log.map((r) => `${r.command} ${r.status}`), [
            "HeadBucketCommand 403",
            "HeadBucketCommand 200",
            "HeadObjectCommand 404",
            "GetBucketVersioningCommand 200",
            "PutObjectCommand 200",
            "GetObjectCommand 200"
          ], `${offMinutes} min`)
        }).pipe((self) => withHostClockOff(offMinutes, self))))

    it.effect("a wrong clock and a wrong secret: the repeat, signed with the server's time, names the credentials", () =>
      Effect.gen(function*() {
        const { store } = yield* storeOn({ secretAccessKey: Redacted.make("wrong-secret-0123456789abcdefghijklmnopqrstuv") })
        assert.isTrue(failureOf(yield* Effect.exit(store.check)).retryable)
        const second = failureOf(yield* Effect.exit(store.check))
        assert.isFalse(second.retryable)
        assert.include(second.message, "Forbidden (HTTP 403): access denied: check the credentials")
      }).pipe((self) => withHostClockOff(25, self)))

    it.effect("an unknown access key id fails clearly", () =>
      Effect.gen(function*() {
        const { store } = yield* storeOn({ accessKeyId: Redacted.make("NOSUCHACCESSKEY00000"), headBeforePut: "never" })
        const e = failureOf(yield* Effect.exit(store.put(requestOf(randomBytes(100)))))
        assert.isFalse(e.retryable)
        assert.include(e.message, "InvalidAccessKeyId")
      }))

    it.effect("TestBucket dies with a message that says how to start the server when it cannot create its bucket", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Effect.scoped(TestBucket.make({ endpoint: "http://127.0.0.1:1" })))
        assert.isTrue(Exit.hasDies(exit))
        if (Exit.isFailure(exit)) {
          assert.match(Cause.pretty(exit.cause), /could not create test bucket .*tools\/s3\/ceph-rgw\.sh start/)
        }
      }))

    it.effect("a server that refuses connections is a retryable error", () =>
      Effect.gen(function*() {
        const { store } = yield* storeOn({ endpoint: "http://127.0.0.1:1" })
        const e = failureOf(yield* Effect.exit(store.check))
        assert.isTrue(e.retryable, e.message)
        assert.include(e.message, "ECONNREFUSED")
      }))
  })

  describe("put and head", () => {
    it.effect("a small in-memory object: one PUT with Content-MD5, Content-Length and the mime type; read back identical", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn()
        const bytes = randomBytes(10_000)
        const request = requestOf(bytes, { contentType: "image/png" })
        assert.isTrue(Option.isNone(yield* store.head(request.key)))
        assert.strictEqual(yield* store.put(request), "Uploaded")
        const puts = log.filter((r) => r.command === "PutObjectCommand")
        assert.strictEqual(puts.length, 1)
        assert.strictEqual(puts[0]!.headers["content-md5"], md5Base64(bytes))
        assert.strictEqual(puts[0]!.headers["content-length"], "10000")
        assert.strictEqual(puts[0]!.headers["content-type"], "image/png")
        assertNoSdkChecksums(puts[0]!.headers)
        const back = yield* getObject(client, bucket, request.key)
        assert.deepStrictEqual(Buffer.from(back.bytes), bytes)
        assert.strictEqual(back.contentType, "image/png")
        assert.deepStrictEqual(yield* store.head(request.key), Option.some({ size: 10_000, contentType: "image/png" }))
      }))

    it.effect("a 0-byte object, in memory and spilled", () =>
      Effect.gen(function*() {
        const { store, client, bucket } = yield* storeOn()
        const dir = yield* tempDir
        const empty = new Uint8Array(0)
        assert.strictEqual(yield* store.put(requestOf(empty, { contentType: "text/plain" })), "Uploaded")
        const back = yield* getObject(client, bucket, requestOf(empty).key)
        assert.strictEqual(back.bytes.byteLength, 0)
        assert.strictEqual(back.contentType, "text/plain")
        // The same key again, now spilled: already there.
        assert.strictEqual(yield* store.put(requestOf(empty, { body: spill(dir, empty) })), "AlreadyPresent")
      }))

    it.effect("a null or empty mime type sends no Content-Type: the server's default applies", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn()
        const dir = yield* tempDir
        const a = randomBytes(1000)
        const b = randomBytes(2000)
        const c = randomBytes(12 * MiB)
        yield* store.put(requestOf(a, { contentType: null }))
        yield* store.put(requestOf(b, { contentType: "", body: spill(dir, b) }))
        const { store: small } = yield* storeOn({ partSize: 5 * MiB })
        yield* small.put(requestOf(c, { contentType: null, body: spill(dir, c) }))
        for (const r of log.filter((r) => r.command === "PutObjectCommand")) {
          assert.notProperty(r.headers, "content-type")
        }
        const defaults = new Set<string | undefined>()
        for (const bytes of [a, b, c]) {
          defaults.add((yield* getObject(client, bucket, requestOf(bytes).key)).contentType)
        }
        // Ceph (like AWS) answers binary/octet-stream for objects stored without a Content-Type.
        assert.deepStrictEqual([...defaults], ["binary/octet-stream"])
      }))

    it.effect("a spilled body at or below the part size is one PUT streamed from the file with Content-Length", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn({ partSize: 5 * MiB })
        const dir = yield* tempDir
        for (const size of [100_000, 5 * MiB]) {
          const bytes = randomBytes(size)
          const request = requestOf(bytes, { contentType: "application/pdf", body: spill(dir, bytes) })
          assert.strictEqual(yield* store.put(request), "Uploaded")
          const back = yield* getObject(client, bucket, request.key)
          assert.isTrue(Buffer.from(back.bytes).equals(bytes))
          assert.strictEqual(back.contentType, "application/pdf")
        }
        const puts = log.filter((r) => r.command === "PutObjectCommand")
        assert.deepStrictEqual(puts.map((r) => r.headers["content-length"]), ["100000", String(5 * MiB)])
        puts.forEach((r) => assertNoSdkChecksums(r.headers))
        assert.strictEqual(count(log, "CreateMultipartUploadCommand"), 0)
      }))

    it.effect("an in-memory body above the part size is still one PUT", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn({ partSize: 5 * MiB })
        const bytes = randomBytes(6 * MiB)
        assert.strictEqual(yield* store.put(requestOf(bytes)), "Uploaded")
        assert.strictEqual(count(log, "CreateMultipartUploadCommand"), 0)
        assert.isTrue(Buffer.from((yield* getObject(client, bucket, requestOf(bytes).key)).bytes).equals(bytes))
      }))

    it.effect("a spilled body above the part size goes up in parts, each with its own Content-MD5", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn({ partSize: 5 * MiB, partConcurrency: 2 })
        const dir = yield* tempDir
        const bytes = randomBytes(2 * 5 * MiB + 12_345)
        const request = requestOf(bytes, { contentType: "video/mp4", body: spill(dir, bytes) })
        assert.strictEqual(yield* store.put(request), "Uploaded")
        const parts = log.filter((r) => r.command === "UploadPartCommand")
          .sort((x, y) => Number(x.input["PartNumber"]) - Number(y.input["PartNumber"]))
        assert.deepStrictEqual(parts.map((r) => r.input["PartNumber"]), [1, 2, 3])
        assert.deepStrictEqual(parts.map((r) => r.headers["content-length"]), [String(5 * MiB), String(5 * MiB), "12345"])
        parts.forEach((r, i) => {
          const range = bytes.subarray(i * 5 * MiB, Math.min(bytes.length, (i + 1) * 5 * MiB))
          assert.strictEqual(r.headers["content-md5"], md5Base64(range))
          assert.strictEqual(r.headers["x-amz-content-sha256"], createHash("sha256").update(range).digest("hex"))
          assertNoSdkChecksums(r.headers)
        })
        assert.strictEqual(count(log, "CompleteMultipartUploadCommand"), 1)
        assert.strictEqual(count(log, "PutObjectCommand"), 0)
        const back = yield* getObject(client, bucket, request.key)
        assert.isTrue(Buffer.from(back.bytes).equals(bytes))
        assert.strictEqual(back.contentType, "video/mp4")
        assert.deepStrictEqual(yield* openUploads(client, bucket, request.key), [])
      }))
  })

  describe("integrity", () => {
    it.effect("a corrupted body is rejected by the server and sent again; if it stays corrupted: TransferCorrupted", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn({ corruptAttempts: 3 })
        const dir = yield* tempDir
        const bytes = randomBytes(4096)
        const corrupted = Buffer.from(bytes)
        corrupted[100] = corrupted[100]! ^ 0xff
        // The request claims the digests of the original bytes, but carries corrupted ones.
        for (const body of [{ _tag: "InMemory" as const, bytes: corrupted }, spill(dir, corrupted)]) {
          log.splice(0)
          const e = corruptionOf(yield* Effect.exit(store.put({ ...requestOf(bytes), body })))
          assert.strictEqual(e.attempts, 3)
          assert.match(e.message, /BadDigest|XAmzContentSHA256Mismatch/)
          assert.strictEqual(e.key, requestOf(bytes).key)
          assert.strictEqual(count(log, "PutObjectCommand"), 3, "sent 3 times in all")
        }
        assert.isFalse(yield* exists(client, bucket, requestOf(bytes).key))
      }))

    it.effect("a body corrupted once on the way is sent again from the same bytes and stored", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn({ headBeforePut: "never" })
        const dir = yield* tempDir
        for (const inMemory of [true, false]) {
          const bytes = randomBytes(4096)
          let corruptions = 1
          // The first PUT carries a Content-MD5 that does not match: what the server sees when a byte flipped.
          rewriteHeader(client, "content-md5", (command) =>
            command === "PutObjectCommand" && corruptions-- > 0 ? md5Base64(randomBytes(8)) : undefined)
          log.splice(0)
          const metrics = yield* Metrics.make
          const body = inMemory ? { _tag: "InMemory" as const, bytes } : spill(dir, bytes)
          assert.strictEqual(
            yield* store.put(requestOf(bytes, { body })).pipe(Effect.provideService(Metrics, metrics)),
            "Uploaded"
          )
          assert.strictEqual(count(log, "PutObjectCommand"), 2)
          assert.strictEqual((yield* metrics.snapshot).retries, 1)
          assert.isTrue(Buffer.from((yield* getObject(client, bucket, requestOf(bytes).key)).bytes).equals(bytes))
        }
      }))

    it.effect("a wrong Content-MD5 alone is rejected: BadDigest", () =>
      Effect.gen(function*() {
        const { store, client, bucket } = yield* storeOn()
        const dir = yield* tempDir
        const bytes = randomBytes(4096)
        const wrongMd5 = md5Base64(randomBytes(10))
        for (const body of [{ _tag: "InMemory" as const, bytes }, spill(dir, bytes)]) {
          const e = corruptionOf(yield* Effect.exit(store.put(requestOf(bytes, { body, md5Base64: wrongMd5 }))))
          assert.include(e.message, "BadDigest")
          assert.include(e.message, "Content-MD5")
        }
        assert.isFalse(yield* exists(client, bucket, requestOf(bytes).key))
      }))

    it.effect("the server verifies that the object hashes to its key (x-amz-content-sha256)", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn({ headBeforePut: "never" })
        const dir = yield* tempDir
        const bytes = randomBytes(4096)
        const other = randomBytes(4096)
        // Right bytes and MD5, but the key (SHA-256) of other bytes: must not be stored under that key.
        for (const body of [{ _tag: "InMemory" as const, bytes }, spill(dir, bytes)]) {
          const e = corruptionOf(yield* Effect.exit(store.put({ ...requestOf(bytes, { body }), key: requestOf(other).key })))
          assert.include(e.message, "XAmzContentSHA256Mismatch")
        }
        assert.isFalse(yield* exists(client, bucket, requestOf(other).key))
        log.splice(0)
        yield* store.put(requestOf(bytes))
        assert.strictEqual(log[0]!.headers["x-amz-content-sha256"], requestOf(bytes).key)
      }))

    it.effect("a request without a whole MD5 (its reader digested parts) sent whole: the store computes the Content-MD5", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn({ partSize: 5 * MiB })
        const dir = yield* tempDir
        const inMemory = randomBytes(30_000)
        const spilled = randomBytes(MiB + 17)
        for (const [bytes, body] of [[inMemory, undefined], [spilled, spill(dir, spilled)]] as const) {
          log.splice(0)
          const request = { ...requestOf(bytes, body === undefined ? {} : { body }), md5Base64: undefined }
          assert.strictEqual(yield* store.put(request), "Uploaded")
          const puts = log.filter((r) => r.command === "PutObjectCommand")
          assert.strictEqual(puts.length, 1)
          assert.strictEqual(puts[0]!.headers["content-md5"], md5Base64(bytes))
          assert.isTrue(Buffer.from((yield* getObject(client, bucket, request.key)).bytes).equals(bytes))
        }
      }))

    it.effect("part digests from the reader are sent as they are; digests for another cut are not used", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn({ partSize: 5 * MiB, partConcurrency: 2 })
        const dir = yield* tempDir
        const bytes = randomBytes(2 * 5 * MiB + 4321)
        // the digests of `data` cut into parts of `size` bytes
        const partsOf = (data: Uint8Array, size: number) => {
          const cut = [0, 1, 2].map((i) => data.subarray(i * size, (i + 1) * size)).filter((b) => b.length > 0)
          return { partSize: size, md5Base64: cut.map(md5Base64), sha256Hex: cut.map(sha256Hex) }
        }
        // as the reader makes it: part digests, no whole MD5
        const request = {
          ...requestOf(bytes, { body: { ...spill(dir, bytes), parts: partsOf(bytes, 5 * MiB) } }),
          md5Base64: undefined
        }
        assert.strictEqual(yield* store.put(request), "Uploaded")
        const sent = log.filter((r) => r.command === "UploadPartCommand")
          .sort((x, y) => Number(x.input["PartNumber"]) - Number(y.input["PartNumber"]))
        assert.deepStrictEqual(sent.map((r) => r.headers["content-md5"]), partsOf(bytes, 5 * MiB).md5Base64)
        assert.deepStrictEqual(sent.map((r) => r.headers["x-amz-content-sha256"]), partsOf(bytes, 5 * MiB).sha256Hex)
        assert.isTrue(Buffer.from((yield* getObject(client, bucket, request.key)).bytes).equals(bytes))

        // They really are what goes out: a wrong digest for part 2 is rejected by the server, the upload aborted.
        const other = randomBytes(2 * 5 * MiB + 99)
        const good = partsOf(other, 5 * MiB)
        const wrong = { ...good, md5Base64: [good.md5Base64[0]!, md5Base64(randomBytes(16)), good.md5Base64[2]!] }
        log.splice(0)
        const bad = requestOf(other, { body: { ...spill(dir, other), parts: wrong } })
        const e = corruptionOf(yield* Effect.exit(store.put(bad)))
        assert.include(e.message, "BadDigest")
        assert.strictEqual(count(log, "AbortMultipartUploadCommand"), 1)
        assert.isFalse(yield* exists(client, bucket, bad.key))

        // Digests for another part size (the store cuts 5 MiB parts) are ignored and the store hashes the ranges
        // itself; these are even of other bytes, so the upload would fail if they were used.
        log.splice(0)
        const again = requestOf(other, { body: { ...spill(dir, other), parts: partsOf(bytes, 6 * MiB) } })
        assert.strictEqual(yield* store.put(again), "Uploaded")
        const resent = log.filter((r) => r.command === "UploadPartCommand")
          .sort((x, y) => Number(x.input["PartNumber"]) - Number(y.input["PartNumber"]))
        assert.deepStrictEqual(resent.map((r) => r.headers["content-md5"]), good.md5Base64)
        assert.isTrue(Buffer.from((yield* getObject(client, bucket, again.key)).bytes).equals(other))
      }))

    it.effect("a corrupted part is rejected and the multipart upload aborted", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn({ partSize: 5 * MiB, partConcurrency: 1 })
        const dir = yield* tempDir
        const bytes = randomBytes(11 * MiB)
        const request = requestOf(bytes, { body: spill(dir, bytes) })
        // Part 2 is sent with the MD5 of other bytes, as if the file had changed between hashing and sending.
        rewriteHeader(client, "content-md5", (command, input) =>
          command === "UploadPartCommand" && input["PartNumber"] === 2 ? md5Base64(randomBytes(16)) : undefined)
        const e = corruptionOf(yield* Effect.exit(store.put(request)))
        assert.strictEqual(e.attempts, 3, "the part was sent partAttempts (3) times")
        assert.strictEqual(log.filter((r) => r.command === "UploadPartCommand" && r.input["PartNumber"] === 2).length, 3)
        assert.include(e.message, "BadDigest")
        assert.strictEqual(count(log, "AbortMultipartUploadCommand"), 1)
        assert.deepStrictEqual(yield* openUploads(client, bucket, request.key), [])
        assert.isFalse(yield* exists(client, bucket, request.key))
      }))

    it.effect("a CompleteMultipartUpload body corrupted in transit is sent again: the upload completes", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket } = yield* storeOn({ partSize: 5 * MiB, partConcurrency: 1 })
        const dir = yield* tempDir
        const bytes = randomBytes(11 * MiB)
        const request = requestOf(bytes, { body: spill(dir, bytes) })
        // the first CompleteMultipartUpload arrives with a body that does not hash to its signed SHA-256 (the fault
        // suite flipped a byte of one: XAmzContentSHA256Mismatch, and the run was fatal)
        let completes = 0
        rewriteHeader(client, "x-amz-content-sha256", (command) =>
          command === "CompleteMultipartUploadCommand" && ++completes === 1 ? sha256Hex(randomBytes(16)) : undefined)
        assert.strictEqual(yield* store.put(request), "Uploaded")
        assert.deepStrictEqual(
          log.filter((r) => r.command === "CompleteMultipartUploadCommand").map((r) => r.status),
          [400, 200]
        )
        assert.strictEqual(count(log, "AbortMultipartUploadCommand"), 0)
        assert.isTrue(Buffer.from((yield* getObject(client, bucket, request.key)).bytes).equals(bytes))
      }))

    it.effect("a spilled file whose size differs from the request is refused before any request", () =>
      Effect.gen(function*() {
        const { store, log } = yield* storeOn()
        const dir = yield* tempDir
        const bytes = randomBytes(1000)
        const e = failureOf(yield* Effect.exit(store.put({ ...requestOf(bytes), body: spill(dir, bytes.subarray(0, 999)) })))
        assert.isFalse(e.retryable)
        assert.include(e.message, "has 999 bytes, expected 1000")
        const missing = failureOf(
          yield* Effect.exit(store.put({ ...requestOf(bytes), body: { _tag: "Spilled", path: join(dir, "gone.bin") } }))
        )
        assert.isFalse(missing.retryable)
        assert.include(missing.message, "ENOENT")
        assert.deepStrictEqual(log, [])
      }))
  })

  describe("idempotence", () => {
    it.effect("headBeforePut never: a present object is detected by the conditional PUT (412) and not rewritten", () =>
      Effect.gen(function*() {
        const { store, log } = yield* storeOn({ headBeforePut: "never" })
        const request = requestOf(randomBytes(5000))
        assert.strictEqual(yield* store.put(request), "Uploaded")
        const first = log.splice(0)
        // the store's first put learns once whether the bucket honours conditional PUTs (unversioned: it does)
        assert.deepStrictEqual(first.map((r) => [r.command, r.status]), [["GetBucketVersioningCommand", 200], [
          "PutObjectCommand",
          200
        ]])
        assert.strictEqual(first[1]!.headers["if-none-match"], "*")
        assert.strictEqual(yield* store.put(request), "AlreadyPresent")
        // The conditional PUT was refused (nothing written), the HEAD confirmed the size.
        assert.deepStrictEqual(log.map((r) => [r.command, r.status]), [["PutObjectCommand", 412], [
          "HeadObjectCommand",
          200
        ]])
      }))

    it.effect("headBeforePut always: a present object costs one HEAD and no PUT", () =>
      Effect.gen(function*() {
        const { store, log } = yield* storeOn({ headBeforePut: "always" })
        const dir = yield* tempDir
        const bytes = randomBytes(5000)
        assert.strictEqual(yield* store.put(requestOf(bytes)), "Uploaded")
        assert.deepStrictEqual(log.splice(0).map((r) => [r.command, r.status]), [["HeadObjectCommand", 404], [
          "PutObjectCommand",
          200
        ]])
        assert.strictEqual(yield* store.put(requestOf(bytes, { body: spill(dir, bytes) })), "AlreadyPresent")
        assert.deepStrictEqual(log.map((r) => r.command), ["HeadObjectCommand"])
      }))

    it.effect("a present multipart-sized object costs one HEAD, whatever the mode", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const bytes = randomBytes(6 * MiB)
        const request = requestOf(bytes, { body: spill(dir, bytes) })
        const { store, log } = yield* storeOn({ partSize: 5 * MiB, headBeforePut: "never" })
        assert.strictEqual(yield* store.put(request), "Uploaded")
        assert.strictEqual(count(log, "CreateMultipartUploadCommand"), 1)
        log.splice(0)
        assert.strictEqual(yield* store.put(request), "AlreadyPresent")
        assert.deepStrictEqual(log.map((r) => r.command), ["HeadObjectCommand"])
      }))

    for (const mode of ["never", "always", "resume"] as const) {
      it.effect(`headBeforePut ${mode}: an object of the wrong size under the key is replaced`, () =>
        Effect.gen(function*() {
          const { store, client, bucket } = yield* storeOn({ headBeforePut: mode })
          const bytes = randomBytes(3000)
          const request = requestOf(bytes, { contentType: "text/csv" })
          yield* Effect.promise(() =>
            client.send(new PutObjectCommand({ Bucket: bucket, Key: request.key, Body: randomBytes(10) }))
          )
          assert.strictEqual(yield* store.put(request), "Uploaded")
          const back = yield* getObject(client, bucket, request.key)
          assert.isTrue(Buffer.from(back.bytes).equals(bytes))
          assert.strictEqual(back.contentType, "text/csv")
        }))
    }
  })

  describe("multipart failures leave no incomplete upload", () => {
    const multipart = (partAttempts = 3, partConcurrency = 1) =>
      Effect.gen(function*() {
        const setup = yield* storeOn({ partSize: 5 * MiB, partConcurrency, partAttempts })
        const dir = yield* tempDir
        const bytes = randomBytes(16 * MiB)
        return { ...setup, bytes, request: requestOf(bytes, { body: spill(dir, bytes) }) }
      })

    it.effect("a fatal error in part 2: the upload is aborted and the error says so", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket, request } = yield* multipart()
        injectFaults(client, (command, input) =>
          command === "UploadPartCommand" && input["PartNumber"] === 2 ? serviceError("AccessDenied", 403) : undefined)
        const e = failureOf(yield* Effect.exit(store.put(request)))
        assert.isFalse(e.retryable)
        assert.strictEqual(e.operation, "UploadPart")
        assert.include(e.message, "AccessDenied")
        assert.strictEqual(count(log, "UploadPartCommand"), 1) // part 1 only: no retry of a fatal error
        assert.strictEqual(count(log, "AbortMultipartUploadCommand"), 1)
        assert.deepStrictEqual(yield* openUploads(client, bucket, request.key), [])
        assert.isFalse(yield* exists(client, bucket, request.key))
      }))

    it.effect("with parts in flight together, a fatal error in one interrupts the others and aborts the upload", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket, request } = yield* multipart(3, 4)
        injectFaults(client, (command, input) => {
          if (command !== "UploadPartCommand") return undefined
          // Part 3 fails at once; the others are still on their way.
          return input["PartNumber"] === 3
            ? serviceError("AccessDenied", 403)
            : new Promise((resolve) => setTimeout(resolve, 200).unref())
        })
        const e = failureOf(yield* Effect.exit(store.put(request)))
        assert.isFalse(e.retryable)
        assert.strictEqual(count(log, "AbortMultipartUploadCommand"), 1)
        assert.strictEqual(count(log, "CompleteMultipartUploadCommand"), 0)
        assert.deepStrictEqual(yield* openUploads(client, bucket, request.key), [])
        assert.isFalse(yield* exists(client, bucket, request.key))
      }))

    it.effect("a transient error in a part is retried within the upload, which then completes", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket, bytes, request } = yield* multipart()
        let failures = 0
        injectFaults(client, (command, input) => {
          if (command === "UploadPartCommand" && input["PartNumber"] === 2 && failures < 2) {
            failures += 1
            return serviceError("SlowDown", 503)
          }
          return undefined
        })
        const metrics = yield* Metrics.make
        assert.strictEqual(yield* store.put(request).pipe(Effect.provideService(Metrics, metrics)), "Uploaded")
        assert.strictEqual(failures, 2)
        assert.strictEqual((yield* metrics.snapshot).retries, 2) // part retries are counted when Metrics is there
        assert.strictEqual(count(log, "AbortMultipartUploadCommand"), 0)
        assert.isTrue(Buffer.from((yield* getObject(client, bucket, request.key)).bytes).equals(bytes))
      }))

    it.effect("a transient error that outlasts the part attempts fails retryable, after aborting", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket, request } = yield* multipart(2)
        injectFaults(client, (command, input) =>
          command === "UploadPartCommand" && input["PartNumber"] === 3 ? serviceError("InternalError", 500) : undefined)
        const e = failureOf(yield* Effect.exit(store.put(request)))
        assert.isTrue(e.retryable)
        assert.strictEqual(count(log, "AbortMultipartUploadCommand"), 1)
        assert.deepStrictEqual(yield* openUploads(client, bucket, request.key), [])
      }))

    it.effect("a failing CompleteMultipartUpload aborts the upload", () =>
      Effect.gen(function*() {
        const { store, client, bucket, request } = yield* multipart()
        injectFaults(client, (command) =>
          command === "CompleteMultipartUploadCommand"
            ? Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })
            : undefined)
        const e = failureOf(yield* Effect.exit(store.put(request)))
        assert.isTrue(e.retryable)
        assert.deepStrictEqual(yield* openUploads(client, bucket, request.key), [])
      }))

    it.effect("interrupting the upload mid-way aborts it", () =>
      Effect.gen(function*() {
        const { store, client, log, bucket, request } = yield* multipart()
        const part2Started = yield* Deferred.make<void>()
        injectFaults(client, (command, input) => {
          if (command === "UploadPartCommand" && input["PartNumber"] === 2) {
            Deferred.doneUnsafe(part2Started, Exit.void)
            return new Promise((resolve) => setTimeout(resolve, 30_000).unref())
          }
          return undefined
        })
        const fiber = yield* Effect.forkChild(store.put(request))
        yield* Deferred.await(part2Started)
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(count(log, "AbortMultipartUploadCommand"), 1)
        assert.deepStrictEqual(yield* openUploads(client, bucket, request.key), [])
        assert.isFalse(yield* exists(client, bucket, request.key))
      }))
  })

  describe("the layer", () => {
    it.effect("the client keeps its connection alive, and releasing it closes the socket", () =>
      Effect.gen(function*() {
        const bucket = yield* TestBucket
        const sockets = (agent: { readonly freeSockets: object; readonly sockets: object }) =>
          [...Object.values(agent.freeSockets), ...Object.values(agent.sockets)].flat() as Array<{ destroyed: boolean }>
        const open = yield* Effect.scoped(Effect.gen(function*() {
          const service = yield* S3ClientService.make({ ...bucket.config, maxSockets: 4 })
          const store = yield* S3ObjectStore.make.pipe(
            Effect.provideService(S3ClientService, service),
            Effect.provideService(S3UploadLedger, yield* makeUploadLedger(service.client, bucket.config))
          )
          for (let i = 0; i < 3; i++) yield* store.check
          assert.strictEqual(service.agents.http.maxSockets, 4)
          const open = sockets(service.agents.http)
          assert.strictEqual(open.length, 1) // six sequential requests, one connection
          assert.isFalse(open[0]!.destroyed)
          return open
        }))
        assert.isTrue(open[0]!.destroyed)
      }))

    it.effect("testObjectStoreLayer: a store over its own bucket, emptied (objects, open uploads) and deleted on release", () =>
      Effect.gen(function*() {
        const admin = yield* TestBucket
        const name = yield* Effect.gen(function*() {
          const store = yield* Effect.service(ObjectStore)
          const bucket = yield* TestBucket
          assert.notStrictEqual(bucket.name, admin.name)
          yield* store.check
          for (let i = 0; i < 3; i++) yield* store.put(requestOf(randomBytes(100)))
          yield* Effect.promise(() =>
            bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.name, Key: "left-open" }))
          )
          return bucket.name
        }).pipe(Effect.provide(testObjectStoreLayer({ headBeforePut: "never" })))
        const gone = yield* Effect.flip(Effect.tryPromise({
          try: () => admin.client.send(new HeadBucketCommand({ Bucket: name })),
          catch: (e) => e as { readonly $metadata?: { readonly httpStatusCode?: number } }
        }))
        assert.strictEqual(gone.$metadata?.httpStatusCode, 404)
      }))

    it.effect("S3ObjectStore.layer gives a working ObjectStore", () =>
      Effect.gen(function*() {
        const bucket = yield* TestBucket
        const bytes = randomBytes(777)
        const key = createHash("sha256").update(bytes).digest("hex")
        yield* Effect.gen(function*() {
          const store = yield* Effect.service(ObjectStore)
          yield* store.check
          assert.strictEqual(yield* store.put(requestOf(bytes)), "Uploaded")
          assert.deepStrictEqual(
            yield* store.head(requestOf(bytes).key),
            Option.some({ size: 777, contentType: "application/octet-stream" })
          )
        }).pipe(Effect.provide(S3ObjectStore.layer(bucket.config)))
        assert.isTrue(yield* exists(bucket.client, bucket.name, key))
      }))
  })
})

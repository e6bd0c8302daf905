/**
 * `memoizePerBucket` (S3BucketMemo.ts): the store's client resolves a request's endpoint once per bucket and command
 * class, and builds its SigV4 signer once per auth scheme, instead of once per request; requests still go to their
 * own bucket and key. Against a local HTTP server that records what arrives, and against the real gateway, which
 * checks every signature.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  CreateBucketCommand
} from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Redacted } from "effect"
import { createHash } from "node:crypto"
import { defaultS3StoreConfig, S3ClientService, sendS3 } from "../src/index.ts"
import { memoizableInstructions } from "../src/S3BucketMemo.ts"
import { emptyAndDeleteBucket, s3TestConfig, uniqueBucketName } from "../src/testing.ts"
import { localHttpServer } from "./support.ts"

/** A server answering 200 to everything, recording each request's method and path. */
const recordingServer = Effect.suspend(() => {
  const arrived: Array<string> = []
  return localHttpServer((req, res) => {
    arrived.push(`${req.method} ${req.url}`)
    req.resume()
    req.on("end", () => {
      res.writeHead(200, { etag: "\"0\"", "content-length": "0" })
      res.end()
    })
  }).pipe(Effect.map(({ port }) => ({ port, arrived })))
})

/**
 * Counts the endpoint resolutions (`config.endpointProvider`, called once per resolution by the SDK's
 * `getEndpointFromInstructions`) and the signers built (`config.signerConstructor`) of `client`.
 */
const counting = (client: S3Client) => {
  const config = client.config as unknown as {
    endpointProvider: (...args: Array<unknown>) => unknown
    signerConstructor: new(...args: Array<unknown>) => unknown
  }
  const counts = { endpoints: 0, signers: 0 }
  const provider = config.endpointProvider
  config.endpointProvider = (...args) => {
    counts.endpoints += 1
    return provider(...args)
  }
  const Signer = config.signerConstructor
  config.signerConstructor = function(...args: Array<unknown>) {
    counts.signers += 1
    return new Signer(...args)
  } as unknown as typeof Signer
  return counts
}

const bodyOf = (i: number) => new TextEncoder().encode(`object ${i} `.repeat(i + 1))
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")
const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("base64")

const put = (client: S3Client, bucket: string, i: number) => {
  const body = bodyOf(i)
  const key = sha256(body)
  return Effect.promise((signal) =>
    sendS3(
      client,
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.byteLength, ContentMD5: md5(body) }),
      { abortSignal: signal, payloadSha256: key }
    )
  ).pipe(Effect.as(key))
}

const clientFor = (endpoint: string, accessKeyId: string, secretAccessKey: string) =>
  S3ClientService.make({
    ...defaultS3StoreConfig,
    bucket: "unused",
    endpoint,
    accessKeyId: Redacted.make(accessKeyId),
    secretAccessKey: Redacted.make(secretAccessKey),
    maxSockets: 8
  }).pipe(Effect.map(({ client }) => client))

describe("memoizableInstructions", () => {
  it("holds for commands whose endpoint reads only Bucket and Key of their input", () => {
    for (const command of [PutObjectCommand, HeadObjectCommand, GetObjectCommand]) {
      assert.isTrue(memoizableInstructions(command.getEndpointParameterInstructions()), command.name)
    }
  })

  it("does not hold for a command whose endpoint reads more of its input", () => {
    assert.isFalse(memoizableInstructions(ListObjectsV2Command.getEndpointParameterInstructions()), "Prefix")
    assert.isFalse(memoizableInstructions({ Bucket: { type: "contextParams", name: "Bucket" }, Keys: { type: "operationContextParams" } }))
    assert.isFalse(memoizableInstructions({ CopySource: { type: "contextParams", name: "CopySource" } }))
  })
})

describe("the store client's memo per bucket", () => {
  it.effect("resolves the endpoint once per bucket and builds a signer per bucket, each request at its own bucket and key", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* recordingServer
      const client = yield* clientFor(`http://127.0.0.1:${server.port}`, "FAKEACCESSKEY", "fake-secret-key-0123456789")
      const counts = counting(client)
      const keys = yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => put(client, i % 2 === 0 ? "first" : "second", i),
        { concurrency: 8 }
      )
      assert.strictEqual(counts.endpoints, 2, "one resolution per bucket")
      // a signer per auth scheme object: at most one per bucket, not one per request
      assert.isAtLeast(counts.signers, 1)
      assert.isAtMost(counts.signers, 2)
      const puts = server.arrived.filter((a) => a.startsWith("PUT "))
      assert.strictEqual(puts.length, 30)
      keys.forEach((key, i) => {
        const path = `PUT /${i % 2 === 0 ? "first" : "second"}/${key}`
        assert.isTrue(puts.some((p) => p === path || p.startsWith(`${path}?`)), `object ${i}: ${path}`)
      })
      // a command whose endpoint reads more of its input (the prefix) is resolved every time, as the SDK does
      for (const prefix of ["a", "b"]) {
        yield* Effect.promise((signal) =>
          sendS3(client, new ListObjectsV2Command({ Bucket: "first", Prefix: prefix }), { abortSignal: signal })
        ).pipe(Effect.ignore)
      }
      assert.strictEqual(counts.endpoints, 4)
      const lists = server.arrived.filter((a) => a.startsWith("GET "))
      assert.deepStrictEqual(lists.map((a) => a.split("?")[0]), ["GET /first/", "GET /first/"])
      assert.include(lists[0], "prefix=a")
      assert.include(lists[1], "prefix=b")
    })))

  it.effect("on the real gateway: one client writes to two buckets, every signature accepted, every object in its own bucket", () =>
    Effect.scoped(Effect.gen(function*() {
      const base = yield* Effect.try({ try: () => s3TestConfig(), catch: (e) => e as Error }).pipe(Effect.orDie)
      const client = yield* clientFor(
        base.endpoint!,
        Redacted.value(base.accessKeyId!),
        Redacted.value(base.secretAccessKey!)
      )
      const now = yield* Clock.currentTimeMillis
      const buckets = [uniqueBucketName(now, "lo-migrate-memo-a"), uniqueBucketName(now, "lo-migrate-memo-b")]
      for (const bucket of buckets) {
        yield* Effect.acquireRelease(
          Effect.promise((signal) => sendS3(client, new CreateBucketCommand({ Bucket: bucket }), { abortSignal: signal })),
          () => emptyAndDeleteBucket(client, bucket).pipe(Effect.ignore)
        )
      }
      const counts = counting(client)
      const keys = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => put(client, buckets[i % 2]!, i),
        { concurrency: 8 }
      )
      for (let i = 0; i < keys.length; i++) {
        const [own, other] = i % 2 === 0 ? buckets : [buckets[1]!, buckets[0]!]
        const got = yield* Effect.promise((signal) =>
          sendS3(client, new GetObjectCommand({ Bucket: own!, Key: keys[i]! }), { abortSignal: signal })
            .then((r) => r.Body!.transformToByteArray())
        )
        assert.strictEqual(sha256(got), keys[i], `object ${i} in ${own}`)
        const elsewhere = yield* Effect.promise((signal) =>
          sendS3(client, new HeadObjectCommand({ Bucket: other!, Key: keys[i]! }), { abortSignal: signal })
            .then(() => "found", (e: { name?: string }) => e.name ?? "error")
        )
        assert.strictEqual(elsewhere, "NotFound", `object ${i} not in ${other}`)
      }
      // PutObject, GetObject and HeadObject: one resolution per bucket each
      assert.strictEqual(counts.endpoints, 2 + 2 + 2)
      assert.isAtMost(counts.signers, 6, "a signer per bucket and command at most, not one per request (60)")
    })))
})

/**
 * `sendS3` (S3Send.ts): requests of a prepared client go through one cached middleware chain per command class, and
 * still carry their own payload hash, Content-Type rule and abort signal; a client that was not prepared gets the same
 * requests the slower way. Against a local HTTP server that records what arrives (the real gateway's checks of the
 * signed payload hash run in store.test.ts).
 */
import { HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { createHash } from "node:crypto"
import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"
import { defaultS3StoreConfig, isPrepared, S3ClientService, sendS3 } from "../src/index.ts"

interface Arrived {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
}

/** A server that records every request; `hold` keeps a request unanswered until the connection closes. */
const recordingServer = (hold: (url: string) => boolean = () => false) =>
  Effect.acquireRelease(
    Effect.callback<{ server: ReturnType<typeof createServer>; arrived: Array<Arrived>; closed: Array<string> }>((resume) => {
      const arrived: Array<Arrived> = []
      const closed: Array<string> = []
      const server = createServer((req, res) => {
        arrived.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers })
        req.resume()
        if (hold(req.url ?? "")) {
          req.socket.once("close", () => closed.push(req.url ?? ""))
          return
        }
        req.on("end", () => {
          res.writeHead(200, { etag: "\"0\"", "content-length": "0" })
          res.end()
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, arrived, closed })))
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ arrived, closed, server }) => ({ port: (server.address() as AddressInfo).port, arrived, closed })))

const storeClient = (port: number) =>
  S3ClientService.make({
    ...defaultS3StoreConfig,
    bucket: "blobs",
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: Redacted.make("FAKEACCESSKEY"),
    secretAccessKey: Redacted.make("fake-secret-key-0123456789"),
    maxSockets: 8
  }).pipe(Effect.map(({ client }) => client))

const bodyOf = (i: number) => new TextEncoder().encode(`object ${i} `.repeat(i + 1))
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")
const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("base64")

/** PutObjects of distinct bodies, `inFlight` at a time, each with its own payload hash; half without a Content-Type. */
const putMany = (client: S3Client, count: number) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) => {
    const body = bodyOf(i)
    const key = sha256(body)
    return Effect.promise((signal) =>
      sendS3(
        client,
        new PutObjectCommand({
          Bucket: "blobs",
          Key: key,
          Body: body,
          ContentLength: body.byteLength,
          ContentMD5: md5(body),
          ...(i % 2 === 0 ? { ContentType: "image/png" } : {})
        }),
        { abortSignal: signal, payloadSha256: key, noDefaultContentType: i % 2 === 1 }
      )
    )
  }, { concurrency: 16, discard: true })

/** Every PUT arrived with its own key's hash as its payload hash, and a Content-Type exactly where one was given. */
const assertOwnHeaders = (arrived: ReadonlyArray<Arrived>, count: number) => {
  const puts = arrived.filter((a) => a.method === "PUT")
  assert.strictEqual(puts.length, count)
  for (let i = 0; i < count; i++) {
    const key = sha256(bodyOf(i))
    const put = puts.find((p) => p.url.startsWith(`/blobs/${key}`))
    assert.isDefined(put, `PUT of object ${i}`)
    assert.strictEqual(put!.headers["x-amz-content-sha256"], key, `payload hash of object ${i}`)
    assert.strictEqual(put!.headers["content-type"], i % 2 === 0 ? "image/png" : undefined, `Content-Type of object ${i}`)
    assert.include(String(put!.headers["authorization"]), "x-amz-content-sha256", "the payload hash is signed")
  }
}

/** Counts how often the SDK resolves a PutObject middleware chain while `effect` runs. */
const countingResolutions = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const proto = PutObjectCommand.prototype as unknown as { resolveMiddleware: (...args: Array<unknown>) => unknown }
      const original = proto.resolveMiddleware
      const counter = { count: 0, restore: () => void (proto.resolveMiddleware = original) }
      proto.resolveMiddleware = function(this: unknown, ...args: Array<unknown>) {
        counter.count += 1
        return original.apply(this, args)
      }
      return counter
    }),
    (counter) => Effect.map(effect, () => counter.count),
    (counter) => Effect.sync(counter.restore)
  )

describe("sendS3", () => {
  it.effect("a prepared client resolves the PutObject chain once, and each request keeps its own headers", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* recordingServer()
      const client = yield* storeClient(server.port)
      assert.isTrue(isPrepared(client))
      const resolutions = yield* countingResolutions(putMany(client, 40))
      assert.strictEqual(resolutions, 1)
      assertOwnHeaders(server.arrived, 40)
    })))

  it.effect("the abort signal reaches the request on the cached chain: the connection is closed at once", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* recordingServer((url) => url.includes("stalled"))
      const client = yield* storeClient(server.port)
      yield* putMany(client, 2) // the chain is cached before the aborted request
      const controller = new AbortController()
      const sent = sendS3(client, new HeadObjectCommand({ Bucket: "blobs", Key: "stalled" }), { abortSignal: controller.signal })
      const outcome = sent.then(() => "answered", (error: unknown) => String((error as Error).name))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 100)))
      controller.abort()
      assert.strictEqual(yield* Effect.promise(() => outcome), "AbortError")
      // the server sees the socket go (not left open until a timeout)
      for (let i = 0; i < 100 && server.closed.length === 0; i++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      }
      assert.deepStrictEqual(server.closed, ["/blobs/stalled"])
    })))

  it.effect("middleware added after requests were sent runs on the next request", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* recordingServer()
      const client = yield* storeClient(server.port)
      yield* putMany(client, 3)
      client.middlewareStack.add(
        (next) => (args) => {
          ;(args.request as { headers: Record<string, string> }).headers["x-test-added"] = "yes"
          return next(args)
        },
        { step: "build", name: "testAdded" }
      )
      yield* putMany(client, 1)
      const last = server.arrived.at(-1)!
      assert.strictEqual(last.headers["x-test-added"], "yes")
    })))

  it.effect("a client that was not prepared sends the same headers and honours the abort signal", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* recordingServer((url) => url.includes("stalled"))
      const client = yield* Effect.acquireRelease(
        Effect.sync(() =>
          new S3Client({
            endpoint: `http://127.0.0.1:${server.port}`,
            region: "us-east-1",
            forcePathStyle: true,
            credentials: { accessKeyId: "FAKEACCESSKEY", secretAccessKey: "fake-secret-key-0123456789" },
            requestChecksumCalculation: "WHEN_REQUIRED",
            maxAttempts: 1
          })
        ),
        (c) => Effect.sync(() => c.destroy())
      )
      assert.isFalse(isPrepared(client))
      yield* putMany(client, 6)
      assertOwnHeaders(server.arrived, 6)
      const controller = new AbortController()
      const outcome = sendS3(client, new HeadObjectCommand({ Bucket: "blobs", Key: "stalled" }), {
        abortSignal: controller.signal
      }).then(() => "answered", (error: unknown) => String((error as Error).name))
      controller.abort()
      assert.strictEqual(yield* Effect.promise(() => outcome), "AbortError")
    })))
})

/**
 * Failures a real S3 server rarely shows on demand, produced by tiny local servers and sent through the real SDK
 * stack: throttling and server errors, connections dropped mid-request, a server that stops answering.
 */
import { S3Client } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import type { StorageError } from "@lo-migrate/core"
import { Metrics, ObjectStore, retryInfrastructure } from "@lo-migrate/core"
import { Effect, Exit, Option, Redacted } from "effect"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net"
import { defaultS3StoreConfig, droppedMiddleware, S3ClientService, S3ObjectStore, type S3StoreConfig } from "../src/index.ts"
import { requestOf } from "./support.ts"

const secret = "fake-secret-key-0123456789abcdefghijklmnop"

const configFor = (port: number, overrides: Partial<S3StoreConfig> = {}): S3StoreConfig => ({
  ...defaultS3StoreConfig,
  bucket: "blobs",
  endpoint: `http://127.0.0.1:${port}`,
  accessKeyId: Redacted.make("FAKEACCESSKEY"),
  secretAccessKey: Redacted.make(secret),
  headBeforePut: "never",
  ...overrides
})

/**
 * An HTTP server on a free loopback port, closed with the scope. It answers GetBucketVersioning as an unversioned
 * bucket (the store asks once, before its first conditional PUT: S3ConditionalPut.ts); `handler` gets every other
 * request.
 */
const httpServer = (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.callback<ReturnType<typeof createServer>>((resume) => {
      const server = createServer((req, res) => {
        if (req.method !== "GET" || !/[?&]versioning(=|&|$)/.test(req.url ?? "")) return handler(req, res)
        req.resume()
        res.writeHead(200, { "content-type": "application/xml" })
        res.end(`<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`)
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  ).pipe(Effect.map((server) => (server.address() as AddressInfo).port))

/** A TCP server that does `onSocket` to every connection, closed with the scope. */
const tcpServer = (onSocket: (socket: Socket) => void) =>
  Effect.acquireRelease(
    Effect.callback<{ server: ReturnType<typeof createTcpServer>; sockets: Set<Socket> }>((resume) => {
      const sockets = new Set<Socket>()
      const server = createTcpServer((socket) => {
        sockets.add(socket)
        socket.on("error", () => {})
        onSocket(socket)
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets })))
    }),
    ({ server, sockets }) => Effect.callback<void>((resume) => {
      for (const s of sockets) s.destroy()
      server.close(() => resume(Effect.void))
    })
  ).pipe(Effect.map(({ server }) => (server.address() as AddressInfo).port))

const s3Error = (status: number, code: string, message: string) => (req: IncomingMessage, res: ServerResponse) => {
  req.resume()
  req.on("end", () => {
    res.writeHead(status, { "content-type": "application/xml", "x-amz-request-id": "req-42" })
    res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message>` +
      `<RequestId>req-42</RequestId></Error>`)
  })
}

const putFailure = (config: S3StoreConfig) =>
  Effect.gen(function*() {
    const store = yield* Effect.service(ObjectStore)
    const exit = yield* Effect.exit(store.put(requestOf(new TextEncoder().encode("hello"))))
    assert.isTrue(Exit.isFailure(exit))
    const error = Exit.isFailure(exit) ? Exit.findErrorOption(exit) : Option.none<StorageError>()
    assert.isTrue(Option.isSome(error))
    const e = Option.getOrThrow(error)
    if (e._tag !== "StorageError") throw new Error(`expected a StorageError, got ${e.message}`)
    assert.notInclude(e.message, secret)
    return e
  }).pipe(Effect.provide(S3ObjectStore.layer(config)))

describe("S3ObjectStore against misbehaving servers", () => {
  it.effect("503 SlowDown is retryable, with the code, status, message and request id in the error", () =>
    Effect.gen(function*() {
      const port = yield* httpServer(s3Error(503, "SlowDown", "Please reduce your request rate."))
      const e = yield* putFailure(configFor(port))
      assert.isTrue(e.retryable)
      assert.include(e.message, "SlowDown (HTTP 503)")
      assert.include(e.message, "Please reduce your request rate.")
      assert.include(e.message, "req-42")
      assert.strictEqual(e.operation, "PutObject")
    }))

  it.effect("500 InternalError is retryable", () =>
    Effect.gen(function*() {
      const port = yield* httpServer(s3Error(500, "InternalError", "We encountered an internal error."))
      assert.isTrue((yield* putFailure(configFor(port))).retryable)
    }))

  it.effect("the SDK does not retry by itself: one request per put", () =>
    Effect.gen(function*() {
      let requests = 0
      const port = yield* httpServer((req, res) => {
        requests += 1
        s3Error(503, "SlowDown", "slow down")(req, res)
      })
      yield* putFailure(configFor(port))
      assert.strictEqual(requests, 1)
    }))

  it.effect("the client's stack keeps signing and serde, without the middleware that does nothing for this store", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client } = yield* S3ClientService.make(configFor(1))
      const stack = client.middlewareStack.identify().join("\n")
      for (const kept of ["awsAuthMiddleware", "serializerMiddleware", "deserializerMiddleware", "contentLengthMiddleware"]) {
        assert.include(stack, kept)
      }
      assert.include(droppedMiddleware, "loggerMiddleware")
      for (const dropped of droppedMiddleware) assert.notInclude(stack, dropped)
      // each dropped name is one the SDK's stack has (a name it no longer uses would remove nothing); some are placed
      // relative to command middleware, so `identify` does not list them, but `remove` finds them
      const sdk = new S3Client({ region: "us-east-1" })
      for (const dropped of droppedMiddleware) assert.isTrue(sdk.middlewareStack.remove(dropped), dropped)
      sdk.destroy()
      // ...and the store's client has none of them left (remove finds nothing)
      for (const dropped of droppedMiddleware) assert.isFalse(client.middlewareStack.remove(dropped), dropped)
      // the pass-through that stands in for the retry middleware (maxAttempts 1) keeps the signer's place
      assert.include(stack, "retryMiddleware - finalizeRequest")
    })))

  it.effect("403 AccessDenied is fatal", () =>
    Effect.gen(function*() {
      const port = yield* httpServer(s3Error(403, "AccessDenied", "Access Denied"))
      const e = yield* putFailure(configFor(port))
      assert.isFalse(e.retryable)
      assert.include(e.message, "AccessDenied (HTTP 403)")
    }))

  it.effect("a connection dropped before any answer (socket hang up) is retryable", () =>
    Effect.gen(function*() {
      const port = yield* tcpServer((socket) => socket.once("data", () => socket.destroy()))
      const e = yield* putFailure(configFor(port))
      assert.isTrue(e.retryable, e.message)
      assert.match(e.message, /ECONNRESET|socket hang up/)
    }))

  it.effect("a server that stops answering makes the request time out, retryable", () =>
    Effect.gen(function*() {
      const port = yield* tcpServer(() => {}) // accepts, reads nothing, answers nothing
      const e = yield* putFailure(configFor(port, { socketTimeoutMs: 300 }))
      assert.isTrue(e.retryable, e.message)
      assert.include(e.message, "TimeoutError")
    }))

  it.live("a stalled request is aborted after the idle timeout and retried on a fresh connection, which succeeds", () =>
    Effect.gen(function*() {
      // The first request on the first connection gets no answer at all; every later one is answered 200.
      const sockets = new Set<unknown>()
      const answeredOn: Array<unknown> = []
      let stalled = false
      const port = yield* httpServer((req, res) => {
        sockets.add(req.socket)
        req.resume()
        if (!stalled) {
          stalled = true
          return
        }
        req.on("end", () => {
          answeredOn.push(req.socket)
          res.writeHead(200, { etag: "\"x\"" })
          res.end()
        })
      })
      const metrics = yield* Metrics.make
      const started = Date.now()
      const outcome = yield* Effect.gen(function*() {
        const store = yield* Effect.service(ObjectStore)
        return yield* store.put(requestOf(new TextEncoder().encode("hello"))).pipe(
          Effect.catchTag("TransferCorrupted", Effect.die),
          retryInfrastructure("put", { budget: "10 seconds", base: "10 millis", cap: "50 millis" })
        )
      }).pipe(
        Effect.provide(S3ObjectStore.layer(configFor(port, { socketTimeoutMs: 300 }))),
        Effect.provideService(Metrics, metrics)
      )
      const took = Date.now() - started
      assert.strictEqual(outcome, "Uploaded")
      assert.strictEqual((yield* metrics.snapshot).retries, 1)
      assert.strictEqual(sockets.size, 2, "the retry went out on a new connection")
      assert.strictEqual(answeredOn.length, 1)
      assert.isBelow(took, 5000, `took ${took} ms: the stall cost the idle timeout, not the 120 s socket default`)
    }))

  it.effect("a refused connection is retryable; an unresolvable host is fatal", () =>
    Effect.gen(function*() {
      const refused = yield* putFailure(configFor(1))
      assert.isTrue(refused.retryable)
      assert.include(refused.message, "ECONNREFUSED")
      const unknown = yield* putFailure({ ...configFor(80), endpoint: "http://s3.invalid" })
      assert.isFalse(unknown.retryable, unknown.message)
      assert.include(unknown.message, "does not resolve")
    }))
})

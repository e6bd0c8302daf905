/**
 * The proxy itself, in front of a small loopback HTTP server that answers every request with the SHA-256 and length of
 * the body it received (and a TCP echo for the "tcp" protocol): each fault does what it says, and only to the
 * requests it should.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { createHash } from "node:crypto"
import { Agent, request } from "node:http"
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from "node:net"
import { FaultProxy, flipByte, httpError, latency, passThrough, reset, stall } from "../src/index.ts"
import { hashingTarget } from "./hashingTarget.ts"

/** The target: answers `<sha256 of the body> <length>` (hashingTarget.ts). */
const target = hashingTarget

interface Reply {
  readonly status: number
  readonly body: string
  readonly millis: number
}

/** One request through `agent` (keep-alive: requests share connections); fails with the socket error or timeout. */
const send = (agent: Agent, port: number, method: string, body?: Buffer, timeoutMs = 5_000) =>
  Effect.callback<Reply, Error>((resume) => {
    const started = Date.now()
    const req = request(
      { host: "127.0.0.1", port, method, path: "/bucket/key", agent, timeout: timeoutMs, headers: body ? { "content-length": body.length } : {} },
      (res) => {
        let text = ""
        res.on("data", (d: Buffer) => void (text += d.toString()))
        res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body: text, millis: Date.now() - started })))
      }
    )
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end(body)
  })

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex")
const body = Buffer.alloc(256 * 1024, 7)

const withProxy = <A, E>(f: (proxy: FaultProxy["Service"], agent: Agent) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const { port } = yield* target
    const proxy = yield* FaultProxy.make({ targetPort: port, maxStallMillis: 5_000 })
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() => new Agent({ keepAlive: true, maxSockets: 1 })),
      (a) => Effect.sync(() => a.destroy())
    )
    return yield* f(proxy, agent)
  }).pipe(Effect.scoped)

describe("FaultProxy", () => {
  it.live("passes requests and bodies through unchanged, on 127.0.0.1", () =>
    withProxy((proxy, agent) =>
      Effect.gen(function*() {
        assert.strictEqual(proxy.url, `http://127.0.0.1:${proxy.port}`)
        for (let i = 0; i < 3; i++) {
          const r = yield* send(agent, proxy.port, "PUT", body)
          assert.deepStrictEqual([r.status, r.body], [200, `${sha256(body)} ${body.length}`])
        }
        const stats = yield* proxy.stats
        assert.strictEqual(stats.requests, 3)
        assert.strictEqual(stats.multipartUploads, 0)
        assert.strictEqual(stats.connections, 1, "keep-alive: one connection for the three requests")
      })))

  it.live("refuses a target that is not a loopback address", () =>
    Effect.gen(function*() {
      const error = yield* FaultProxy.make({ targetPort: 80, targetHost: "10.0.0.1" }).pipe(Effect.flip, Effect.scoped)
      assert.include(error.message, "not a loopback address")
    }))

  it.live("503 SlowDown for every request, as S3 XML, body read and the connection kept; then passes again", () =>
    withProxy((proxy, agent) =>
      Effect.gen(function*() {
        yield* proxy.setFault(httpError(503, 1))
        const put = yield* send(agent, proxy.port, "PUT", body)
        assert.strictEqual(put.status, 503)
        assert.include(put.body, "<Code>SlowDown</Code>")
        const head = yield* send(agent, proxy.port, "HEAD")
        assert.deepStrictEqual([head.status, head.body], [503, ""], "a HEAD answer has no body")
        yield* proxy.setFault(passThrough)
        const ok = yield* send(agent, proxy.port, "PUT", body)
        assert.strictEqual(ok.status, 200)
        const stats = yield* proxy.stats
        assert.strictEqual(stats.answered, 2)
        assert.strictEqual(stats.connections, 1)
      })))

  it.live("500 for a fraction of the requests: exactly that fraction answered, evenly spread, the others forwarded", () =>
    withProxy((proxy, agent) =>
      Effect.gen(function*() {
        yield* proxy.setFault(httpError(500, 0.5))
        const statuses: Array<number> = []
        for (let i = 0; i < 40; i++) statuses.push((yield* send(agent, proxy.port, "PUT", body.subarray(0, 1000))).status)
        // exactly half, evenly spread: never two answered in a row
        assert.strictEqual(statuses.filter((s) => s === 500).length, 20)
        assert.strictEqual(statuses.filter((s) => s === 200).length, 20)
        assert.isFalse(statuses.some((s, i) => s === 500 && statuses[i + 1] === 500))
      })))

  it.live("flips one byte of the next request body only; with `every`, of every n-th body", () =>
    withProxy((proxy, agent) =>
      Effect.gen(function*() {
        yield* proxy.setFault(flipByte(1))
        yield* send(agent, proxy.port, "GET") // no body: not counted
        const flipped = yield* send(agent, proxy.port, "PUT", body)
        const copy = Buffer.from(body)
        copy[body.length / 2] = copy[body.length / 2]! ^ 1
        assert.strictEqual(flipped.body, `${sha256(copy)} ${body.length}`)
        const next = yield* send(agent, proxy.port, "PUT", body)
        assert.strictEqual(next.body, `${sha256(body)} ${body.length}`)
        assert.strictEqual((yield* proxy.stats).flipped, 1)
        // every 2nd body, twice: bodies 2 and 4 flipped, 1, 3 and 5 intact
        yield* proxy.setFault(flipByte(2, 2))
        const results: Array<boolean> = []
        for (let i = 0; i < 5; i++) {
          results.push((yield* send(agent, proxy.port, "PUT", body)).body === `${sha256(body)} ${body.length}`)
        }
        assert.deepStrictEqual(results, [true, false, true, false, true])
      })))

  it.live("resets the connection of a request", () =>
    withProxy((proxy, agent) =>
      Effect.gen(function*() {
        yield* proxy.setFault(reset(1))
        const error = yield* send(agent, proxy.port, "PUT", body).pipe(Effect.flip)
        assert.match(error.message, /ECONNRESET|socket hang up/)
      })))

  it.live("adds latency to each request", () =>
    withProxy((proxy, agent) =>
      Effect.gen(function*() {
        yield* proxy.setFault(latency(150))
        const r = yield* send(agent, proxy.port, "GET")
        assert.strictEqual(r.status, 200)
        assert.isAtLeast(r.millis, 290, "150 ms each way")
      })))

  it.live("stalls the next request (no answer, socket open) until the client gives up; the next one passes", () =>
    withProxy((proxy, agent) =>
      Effect.gen(function*() {
        yield* proxy.setFault(stall(1))
        const started = Date.now()
        const error = yield* send(agent, proxy.port, "PUT", body, 500).pipe(Effect.flip)
        assert.strictEqual(error.message, "timeout")
        assert.isAtLeast(Date.now() - started, 450)
        const r = yield* send(agent, proxy.port, "PUT", body)
        assert.strictEqual(r.status, 200)
        assert.strictEqual((yield* proxy.stats).stalled, 1)
      })))

  it.live("down refuses connections, up listens again on the same port; refuseFor does both", () =>
    withProxy((proxy, agent) =>
      Effect.gen(function*() {
        yield* send(agent, proxy.port, "GET")
        yield* proxy.down
        // a fresh connection (the keep-alive one was cut)
        const refused = yield* send(new Agent(), proxy.port, "GET").pipe(Effect.flip)
        assert.match(refused.message, /ECONNREFUSED/)
        yield* proxy.up
        assert.strictEqual((yield* send(agent, proxy.port, "GET")).status, 200)
        const started = Date.now()
        yield* proxy.refuseFor(Duration.millis(300))
        assert.isAtLeast(Date.now() - started, 300)
        assert.strictEqual((yield* send(agent, proxy.port, "GET")).status, 200)
      })))

  it.live("kills every open connection; tcp mode forwards bytes as they are", () =>
    Effect.gen(function*() {
      const proxy = yield* tcpEchoProxy(5_000)
      const socket = connect(proxy.port, "127.0.0.1")
      assert.strictEqual(yield* echoOf(socket, "GET / HTTP/1.1\r\n\r\n"), "GET / HTTP/1.1\r\n\r\n")
      const closed = Effect.callback<void>((resume) => void socket.once("close", () => resume(Effect.void)))
      assert.strictEqual(yield* proxy.killConnections, 1)
      yield* closed.pipe(Effect.timeout("2 seconds"))
    }).pipe(Effect.scoped))

  it.live("stallConnections freezes the open connections (tcp): nothing arrives, the socket stays open; new ones pass", () =>
    Effect.gen(function*() {
      const proxy = yield* tcpEchoProxy(1_500)
      const old = connect(proxy.port, "127.0.0.1")
      assert.strictEqual(yield* echoOf(old, "before"), "before")
      let closed = false
      old.once("close", () => void (closed = true))
      assert.strictEqual(yield* proxy.stallConnections, 1)
      const frozen = yield* echoOf(old, "during").pipe(Effect.timeoutOption("500 millis"))
      assert.isTrue(frozen._tag === "None", "nothing came back on the frozen connection")
      assert.isFalse(closed, "the frozen connection is still open (no reset, no FIN)")
      const fresh = connect(proxy.port, "127.0.0.1")
      assert.strictEqual(yield* echoOf(fresh, "after"), "after")
      fresh.destroy()
      assert.strictEqual((yield* proxy.stats).stalled, 1)
      // bounded: the frozen connection is destroyed after maxStallMillis
      yield* Effect.sleep("1200 millis")
      assert.isTrue(closed, "destroyed after maxStallMillis")
    }).pipe(Effect.scoped))
})

/** A TCP echo server, and the proxy in "tcp" mode in front of it. */
const tcpEchoProxy = (maxStallMillis: number) =>
  Effect.gen(function*() {
    const echo = yield* Effect.acquireRelease(
      Effect.callback<ReturnType<typeof createTcpServer>>((resume) => {
        const server = createTcpServer((s) => s.pipe(s))
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (s) => Effect.callback<void>((r) => void s.close(() => r(Effect.void)))
    )
    return yield* FaultProxy.make({ targetPort: (echo.address() as AddressInfo).port, protocol: "tcp", maxStallMillis })
  })

/** Writes `text` and resolves with the first chunk that comes back. */
const echoOf = (socket: Socket, text: string) =>
  Effect.callback<string>((resume) => {
    const onData = (d: Buffer) => resume(Effect.succeed(d.toString()))
    socket.once("data", onData)
    socket.write(text)
    return Effect.sync(() => void socket.off("data", onData))
  })

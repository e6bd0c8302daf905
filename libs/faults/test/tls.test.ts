/**
 * The proxy's TLS front (`tls` option, certificates from `makeTestCertificates`), in front of a loopback HTTP server
 * that answers with the SHA-256 and length of the body it received: https in, plain HTTP out; the per-request faults
 * act inside the TLS session; a client that does not trust the certificate never reaches the target; the temp
 * directory of the certificates is gone when the scope closes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { Agent, request } from "node:https"
import { FaultProxy, flipByte, makeTestCertificates, reset, stall } from "../src/index.ts"
import { hashingTarget } from "./hashingTarget.ts"

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex")
const body = Buffer.alloc(64 * 1024, 3)

/** The target: answers `<sha256 of the body> <length>` (hashingTarget.ts). */
const target = hashingTarget

/** One https PUT through `agent`; fails with the socket or certificate error, or after `timeoutMs` without progress. */
const put = (agent: Agent, port: number, timeoutMs = 5_000) =>
  Effect.callback<{ status: number; body: string }, Error>((resume) => {
    const req = request(
      { host: "127.0.0.1", port, method: "PUT", path: "/bucket/key", agent, timeout: timeoutMs, headers: { "content-length": body.length } },
      (res) => {
        let text = ""
        res.on("data", (d: Buffer) => void (text += d.toString()))
        res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body: text })))
      }
    )
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end(body)
  })

const agentOf = (ca: string | undefined) =>
  Effect.acquireRelease(
    Effect.sync(() => new Agent({ keepAlive: true, maxSockets: 1, ...(ca === undefined ? {} : { ca }) })),
    (a) => Effect.sync(() => a.destroy())
  )

describe("FaultProxy with a TLS front", () => {
  it.live("https in, plain HTTP to the target; flip, reset and stall act inside the TLS session; the temp dir is removed", () => {
    let dir = ""
    return Effect.gen(function*() {
      const certs = yield* makeTestCertificates
      dir = certs.dir
      const { port } = yield* target
      const proxy = yield* FaultProxy.make({ targetPort: port, tls: certs, maxStallMillis: 5_000 })
      assert.strictEqual(proxy.url, `https://127.0.0.1:${proxy.port}`)
      const agent = yield* agentOf(certs.ca)
      const ok = yield* put(agent, proxy.port)
      assert.deepStrictEqual(ok, { status: 200, body: `${sha256(body)} ${body.length}` })

      yield* proxy.setFault(flipByte(1))
      const flipped = yield* put(agent, proxy.port)
      assert.notStrictEqual(flipped.body, `${sha256(body)} ${body.length}`, "the target received a changed body")

      yield* proxy.setFault(reset(1))
      const resetError = yield* put(agent, proxy.port).pipe(Effect.flip)
      assert.match(resetError.message, /ECONNRESET|socket hang up/)

      yield* proxy.setFault(stall(1))
      const stallError = yield* put(agent, proxy.port, 500).pipe(Effect.flip)
      assert.strictEqual(stallError.message, "timeout")
      const after = yield* put(agent, proxy.port)
      assert.strictEqual(after.status, 200, "the next request passes")

      const stats = yield* proxy.stats
      assert.deepStrictEqual([stats.flipped, stats.resets, stats.stalled, stats.handshakesFailed], [1, 1, 1, 0])
      assert.strictEqual(stats.handshakes, stats.connections)
      assert.isTrue(existsSync(dir))
    }).pipe(Effect.scoped, Effect.tap(() => Effect.sync(() => assert.isFalse(existsSync(dir), "temp dir removed"))))
  })

  it.live("a client that does not trust the certificate fails its handshake and never reaches the target", () =>
    Effect.gen(function*() {
      const certs = yield* makeTestCertificates
      const { port, connections } = yield* target
      const proxy = yield* FaultProxy.make({ targetPort: port, tls: certs })
      const error = yield* put(yield* agentOf(undefined), proxy.port).pipe(Effect.flip)
      assert.strictEqual((error as NodeJS.ErrnoException).code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
      // the proxy sees the close of the refused handshake a moment after the client's error
      for (let i = 0; i < 50 && (yield* proxy.stats).handshakesFailed === 0; i++) yield* Effect.sleep("20 millis")
      const stats = yield* proxy.stats
      assert.deepStrictEqual([stats.handshakes, stats.handshakesFailed, stats.connections, connections()], [0, 1, 0, 0])
    }).pipe(Effect.scoped))
})

/**
 * The stall guard on PostgreSQL sockets, against a loopback TCP server that accepts and never answers: a used
 * connection that moves no byte for `stallMillis` is destroyed with ETIMEDOUT; one never used stays open; which URLs
 * get a guard at all.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { type AddressInfo, createServer, type Server, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { guardedSocket, tcpTargetOf } from "../src/StalledSockets.ts"

/** A server that accepts connections and never sends a byte; closed (with its connections) with the scope. */
const silentServer = Effect.acquireRelease(
  Effect.callback<Server>((resume) => {
    // reads and drops what arrives (so it sees the client close), answers nothing
    const server = createServer((s) => void s.on("error", () => {}).resume())
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
)

/** The same on a Unix socket in a private directory (removed with the scope), as PostgreSQL's `.s.PGSQL.5432`. */
const silentSocketServer = Effect.acquireRelease(
  Effect.callback<{ readonly server: Server; readonly dir: string }>((resume) => {
    const dir = mkdtempSync(join(tmpdir(), "lo-migrate-sock-"))
    const server = createServer((s) => void s.on("error", () => {}).resume())
    server.listen(join(dir, ".s.PGSQL.5432"), () => resume(Effect.succeed({ server, dir })))
  }),
  ({ dir, server }) =>
    Effect.callback<void>((resume) => void server.close(() => resume(Effect.void))).pipe(
      Effect.andThen(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    )
)

const connectedGuard = (server: Server, stallMillis: number) => {
  const address = server.address()
  return Effect.acquireRelease(
    Effect.callback<Socket>((resume) => {
      const socket = guardedSocket({
        ...(typeof address === "string" ? { path: address } : { host: "127.0.0.1", port: (address as AddressInfo).port }),
        stallMillis,
        describe: "--pg-statement-timeout"
      })
      socket.on("error", () => {})
      socket.once("connect", () => resume(Effect.succeed(socket)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )
}

/** How the socket ended within `millis`: its error, "closed" without one, or "open". */
const endingWithin = (socket: Socket, millis: number) =>
  Effect.callback<string>((resume) => {
    const timer = setTimeout(() => resume(Effect.succeed(socket.destroyed ? "closed" : "open")), millis)
    socket.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resume(Effect.succeed(`${e.code}: ${e.message}`))
    })
    return Effect.sync(() => clearTimeout(timer))
  })

describe("StalledSockets", () => {
  it.live("a connection that sent a request and gets no answer is destroyed with ETIMEDOUT after stallMillis", () =>
    Effect.gen(function*() {
      const server = yield* silentServer
      const socket = yield* connectedGuard(server, 300)
      const started = Date.now()
      socket.write("Q")
      const ending = yield* endingWithin(socket, 3_000)
      assert.match(ending, /^ETIMEDOUT: no byte from or to PostgreSQL for \d+ s \(--pg-statement-timeout\)$/)
      assert.isAtLeast(Date.now() - started, 300)
      assert.isTrue(socket.destroyed)
    }).pipe(Effect.scoped))

  it.live("the same over a Unix socket (a server reached by its socket directory)", () =>
    Effect.gen(function*() {
      const { server } = yield* silentSocketServer
      const socket = yield* connectedGuard(server, 300)
      assert.isUndefined(socket.remotePort) // not TCP
      socket.write("Q")
      const ending = yield* endingWithin(socket, 3_000)
      assert.match(ending, /^ETIMEDOUT: no byte from or to PostgreSQL for \d+ s \(--pg-statement-timeout\)$/)
      const idle = yield* connectedGuard(server, 200)
      assert.strictEqual(yield* endingWithin(idle, 1_000), "open")
    }).pipe(Effect.scoped))

  it.live("a connection never used is left alone", () =>
    Effect.gen(function*() {
      const server = yield* silentServer
      const socket = yield* connectedGuard(server, 200)
      assert.strictEqual(yield* endingWithin(socket, 1_000), "open")
    }).pipe(Effect.scoped))

  it("guards TCP URLs only", () => {
    assert.deepStrictEqual(tcpTargetOf("postgresql://u:p@db.example:5433/nice?sslmode=require"), { host: "db.example", port: 5433 })
    assert.deepStrictEqual(tcpTargetOf("postgres://u@127.0.0.1/nice"), { host: "127.0.0.1", port: 5432 })
    assert.deepStrictEqual(tcpTargetOf("postgres://u@[::1]:6432/nice"), { host: "::1", port: 6432 })
    assert.deepStrictEqual(tcpTargetOf("postgres://u@db.example:5433/nice?port=6000"), { host: "db.example", port: 6000 })
    assert.isUndefined(tcpTargetOf("postgres:///nice?host=/var/run/postgresql"))
    assert.isUndefined(tcpTargetOf("postgres://u@a:5432,b:5432/nice"))
    assert.isUndefined(tcpTargetOf("not a url"))
  })
})

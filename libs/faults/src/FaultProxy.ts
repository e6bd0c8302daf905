/**
 * A loopback TCP proxy that injects faults between a client and its server (the migrator and PostgreSQL or Ceph RGW
 * in the fault suite). It listens on 127.0.0.1 and forwards to a 127.0.0.1 target, nothing else. The listening server
 * is a scoped resource: `FaultProxy.make` opens it, closing the scope closes it and destroys every connection.
 *
 * At run time: `setFault` switches the fault (see `Fault.ts`), `killConnections` cuts every open connection,
 * `down`/`up` close and reopen the listening port (connects are refused meanwhile), `refuseFor` does both around a
 * sleep, `stallConnections` freezes every open connection (a path that died without a reset: nothing arrives either
 * way, the sockets stay open; new connections pass). Everything is bounded in time: a stalled connection is destroyed
 * after `maxStallMillis`.
 *
 * With `tls` the proxy listens with that certificate (`TlsFront.ts`) and forwards the plain bytes inside the TLS
 * session to its target: a client speaks https to a plain-HTTP server through it, and every fault works as without.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net"
import { type Action, describeFault, type Fault, passThrough, evenlySpread } from "./Fault.ts"
import { requestFraming, type RequestHead } from "./HttpFraming.ts"
import { tlsFront, type TlsFrontOptions } from "./TlsFront.ts"

export class FaultProxyError extends Schema.TaggedError<FaultProxyError>()("FaultProxyError", {
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message() {
    return `fault proxy: ${this.detail}`
  }
}

export interface FaultProxyOptions {
  /** The target port on 127.0.0.1. */
  readonly targetPort: number
  /** The target host: a loopback address (127.0.0.0/8) only. Default 127.0.0.1. */
  readonly targetHost?: string
  /** Port to listen on (127.0.0.1); 0 (default) picks a free one, kept across `down`/`up`. */
  readonly port?: number
  /** "http" (default) frames HTTP/1.1 requests so per-request faults apply; "tcp" forwards bytes only. */
  readonly protocol?: "http" | "tcp"
  /** Phase of the evenly spread fractions (default 1). */
  readonly seed?: number
  /** A stalled connection is destroyed after this long (default 60 s). */
  readonly maxStallMillis?: number
  /**
   * Listen with TLS (this server certificate and key, PEM; e.g. `makeTestCertificates`), forwarding plain bytes to the
   * target. A handshake not done within `maxStallMillis` is cut.
   */
  readonly tls?: TlsFrontOptions
}

/** What the proxy has seen and done since it started. */
export interface FaultStats {
  readonly connections: number
  readonly requests: number
  readonly answered: number
  readonly resets: number
  readonly stalled: number
  readonly flipped: number
  readonly killed: number
  /** S3 CreateMultipartUpload requests seen (`POST /<bucket>/<key>?uploads`). */
  readonly multipartUploads: number
  /** With `tls`: handshakes completed, and connections closed before theirs completed (certificate refused). */
  readonly handshakes: number
  readonly handshakesFailed: number
}

export interface FaultProxyShape {
  readonly port: number
  /** `http://127.0.0.1:<port>`, or `https://` with `tls` */
  readonly url: string
  readonly setFault: (fault: Fault) => Effect.Effect<void>
  readonly fault: Effect.Effect<Fault>
  readonly stats: Effect.Effect<FaultStats>
  /**
   * Freezes every open connection: nothing is forwarded either way any more, the sockets stay open (destroyed after
   * `maxStallMillis`); connections opened later pass. Works for any TCP protocol. Returns how many were frozen.
   */
  readonly stallConnections: Effect.Effect<number>
  /** Destroys every open connection; returns how many client connections there were. */
  readonly killConnections: Effect.Effect<number>
  /** Stops listening (connects are refused) and cuts every open connection. */
  readonly down: Effect.Effect<void>
  /** Listens again on the same port. */
  readonly up: Effect.Effect<void, FaultProxyError>
  /** `down`, wait `duration`, `up`. */
  readonly refuseFor: (duration: Duration.Input) => Effect.Effect<void, FaultProxyError>
}

const isLoopback = (host: string) => /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

const listen = (server: Server, port: number) =>
  Effect.callback<number, FaultProxyError>((resume) => {
    const onError = (cause: Error) =>
      resume(Effect.fail(new FaultProxyError({ detail: `cannot listen on 127.0.0.1:${port}: ${cause.message}`, cause })))
    server.once("error", onError)
    server.listen(port, "127.0.0.1", () => {
      server.off("error", onError)
      resume(Effect.succeed((server.address() as AddressInfo).port))
    })
  })

const make = Effect.fn("FaultProxy.make")(function*(
  options: FaultProxyOptions
): Effect.fn.Return<FaultProxyShape, FaultProxyError, Scope.Scope> {
  const targetHost = options.targetHost ?? "127.0.0.1"
  if (!isLoopback(targetHost)) {
    return yield* new FaultProxyError({ detail: `target ${targetHost} is not a loopback address (127.0.0.0/8)` })
  }
  const http = (options.protocol ?? "http") === "http"
  const maxStall = options.maxStallMillis ?? 60_000
  const pick = evenlySpread(options.seed ?? 1)
  let fault: Fault = passThrough
  let remaining = 0 // of a counted fault
  let bodies = 0 // requests with a body since the fault was set
  const stats = {
    connections: 0, requests: 0, answered: 0, resets: 0, stalled: 0, flipped: 0, killed: 0, multipartUploads: 0,
    handshakes: 0, handshakesFailed: 0
  }
  const clients = new Set<Socket>()
  /** Per open client connection: freezes it (nothing forwarded any more; destroyed after `maxStall`). */
  const freezers = new Map<Socket, () => void>()
  const sockets = new Set<Socket>()
  let requestIds = 0

  /** The action for one request under the current fault. */
  const decide = (head: RequestHead): Action => {
    stats.requests++
    if (head.method === "POST" && /[?&]uploads(=|&|$)/.test(head.path)) stats.multipartUploads++
    const contentLength = head.contentLength
    switch (fault._tag) {
      case "HttpError":
        if (pick(fault.fraction)) {
          stats.answered++
          return { _tag: "Respond", status: fault.status }
        }
        break
      case "Reset":
        if (pick(fault.fraction)) {
          stats.resets++
          return { _tag: "Reset" }
        }
        break
      case "Stall":
        if (remaining > 0) {
          remaining--
          stats.stalled++
          return { _tag: "Stall" }
        }
        break
      case "FlipByte":
        if (contentLength > 0 && remaining > 0 && ++bodies % fault.every === 0) {
          remaining--
          stats.flipped++
          return { _tag: "Forward", flip: true }
        }
        break
    }
    return { _tag: "Forward", flip: false }
  }

  /** Writes in order, each chunk delayed by the current latency. */
  const writer = (socket: Socket) => {
    let lastDue = 0
    const timers = new Set<NodeJS.Timeout>()
    socket.once("close", () => {
      for (const t of timers) clearTimeout(t)
      timers.clear()
    })
    return (bytes: Uint8Array) => {
      const delay = fault._tag === "Latency" ? fault.millis : 0
      if (delay <= 0 && lastDue <= Date.now()) return void socket.write(bytes)
      const due = Math.max(Date.now() + delay, lastDue)
      lastDue = due
      const timer = setTimeout(() => {
        timers.delete(timer)
        if (!socket.destroyed) socket.write(bytes)
      }, due - Date.now())
      timers.add(timer)
    }
  }

  /** A client connection (`raw`: its TCP socket, another than `client` under TLS). */
  const onConnection = (client: Socket, raw: Socket = client) => {
    stats.connections++
    const upstream = connect(options.targetPort, targetHost)
    clients.add(client)
    let stalled = false
    let frozen = false
    freezers.set(client, () => {
      if (frozen) return
      frozen = true
      stats.stalled++
      const timer = setTimeout(() => client.destroy(), maxStall)
      client.once("close", () => clearTimeout(timer))
    })
    client.once("close", () => freezers.delete(client))
    const toUpstream = writer(upstream)
    const toClient = writer(client)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.setNoDelay(true)
      s.on("error", () => {})
      s.on("close", () => {
        sockets.delete(s)
        clients.delete(client)
        client.destroy()
        upstream.destroy()
      })
    }
    upstream.on("data", (chunk: Buffer) => stalled || frozen || toClient(chunk))
    if (!http) {
      client.on("data", (chunk: Buffer) => frozen || toUpstream(chunk))
      return
    }
    const framing = requestFraming({
      decide,
      forward: toUpstream,
      respond: toClient,
      reset: () => {
        raw.resetAndDestroy()
        client.destroy()
        upstream.destroy()
      },
      stall: () => {
        stalled = true
        const timer = setTimeout(() => client.destroy(), maxStall)
        client.once("close", () => clearTimeout(timer))
      }
    }, () => `fault-proxy-${++requestIds}`)
    client.on("data", (chunk: Buffer) => frozen || framing.feed(chunk))
  }

  const accept = options.tls === undefined
    ? (socket: Socket) => onConnection(socket)
    : tlsFront(options.tls, stats, maxStall, (raw) => {
      sockets.add(raw)
      raw.once("close", () => sockets.delete(raw))
    }, onConnection)
  const server = { current: createServer(accept) }
  const port = yield* listen(server.current, options.port ?? 0)
  const killAll = () => {
    const n = clients.size
    for (const s of sockets) s.destroy()
    stats.killed += n
    return n
  }
  const close = Effect.callback<void>((resume) => {
    killAll()
    if (!server.current.listening) return resume(Effect.void)
    server.current.close(() => resume(Effect.void))
  })
  yield* Effect.addFinalizer(() => close)

  const down = close
  const up = Effect.suspend(() => {
    if (server.current.listening) return Effect.void
    server.current = createServer(accept)
    return Effect.asVoid(listen(server.current, port))
  })
  return {
    port,
    url: `${options.tls === undefined ? "http" : "https"}://127.0.0.1:${port}`,
    setFault: (next: Fault) =>
      Effect.sync(() => {
        fault = next
        remaining = next._tag === "Stall" || next._tag === "FlipByte" ? next.count : 0
        bodies = 0
      }).pipe(Effect.tap(() => Effect.logDebug(`fault proxy :${port}: ${describeFault(next)}`))),
    fault: Effect.sync(() => fault),
    stats: Effect.sync(() => ({ ...stats })),
    stallConnections: Effect.sync(() => {
      const open = [...freezers.values()]
      for (const freeze of open) freeze()
      return open.length
    }),
    killConnections: Effect.sync(killAll),
    down,
    up,
    refuseFor: (duration: Duration.Input) => down.pipe(Effect.andThen(Effect.sleep(duration)), Effect.andThen(up))
  } satisfies FaultProxyShape
})

export class FaultProxy extends Context.Service<FaultProxy, FaultProxyShape>()("lo-migrate/FaultProxy") {
  /** Opens a proxy in the current scope; closing the scope closes it and every connection. */
  static readonly make = make
  static readonly layer = (options: FaultProxyOptions): Layer.Layer<FaultProxy, FaultProxyError> =>
    Layer.effect(FaultProxy, make(options))
}

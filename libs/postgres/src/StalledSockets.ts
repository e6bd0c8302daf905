/**
 * Sockets to PostgreSQL that notice a stall: a connection that has been used and then sees no byte in either
 * direction for `stallMillis` (a network path that died without a reset, a failover that left the socket open, a
 * server that no longer answers, an answer stuck half-way) is destroyed with `ETIMEDOUT`. The driver then fails
 * whatever ran on it — including the `BEGIN`, `COMMIT` and `ROLLBACK` of a transaction, which run uninterruptibly and
 * so cannot be cut by a timeout around the statement — with a retryable connection error and retires the
 * connection; the retry runs on a fresh one.
 *
 * Progress is read from the socket's byte counters, checked every `stallMillis / 8` (100 ms - 1 s). The counters
 * cannot tell a request still waiting for its answer from a connection that got its whole answer and went back to
 * the pool, so a used connection that then sits idle for `stallMillis` is closed too; the pool reopens one on demand
 * (its own idle timeout, 60 s, closes such connections about then anyway). A connection never used is never touched.
 * A statement that legitimately runs longer than `stallMillis` without sending a byte back (a `count(*)` over a big
 * table, an index build) would be cut as well: such statements use a pool without this guard (`PgDatabase`).
 */
import * as Net from "node:net"

/** A TCP host and port, or the path of a Unix socket. */
export type StallGuardTarget = { readonly host: string; readonly port: number } | { readonly path: string }

export type StallGuardOptions = StallGuardTarget & {
  readonly stallMillis: number
  /** TCP keepalive's idle time before the first probe (`PgUrl`'s `keepalives_idle`); none: keepalive off. */
  readonly keepAliveMillis?: number | undefined
  /** What the error says (it names the option that sets `stallMillis`). */
  readonly describe: string
}

/** The host and port of a `postgres://` URL that names a TCP host; `undefined` for a Unix socket or a host list. */
export const tcpTargetOf = (url: string): { readonly host: string; readonly port: number } | undefined => {
  if (!URL.canParse(url)) return undefined
  const parsed = new URL(url)
  if (parsed.hostname.length === 0 || parsed.hostname.includes(",") || parsed.searchParams.has("host")) return undefined
  // the `port` parameter wins over the authority's, as in libpq and the driver
  const portText = parsed.searchParams.get("port") ?? parsed.port
  const port = portText.length === 0 ? 5432 : Number(portText)
  return Number.isSafeInteger(port) ? { host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"), port } : undefined
}

/**
 * Opens a TCP or Unix socket connection that destroys itself after `stallMillis` without a byte either way, once it
 * was used.
 */
export const guardedSocket = (options: StallGuardOptions): Net.Socket => {
  const socket = "path" in options
    ? Net.connect({ path: options.path })
    : Net.connect({
      host: options.host,
      port: options.port,
      noDelay: true,
      ...(options.keepAliveMillis !== undefined && { keepAlive: true, keepAliveInitialDelay: options.keepAliveMillis })
    })
  let read = 0
  let written = 0
  let used = false
  let lastProgress = Date.now()
  const tick = Math.min(1000, Math.max(100, Math.floor(options.stallMillis / 8)))
  const timer = setInterval(() => {
    const now = Date.now()
    if (socket.bytesRead !== read || socket.bytesWritten !== written) {
      used ||= socket.bytesWritten !== written
      read = socket.bytesRead
      written = socket.bytesWritten
      lastProgress = now
    } else if (used && now - lastProgress >= options.stallMillis) {
      clearInterval(timer)
      const quiet = Math.round((now - lastProgress) / 1000)
      socket.destroy(Object.assign(new Error(`no byte from or to PostgreSQL for ${quiet} s (${options.describe})`), {
        code: "ETIMEDOUT"
      }))
    }
  }, tick)
  timer.unref()
  socket.once("close", () => clearInterval(timer))
  return socket
}

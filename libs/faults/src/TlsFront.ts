/**
 * The proxy's optional TLS front: each accepted TCP connection is wrapped in a server-side TLS socket with the given
 * certificate, and handed on (as the proxy's client socket) once its handshake is done; the proxy then forwards the
 * decrypted bytes as plain HTTP or TCP to its target, so every fault applies to what is inside the TLS session. A
 * handshake the client gives up (a certificate it does not trust) is counted and never reaches the target. The raw
 * TCP socket is kept: a reset (RST) is sent on it, since a TLS socket cannot be reset itself.
 */
import { type Socket } from "node:net"
import { createSecureContext, type SecureContext, TLSSocket } from "node:tls"

/** A server certificate and its key, PEM. */
export interface TlsFrontOptions {
  readonly cert: string
  readonly key: string
}

export interface TlsFrontCounts {
  /** TLS handshakes completed. */
  handshakes: number
  /** Connections closed before their handshake completed (the client refused the certificate, or gave up). */
  handshakesFailed: number
}

/**
 * Wraps accepted connections: `onSecure(client, raw)` gets the TLS socket and its TCP socket after the handshake. A
 * handshake that has not completed within `maxMillis` is cut. `track` registers every raw socket (so that killing
 * the proxy's connections includes those still in their handshake).
 */
export const tlsFront = (
  options: TlsFrontOptions,
  counts: TlsFrontCounts,
  maxMillis: number,
  track: (raw: Socket) => void,
  onSecure: (client: Socket, raw: Socket) => void
): (raw: Socket) => void => {
  const secureContext: SecureContext = createSecureContext({ cert: options.cert, key: options.key })
  return (raw) => {
    track(raw)
    const client = new TLSSocket(raw, { isServer: true, secureContext })
    let secure = false
    const timer = setTimeout(() => raw.destroy(), maxMillis)
    client.on("error", () => {})
    raw.on("error", () => {})
    client.once("secure", () => {
      secure = true
      clearTimeout(timer)
      counts.handshakes++
      onSecure(client, raw)
    })
    client.once("close", () => {
      clearTimeout(timer)
      if (!secure) counts.handshakesFailed++
      raw.destroy()
    })
  }
}

/**
 * The proxy tests' target: a loopback HTTP server that answers every request with `<sha256 of the body> <length>`,
 * so a test sees exactly what arrived behind the proxy, and counts the connections it accepted.
 */
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

export interface HashingTarget {
  readonly server: ReturnType<typeof createServer>
  readonly port: number
  readonly connections: () => number
}

export const hashingTarget = Effect.acquireRelease(
  Effect.callback<HashingTarget>((resume) => {
    let connections = 0
    const server = createServer((req, res) => {
      const hash = createHash("sha256")
      let n = 0
      req.on("data", (d: Buffer) => {
        hash.update(d)
        n += d.length
      })
      req.on("end", () => res.end(`${hash.digest("hex")} ${n}`))
    })
    server.on("connection", () => void connections++)
    server.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({ server, port: (server.address() as AddressInfo).port, connections: () => connections })))
  }),
  ({ server }) =>
    Effect.sync(() => server.closeAllConnections()).pipe(
      Effect.andThen(Effect.callback<void>((r) => void server.close(() => r(Effect.void))))
    )
)

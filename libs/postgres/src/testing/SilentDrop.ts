/**
 * A flow that goes silent, as behind a load balancer or NAT that forgot it: packets are dropped without a reset, so a
 * client that only waits to read waits forever unless something probes the flow. The test's client connects through
 * a forwarder of its own on a free loopback port (`@lo-migrate/faults`' `FaultProxy` in tcp mode, to the shared
 * PostgreSQL, which keeps its own flow to the forwarder); `dropFlows` then drops every packet to and from that port
 * with an nftables table of its own (`nft`), which the scope removes, as does a detached watchdog after 3 minutes if
 * the process dies first. Nothing else on the machine is touched: the rule names the forwarder's port only.
 *
 * Needs `nft` (Debian: `apt-get install nftables`; `npm test` installs it when run as root) and the right to change
 * the firewall (root or CAP_NET_ADMIN); without them the effect dies saying so: the test fails, never skips.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { execFileSync, spawn, spawnSync } from "node:child_process"

const howTo = "this test drops a loopback port's packets with nftables to stage a flow a load balancer forgot: it " +
  "needs `nft` (Debian: apt-get install nftables; `npm test` installs it when run as root) and root or CAP_NET_ADMIN"

const nft = (args: ReadonlyArray<string>) => execFileSync("nft", args, { stdio: "pipe", timeout: 10_000, encoding: "utf8" })

/** From now until the scope closes, every TCP packet to or from loopback `port` is dropped, silently. */
export const dropFlows = (port: number): Effect.Effect<void, never, Scope.Scope> => {
  const table = `lo_migrate_drop_${port}`
  // quietly: the table may be gone already
  const remove = () => void spawnSync("nft", ["delete", "table", "inet", table], { stdio: "ignore", timeout: 10_000 })
  return Effect.acquireRelease(
    Effect.try({
      try: () => {
        nft(["add", "table", "inet", table])
        nft(["add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; policy accept ; }"])
        nft(["add", "rule", "inet", table, "out", "oifname", "lo", "tcp", "dport", String(port), "drop"])
        nft(["add", "rule", "inet", table, "out", "oifname", "lo", "tcp", "sport", String(port), "drop"])
        // should this process die before its scope closes
        spawn("sh", ["-c", `sleep 180; nft delete table inet ${table} 2>/dev/null`], { detached: true, stdio: "ignore" })
          .unref()
      },
      catch: (cause) => {
        remove()
        const output = cause instanceof Error && "stderr" in cause ? String((cause as { stderr: unknown }).stderr).trim() : ""
        return new Error(`could not drop the packets of port ${port} (${String(cause)}${output ? `: ${output}` : ""}); ${howTo}`)
      }
    }).pipe(Effect.orDie),
    () => Effect.sync(remove)
  )
}

/**
 * A PgBouncer of its own in front of the test PostgreSQL (`PG_TEST_URL`'s host and port), for tests of what a pooler
 * changes: Debian's `pgbouncer` on a free loopback port, transaction pooling, trust authentication, every database.
 * PgBouncer refuses to run as root: as root it is started with `-u postgres`. Stopped when the scope closes; a
 * detached watchdog stops it when the test process is gone (killed, so no finalizer ran) or after 15 min.
 *
 * If it cannot be started the effect dies with what was tried and how to make it work: tests that need it fail,
 * never skip.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import { freePort } from "./OwnCluster.ts"
import { testAdminUrl } from "./ThrowawayDatabase.ts"

export interface PgBouncerInfo {
  readonly port: number
  /** `postgresql://postgres@127.0.0.1:<port>/<database>` through the pooler. */
  readonly url: (database: string) => string
}

const howTo = "this test starts its own PgBouncer: it needs /usr/sbin/pgbouncer (or PGBOUNCER set to another binary) " +
  "(Debian: apt-get install pgbouncer; tools/test/run-all.sh installs it when it can) and, when run as root, " +
  "an OS user 'postgres'"

const binary = (): string => process.env["PGBOUNCER"] ?? "/usr/sbin/pgbouncer"

/** Resolves once something accepts connections on the port; fails after `millis`. */
const listening = (port: number, millis: number, child: ChildProcess, output: () => string) =>
  Effect.callback<void, Error>((resume) => {
    const deadline = Date.now() + millis
    let done = false
    const finish = (effect: Effect.Effect<void, Error>) => {
      if (done) return
      done = true
      resume(effect)
    }
    child.once("exit", (code) => finish(Effect.fail(new Error(`pgbouncer exited (${code}): ${output()}`))))
    child.once("error", (e) => finish(Effect.fail(new Error(`could not run ${binary()}: ${e.message}`))))
    const attempt = () => {
      const socket = connect({ host: "127.0.0.1", port }, () => {
        socket.destroy()
        finish(Effect.void)
      })
      socket.once("error", () => {
        socket.destroy()
        if (Date.now() > deadline) finish(Effect.fail(new Error(`nothing listens on port ${port} after ${millis} ms: ${output()}`)))
        else setTimeout(attempt, 100)
      })
    }
    attempt()
  })

export interface PgBouncerOptions {
  /**
   * Startup parameters PgBouncer accepts and drops (`ignore_startup_parameters`) instead of refusing the connection,
   * as DBAs configure it for clients that send them (e.g. `statement_timeout`).
   */
  readonly ignoreStartupParameters?: ReadonlyArray<string> | undefined
}

/** Starts PgBouncer in the current scope; dies (with how to make it work) if it cannot. */
export const makeWith = (options: PgBouncerOptions): Effect.Effect<PgBouncerInfo, never, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const target = new URL(testAdminUrl())
    const dir = mkdtempSync(join(tmpdir(), "lo-migrate-pgbouncer-"))
    chmodSync(dir, 0o755)
    const ini = join(dir, "pgbouncer.ini")
    writeFileSync(join(dir, "users.txt"), `"postgres" ""\n`, { mode: 0o644 })
    writeFileSync(
      ini,
      [
        "[databases]",
        `* = host=${target.hostname} port=${target.port || "5432"}`,
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        `listen_port = ${port}`,
        "unix_socket_dir =",
        "auth_type = trust",
        `auth_file = ${join(dir, "users.txt")}`,
        "pool_mode = transaction",
        "max_client_conn = 100",
        "default_pool_size = 10",
        // each transaction goes to the next of at least 3 server connections, as under load, not to the one last used:
        // a client that relies on a server connection's session state (a named prepared statement) fails at once, not
        // by chance
        "server_round_robin = 1",
        "min_pool_size = 3",
        ...(options.ignoreStartupParameters === undefined
          ? []
          : [`ignore_startup_parameters = ${options.ignoreStartupParameters.join(",")}`])
      ].join("\n") + "\n",
      { mode: 0o644 }
    )
    const args = [...(userInfo().uid === 0 ? ["-u", "postgres"] : []), ini]
    let output = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const started = spawn(binary(), args, { stdio: ["ignore", "pipe", "pipe"] })
        started.stdout?.on("data", (d) => void (output = (output + String(d)).slice(-2000)))
        started.stderr?.on("data", (d) => void (output = (output + String(d)).slice(-2000)))
        // stops it once this process is gone or after 15 min, whichever comes first
        spawn("sh", ["-c", `i=0; while kill -0 ${process.pid} 2>/dev/null && [ $i -lt 900 ]; do sleep 1; i=$((i+1)); done; ` +
          `kill ${started.pid ?? 0} 2>/dev/null; rm -rf "${dir}"`], { detached: true, stdio: "ignore" }).unref()
        return started
      }),
      (started) =>
        Effect.sync(() => {
          started.kill("SIGTERM")
          rmSync(dir, { recursive: true, force: true })
        })
    )
    yield* listening(port, 10_000, child, () => output).pipe(
      Effect.mapError((e) => new Error(`could not start PgBouncer (${e.message})\n${howTo}`)),
      Effect.orDie
    )
    return { port, url: (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}` }
  })

/** `makeWith` PgBouncer's defaults: a startup parameter it does not know of is refused. */
export const make: Effect.Effect<PgBouncerInfo, never, Scope.Scope> = makeWith({})

/**
 * The pieces of a throwaway PostgreSQL cluster of a test's own (the shared server on 127.0.0.1:5432 is never
 * reconfigured): a temporary directory watched by a detached watchdog, `initdb`, `pg_ctl start` / `stop`, every command
 * bounded in time. Run as root, the cluster belongs to the OS user `postgres` (`runuser -u postgres`), since PostgreSQL
 * refuses to run as root. `TlsServer` and `StandbyServer` are built from them.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import { execFileSync, spawn } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"

/** Where `initdb` and `pg_ctl` are: `PG_BIN`, or Debian's PostgreSQL 15. */
export const pgBinDir = (): string => process.env["PG_BIN"] ?? "/usr/lib/postgresql/15/bin"

/** What every cluster of a test's own needs; each kind of server adds its own. */
const howToRun = () =>
  `it needs initdb and pg_ctl in ${pgBinDir()} (set PG_BIN to another directory; Debian: apt-get install ` +
  "postgresql-15) and, when run as root, an OS user 'postgres' (runuser -u postgres)"

/** A loopback port nothing listens on right now. */
export const freePort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.once("error", (e) => resume(Effect.die(new Error(`no free loopback port: ${e.message}`))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Runs a command (as `postgres` when we are root), at most `timeoutMillis`; its output goes into the error. */
export const run = (command: string, args: ReadonlyArray<string>, timeoutMillis: number, asPostgres: boolean) => {
  const [file, argv] = asPostgres && userInfo().uid === 0
    ? ["runuser", ["-u", "postgres", "--", command, ...args]]
    : [command, [...args]]
  return execFileSync(file, argv, { stdio: "pipe", timeout: timeoutMillis, encoding: "utf8" })
}

/** The error of a failed `step`: the command's output, the end of the server's log, and how to make it work. */
export const clusterFailure = (step: string, dir: string, howTo: string) => (cause: unknown) => {
  const output = cause instanceof Error && "stderr" in cause ? String((cause as { stderr: unknown }).stderr) : ""
  const log = existsSync(join(dir, "server.log")) ? readFileSync(join(dir, "server.log"), "utf8").slice(-2000) : ""
  return new Error(
    `could not ${step} (${cause instanceof Error ? cause.message : String(cause)}${output ? `: ${output.trim()}` : ""})` +
      `${log ? `\nserver log:\n${log}` : ""}\n${howTo}; ${howToRun()}`
  )
}

/** Gives `paths` to the OS user `postgres` when we are root (the server must read them, and own its directory). */
export const chownToPostgres = (paths: ReadonlyArray<string>): void => {
  if (userInfo().uid !== 0) return
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8", timeout: 5_000 }).trim())
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8", timeout: 5_000 }).trim())
  for (const path of paths) chownSync(path, uid, gid)
}

/** A new cluster in `data` (`initdb`): superuser `postgres`, trust authentication, UTF8, locale C. */
export const initCluster = (data: string): void =>
  void run(join(pgBinDir(), "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], 60_000, true)

/** Settings of every test cluster: small, and no fsync (nothing of it outlives the test). */
export const clusterSettings: ReadonlyArray<string> = ["-c fsync=off", "-c shared_buffers=16MB", "-c max_connections=30"]

/**
 * The server's settings for a cluster of `dir` on loopback `port` only (its Unix socket in `dir`), with `extra` ones
 * (e.g. TLS) before those of every test cluster.
 */
export const loopbackSettings = (dir: string, port: number, extra: ReadonlyArray<string> = []): string =>
  [`-c port=${port}`, "-c listen_addresses=127.0.0.1", `-c unix_socket_directories=${dir}`, ...extra, ...clusterSettings]
    .join(" ")

/** Starts the cluster of `dir` (its `data`) with `settings` and waits until it accepts connections (30 s at most). */
export const startCluster = (dir: string, settings: string): void =>
  void run(
    join(pgBinDir(), "pg_ctl"),
    ["-D", join(dir, "data"), "-l", join(dir, "server.log"), "-w", "-t", "30", "-o", settings, "start"],
    40_000,
    true
  )

/** Stops the cluster of `dir` (`mode`: `fast` shuts down cleanly, `immediate` does not), if it runs. */
export const haltCluster = (dir: string, mode: "fast" | "immediate"): void => {
  const data = join(dir, "data")
  if (existsSync(join(data, "postmaster.pid"))) {
    run(join(pgBinDir(), "pg_ctl"), ["-D", data, "-m", mode, "-w", "-t", "15", "stop"], 20_000, true)
  }
}

/** Stops the cluster (at once) and removes its directory; a failed stop is ignored: the directory goes anyway. */
export const stopCluster = (dir: string) =>
  Effect.ignore(Effect.try(() => haltCluster(dir, "immediate"))).pipe(
    Effect.andThen(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  )

/**
 * A detached shell that stops the server and removes `dir` once this process is gone or `maxSeconds` have passed,
 * whichever comes first (the scope's finalizer does the same earlier; both are idempotent).
 */
const watchdog = (dir: string, maxSeconds: number) => {
  const data = join(dir, "data")
  const pgCtl = join(pgBinDir(), "pg_ctl")
  const stopCommand = userInfo().uid === 0 ? `runuser -u postgres -- "${pgCtl}"` : `"${pgCtl}"`
  const script = `i=0; while kill -0 ${process.pid} 2>/dev/null && [ -d "${dir}" ] && [ $i -lt ${maxSeconds} ]; do ` +
    `sleep 1; i=$((i+1)); done; [ -f "${data}/postmaster.pid" ] && ${stopCommand} -D "${data}" -m immediate -w -t 15 stop; ` +
    `rm -rf "${dir}"`
  spawn("sh", ["-c", script], { detached: true, stdio: "ignore" }).unref()
}

/** A new temporary directory for a cluster (`prefix` names its kind), under a watchdog of 15 min. */
export const makeClusterDir = (prefix: string) =>
  Effect.sync(() => {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    watchdog(dir, 15 * 60)
    return dir
  })

/**
 * A new cluster in `dir` on loopback `port` (stopped and removed when the scope closes), and `seed` run on its
 * `postgres` database through a pool that is closed again before this returns. `dirs`: more directories the server's
 * user must own (those of the test's other servers). Dies saying what failed and `howTo`.
 */
export const startSeeded = <E>(
  dir: string,
  port: number,
  seed: Effect.Effect<void, E, SqlClient.SqlClient>,
  howTo: string,
  dirs: ReadonlyArray<string> = []
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          chownToPostgres([dir, ...dirs])
          initCluster(join(dir, "data"))
          startCluster(dir, loopbackSettings(dir, port))
        },
        catch: clusterFailure(`start PostgreSQL (${dir}, port ${port})`, dir, howTo)
      }).pipe(Effect.orDie, Effect.onError(() => stopCluster(dir))),
      () => stopCluster(dir)
    )
    yield* seed.pipe(
      Effect.provide(PgClient.layer({
        url: Redacted.make(`postgresql://postgres@127.0.0.1:${port}/postgres`),
        applicationName: "lo-migrate-tests"
      })),
      Effect.mapError((e) => new Error(`could not seed the server on port ${port}: ${String(e)}`)),
      Effect.orDie
    )
  })

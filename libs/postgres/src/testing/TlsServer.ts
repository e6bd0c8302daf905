/**
 * A throwaway PostgreSQL 15 server that accepts TLS only, for tests of what happens under TLS (the shared server on
 * 127.0.0.1:5432 has no TLS and is never reconfigured): a fresh cluster (`initdb`) in a temporary directory, on a free
 * loopback port, with `ssl=on`, a self-signed certificate made with `openssl` for `127.0.0.1` / `localhost` (or the
 * names `makeWith` is given), and a
 * `pg_hba.conf` that rejects every connection that is not TLS. Stopped (`pg_ctl stop -m immediate`) and its directory
 * removed when the scope closes. Every command is bounded in time, and so is the server: a detached watchdog stops it
 * and removes the directory when the test process is gone (killed, so no finalizer ran) or after 15 min. Run as root, the cluster belongs to the OS user
 * `postgres` (`runuser -u postgres`), since PostgreSQL refuses to run as root.
 *
 * If the server cannot be started the effect dies with what was tried and how to make it work: tests that need it
 * fail, never skip.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { execFileSync, spawn } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"

/** Where `initdb` and `pg_ctl` are: `PG_BIN`, or Debian's PostgreSQL 15. */
export const pgBinDir = (): string => process.env["PG_BIN"] ?? "/usr/lib/postgresql/15/bin"

export interface TlsServerInfo {
  /** The loopback port it listens on (TLS only). */
  readonly port: number
  /** The self-signed certificate (PEM): the only CA a client needs to trust to verify the server. */
  readonly ca: string
  /** Its path, e.g. for `NODE_EXTRA_CA_CERTS` of a child process. */
  readonly caFile: string
  /** `postgresql://postgres@127.0.0.1:<port>/<database>?sslmode=<sslmode>` (trust authentication). */
  readonly url: (database: string, sslmode?: "require" | "verify-full") => string
  /** Per role of `certRoles`: a client certificate (CN = the role) and its key (mode 0600), as file paths. */
  readonly clientCerts: Readonly<Record<string, { readonly cert: string; readonly key: string }>>
}

const howTo = `this test starts its own PostgreSQL 15 with TLS: it needs initdb and pg_ctl in ${pgBinDir()} ` +
  "(set PG_BIN to another directory; Debian: apt-get install postgresql-15), openssl on the PATH, and, when run as " +
  "root, an OS user 'postgres' (runuser -u postgres)"

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
const run = (command: string, args: ReadonlyArray<string>, timeoutMillis: number, asPostgres: boolean) => {
  const [file, argv] = asPostgres && userInfo().uid === 0
    ? ["runuser", ["-u", "postgres", "--", command, ...args]]
    : [command, [...args]]
  return execFileSync(file, argv, { stdio: "pipe", timeout: timeoutMillis, encoding: "utf8" })
}

const failure = (step: string, dir: string) => (cause: unknown) => {
  const output = cause instanceof Error && "stderr" in cause ? String((cause as { stderr: unknown }).stderr) : ""
  const log = existsSync(join(dir, "server.log")) ? readFileSync(join(dir, "server.log"), "utf8").slice(-2000) : ""
  return new Error(
    `could not ${step} (${cause instanceof Error ? cause.message : String(cause)}${output ? `: ${output.trim()}` : ""})` +
      `${log ? `\nserver log:\n${log}` : ""}\n${howTo}`
  )
}

/** What the server's certificate names and which roles must give a password or a client certificate. */
export interface TlsServerOptions {
  /** The certificate's subjectAltName; default `IP:127.0.0.1,DNS:localhost`. */
  readonly certNames?: string | undefined
  /** Roles that authenticate with `scram-sha-256` (the test sets their password); every other role is trusted. */
  readonly passwordRoles?: ReadonlyArray<string> | undefined
  /** Roles that authenticate with a client certificate (`cert`), signed by a client CA of the server's own. */
  readonly certRoles?: ReadonlyArray<string> | undefined
}

const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

/** A client CA (the server's `ssl_ca_file`) and one certificate per role signed by it, in `dir`. */
const clientCertificates = (dir: string, roles: ReadonlyArray<string>) => {
  const ca = join(dir, "client-ca.crt")
  const caKey = join(dir, "client-ca.key")
  run("openssl", ["req", "-x509", ...ecKey, "-days", "2", "-subj", "/CN=lo-migrate test client CA", "-keyout", caKey, "-out", ca], 20_000, false)
  const certs: Record<string, { cert: string; key: string }> = {}
  for (const role of roles) {
    const cert = join(dir, `client-${role}.crt`)
    const key = join(dir, `client-${role}.key`)
    const csr = join(dir, `client-${role}.csr`)
    run("openssl", ["req", ...ecKey, "-subj", `/CN=${role}`, "-keyout", key, "-out", csr], 20_000, false)
    run("openssl", ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-days", "2", "-out", cert], 20_000, false)
    chmodSync(key, 0o600)
    certs[role] = { cert, key }
  }
  return { ca, certs }
}

const start = (dir: string, port: number, options: TlsServerOptions): TlsServerInfo => {
  const bin = (name: string) => join(pgBinDir(), name)
  const data = join(dir, "data")
  const cert = join(dir, "server.crt")
  const key = join(dir, "server.key")
  const root = userInfo().uid === 0
  run("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", "/CN=127.0.0.1", "-addext",
    `subjectAltName=${options.certNames ?? "IP:127.0.0.1,DNS:localhost"}`, "-keyout", key, "-out", cert
  ], 20_000, false)
  chmodSync(key, 0o600)
  const certRoles = options.certRoles ?? []
  const clients = certRoles.length > 0 ? clientCertificates(dir, certRoles) : undefined
  if (root) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8", timeout: 5_000 }).trim())
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8", timeout: 5_000 }).trim())
    for (const path of [dir, cert, key, ...(clients ? [clients.ca] : [])]) chownSync(path, uid, gid)
  }
  run(bin("initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], 60_000, true)
  // TLS only: a plaintext connection from the loopback is refused, so a test that connects proves TLS was used
  writeFileSync(
    join(data, "pg_hba.conf"),
    "local all all trust\n" +
      (options.passwordRoles ?? []).map((role) => `hostssl all ${role} 127.0.0.1/32 scram-sha-256\n`).join("") +
      certRoles.map((role) => `hostssl all ${role} 127.0.0.1/32 cert\n`).join("") +
      "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n"
  )
  const settings = [
    `-c port=${port}`, "-c listen_addresses=127.0.0.1", `-c unix_socket_directories=${dir}`,
    "-c ssl=on", `-c ssl_cert_file=${cert}`, `-c ssl_key_file=${key}`,
    ...(clients ? [`-c ssl_ca_file=${clients.ca}`] : []),
    "-c fsync=off", "-c shared_buffers=16MB", "-c max_connections=30"
  ].join(" ")
  run(bin("pg_ctl"), ["-D", data, "-l", join(dir, "server.log"), "-w", "-t", "30", "-o", settings, "start"], 40_000, true)
  return {
    port,
    ca: readFileSync(cert, "utf8"),
    caFile: cert,
    url: (database, sslmode = "require") => `postgresql://postgres@127.0.0.1:${port}/${database}?sslmode=${sslmode}`,
    clientCerts: clients?.certs ?? {}
  }
}

const stop = (dir: string) => {
  const data = join(dir, "data")
  // a failed stop is ignored: the directory goes anyway, and a server left running would show in the next test's log
  const halt = existsSync(join(data, "postmaster.pid"))
    ? Effect.ignore(Effect.try(() => run(join(pgBinDir(), "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "-t", "15", "stop"], 20_000, true)))
    : Effect.void
  return halt.pipe(Effect.andThen(Effect.sync(() => rmSync(dir, { recursive: true, force: true }))))
}

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

/** Starts the server in the current scope; dies (with how to make it work) if it cannot. */
export const make: Effect.Effect<TlsServerInfo, never, Scope.Scope> = Effect.suspend(() => makeWith({}))

/** `make` with another certificate name or password-authenticated roles. */
export const makeWith = (options: TlsServerOptions): Effect.Effect<TlsServerInfo, never, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const dir = yield* Effect.sync(() => {
      const made = mkdtempSync(join(tmpdir(), "lo-migrate-pgtls-"))
      watchdog(made, 15 * 60)
      return made
    })
    return yield* Effect.acquireRelease(
      Effect.try({ try: () => start(dir, port, options), catch: failure(`start PostgreSQL with TLS in ${dir} on port ${port}`, dir) })
        .pipe(Effect.tapError(() => stop(dir)), Effect.orDie),
      () => stop(dir)
    )
  })

/**
 * A throwaway PostgreSQL 15 server that accepts TLS only, for tests of what happens under TLS (the shared server on
 * 127.0.0.1:5432 has no TLS and is never reconfigured): a fresh cluster (`initdb`) in a temporary directory, on a free
 * loopback port, with `ssl=on`, a self-signed certificate made with `openssl` for `127.0.0.1` / `localhost` (or the
 * names `makeWith` is given), and a
 * `pg_hba.conf` that rejects every connection that is not TLS. Stopped (`pg_ctl stop -m immediate`) and its directory
 * removed when the scope closes; bounded in time like every cluster of a test's own (`OwnCluster.ts`).
 *
 * If the server cannot be started the effect dies with what was tried and how to make it work: tests that need it
 * fail, never skip.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { chmodSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import {
  chownToPostgres,
  clusterFailure,
  freePort,
  initCluster,
  loopbackSettings,
  makeClusterDir,
  run,
  startCluster,
  stopCluster
} from "./OwnCluster.ts"

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

const howTo = "this test starts its own PostgreSQL 15 with TLS: it needs openssl on the PATH"

/** What the server's certificate names and which roles must give a password or a client certificate. */
export interface TlsServerOptions {
  /** The certificate's subjectAltName; default `IP:127.0.0.1,DNS:localhost`. */
  readonly certNames?: string | undefined
  /** Roles that authenticate with `scram-sha-256` (the test sets their password); every other role is trusted. */
  readonly passwordRoles?: ReadonlyArray<string> | undefined
  /** Roles that authenticate with a client certificate (`cert`), signed by a client CA of the server's own. */
  readonly certRoles?: ReadonlyArray<string> | undefined
  /** Roles that authenticate with `md5` (an MD5 exchange when the test stores their password as MD5). */
  readonly md5Roles?: ReadonlyArray<string> | undefined
  /** Roles asked for their password in clear (`password`: what LDAP, RADIUS and PAM authentication ask for). */
  readonly cleartextRoles?: ReadonlyArray<string> | undefined
  /** Roles asked for GSSAPI (Kerberos) authentication (`gss`); no keytab, so no client could pass it. */
  readonly gssRoles?: ReadonlyArray<string> | undefined
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
  const data = join(dir, "data")
  const cert = join(dir, "server.crt")
  const key = join(dir, "server.key")
  run("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", "/CN=127.0.0.1", "-addext",
    `subjectAltName=${options.certNames ?? "IP:127.0.0.1,DNS:localhost"}`, "-keyout", key, "-out", cert
  ], 20_000, false)
  chmodSync(key, 0o600)
  const certRoles = options.certRoles ?? []
  const clients = certRoles.length > 0 ? clientCertificates(dir, certRoles) : undefined
  chownToPostgres([dir, cert, key, ...(clients ? [clients.ca] : [])])
  initCluster(data)
  // TLS only: a plaintext connection from the loopback is refused, so a test that connects proves TLS was used
  writeFileSync(
    join(data, "pg_hba.conf"),
    "local all all trust\n" +
      (options.passwordRoles ?? []).map((role) => `hostssl all ${role} 127.0.0.1/32 scram-sha-256\n`).join("") +
      certRoles.map((role) => `hostssl all ${role} 127.0.0.1/32 cert\n`).join("") +
      (options.md5Roles ?? []).map((role) => `hostssl all ${role} 127.0.0.1/32 md5\n`).join("") +
      (options.cleartextRoles ?? []).map((role) => `hostssl all ${role} 127.0.0.1/32 password\n`).join("") +
      (options.gssRoles ?? []).map((role) => `hostssl all ${role} 127.0.0.1/32 gss\n`).join("") +
      "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n"
  )
  const settings = loopbackSettings(dir, port, [
    "-c ssl=on", `-c ssl_cert_file=${cert}`, `-c ssl_key_file=${key}`,
    ...(clients ? [`-c ssl_ca_file=${clients.ca}`] : [])
  ])
  startCluster(dir, settings)
  return {
    port,
    ca: readFileSync(cert, "utf8"),
    caFile: cert,
    url: (database, sslmode = "require") => `postgresql://postgres@127.0.0.1:${port}/${database}?sslmode=${sslmode}`,
    clientCerts: clients?.certs ?? {}
  }
}

/** Starts the server in the current scope; dies (with how to make it work) if it cannot. */
export const make: Effect.Effect<TlsServerInfo, never, Scope.Scope> = Effect.suspend(() => makeWith({}))

/** `make` with another certificate name or password-authenticated roles. */
export const makeWith = (options: TlsServerOptions): Effect.Effect<TlsServerInfo, never, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const dir = yield* makeClusterDir("lo-migrate-pgtls-")
    return yield* Effect.acquireRelease(
      Effect.try({
        try: () => start(dir, port, options),
        catch: clusterFailure(`start PostgreSQL with TLS in ${dir} on port ${port}`, dir, howTo)
      }).pipe(Effect.tapError(() => stopCluster(dir)), Effect.orDie),
      () => stopCluster(dir)
    )
  })

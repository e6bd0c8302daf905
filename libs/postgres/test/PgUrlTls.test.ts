/**
 * libpq's reading of the URL against real servers: a throwaway TLS-only PostgreSQL 15 (`TlsServer`, self-signed
 * certificate naming only `IP:127.0.0.1`, role `lo_pw` authenticating with scram-sha-256, role `lo_cert` with a client
 * certificate), started once for the
 * file, and the shared plaintext server on 127.0.0.1:5432 for `prefer`'s fallback. Every connection goes through
 * `PgUrl.resolve` and `PgDatabase`, as the CLI's do.
 */
import { assert, describe, layer } from "@effect/vitest"
import type { DatabaseError } from "@lo-migrate/core"
import { Context, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { rootCertificates } from "node:tls"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PgDatabase, PgUrl } from "../src/index.ts"
import { testAdminUrl, TlsServer } from "../src/testing.ts"

const rolePassword = "Scram-Pw_4711"
/** A password SASLprep changes: fullwidth letters, a ligature, a no-break space and a soft hyphen ("Pw fi-4711" prepared). */
const unpreparedPassword = "Ｐｗ\u00A0ﬁ-4\u00AD711"

class Server extends Context.Service<Server, TlsServer.TlsServerInfo & { readonly dir: string }>()(
  "test/PgUrlTls/Server"
) {}

/** The TLS server, a role with a password on it, and a private directory for password files and a wrong CA. */
const serverLayer = Layer.effect(
  Server,
  Effect.gen(function*() {
    const server = yield* TlsServer.makeWith({
      certNames: "IP:127.0.0.1",
      passwordRoles: ["lo_pw", "lo_nfkc"],
      certRoles: ["lo_cert"],
      md5Roles: ["lo_md5", "lo_md5_nfkc"],
      cleartextRoles: ["lo_clear"],
      gssRoles: ["lo_gss"]
    })
    const admin = yield* Layer.build(PgDatabase.layer({
      url: Redacted.make(server.url("postgres")),
      maxConnections: 1,
      tls: { ca: server.ca }
    }))
    const sql = Context.get(admin, SqlClient.SqlClient)
    yield* Effect.orDie(sql.unsafe(`CREATE ROLE lo_pw LOGIN PASSWORD '${rolePassword}'`))
    yield* Effect.orDie(sql.unsafe("CREATE ROLE lo_cert LOGIN"))
    yield* Effect.orDie(sql.unsafe("CREATE ROLE lo_gss LOGIN"))
    yield* Effect.orDie(sql.unsafe(`CREATE ROLE lo_clear LOGIN PASSWORD '${rolePassword}'`))
    // stored as MD5 (as in databases older than PostgreSQL 14's scram default): the server then asks for an MD5 exchange
    yield* Effect.orDie(sql.withTransaction(Effect.andThen(
      sql.unsafe("SET LOCAL password_encryption = 'md5'"),
      sql.unsafe(`CREATE ROLE lo_md5 LOGIN PASSWORD '${rolePassword}'`)
    )))
    // the server prepares a SCRAM verifier's password (SASLprep); an MD5 hash is of the password as typed
    yield* Effect.orDie(sql.unsafe(`CREATE ROLE lo_nfkc LOGIN PASSWORD '${unpreparedPassword}'`))
    yield* Effect.orDie(sql.withTransaction(Effect.andThen(
      sql.unsafe("SET LOCAL password_encryption = 'md5'"),
      sql.unsafe(`CREATE ROLE lo_md5_nfkc LOGIN PASSWORD '${unpreparedPassword}'`)
    )))
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "lo-migrate-pgurl-tls-"))),
      (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
    )
    // a real CA, but not the one that signed the server's certificate
    yield* Effect.sync(() => writeFileSync(join(dir, "wrong-ca.crt"), rootCertificates[0]!))
    return { ...server, dir }
  })
)

/** Resolves `url` as the CLI does (with `env` as the environment), opens a pool and runs `query` on it. */
const connect = <A>(
  url: string,
  env: Record<string, string>,
  query: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>,
  home = "/nonexistent"
) =>
  Effect.gen(function*() {
    const options = yield* Effect.orDie(PgUrl.resolve(Redacted.make(url), { env, home, osUser: "nobody" }))
    return yield* Effect.scoped(
      Effect.gen(function*() {
        const context = yield* Layer.build(
          PgDatabase.layer({ url: Redacted.make(url), options, maxConnections: 1, connectTimeout: "5 seconds" })
        )
        return yield* Effect.orDie(query(Context.get(context, SqlClient.SqlClient)))
      })
    )
  })

/** Whether this session is encrypted, from the server's view (`pg_stat_ssl`), and as whom. */
const session = (sql: SqlClient.SqlClient) =>
  sql<{ readonly ssl: boolean; readonly who: string }>`
    SELECT ssl, current_user AS who FROM pg_stat_ssl WHERE pid = pg_backend_pid()`.pipe(Effect.map((rows) => rows[0]))

const connectFailure = (url: string, env: Record<string, string> = {}, home?: string) =>
  Effect.flip(connect(url, env, session, home)) as Effect.Effect<DatabaseError>

/** A temporary HOME, with `.postgresql/root.crt` holding `rootCrt` when given; removed with the scope. */
const tempHome = (rootCrt?: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const home = mkdtempSync(join(tmpdir(), "lo-migrate-home-"))
      if (rootCrt !== undefined) {
        mkdirSync(join(home, ".postgresql"))
        writeFileSync(join(home, ".postgresql", "root.crt"), rootCrt)
      }
      return home
    }),
    (home) => Effect.sync(() => rmSync(home, { recursive: true, force: true }))
  )

const base = (server: TlsServer.TlsServerInfo, host = "127.0.0.1", user = "postgres") =>
  `postgresql://${user}@${host}:${server.port}/postgres`

layer(serverLayer, { timeout: 60_000 })("PgUrl against a TLS-only server (self-signed, IP:127.0.0.1)", (it) => {
  it.effect("require (and libpq's default, prefer) encrypt without verifying the self-signed certificate", () =>
    Effect.gen(function*() {
      const server = yield* Server
      assert.deepStrictEqual(yield* connect(`${base(server)}?sslmode=require`, {}, session), { ssl: true, who: "postgres" })
      assert.deepStrictEqual(yield* connect(base(server), {}, session), { ssl: true, who: "postgres" })
      // allow: plaintext first, rejected by pg_hba.conf (hostnossl ... reject), then TLS
      assert.deepStrictEqual(yield* connect(`${base(server)}?sslmode=allow`, {}, session), { ssl: true, who: "postgres" })
    }))

  it.effect("verify-full with sslrootcert=<the CA> connects; with a wrong CA it fails saying what was checked", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const good = `${base(server)}?sslmode=verify-full&sslrootcert=${server.caFile}`
      assert.deepStrictEqual(yield* connect(good, {}, session), { ssl: true, who: "postgres" })
      const wrongCa = join(server.dir, "wrong-ca.crt")
      const e = yield* connectFailure(`${base(server)}?sslmode=verify-full&sslrootcert=${wrongCa}`)
      assert.isFalse(e.retryable)
      assert.match(e.detail, /self-signed certificate|unable to verify/i)
      assert.include(
        e.detail,
        `sslmode=verify-full: TLS, certificate chain checked against sslrootcert ${wrongCa} and host name checked`
      )
      // require with a root certificate checks the chain, as libpq's does (as verify-ca)
      const required = yield* connectFailure(`${base(server)}?sslmode=require&sslrootcert=${wrongCa}`)
      assert.include(required.detail, "host name not checked")
    }))

  it.effect("verify-ca accepts a certificate for another name (localhost vs IP:127.0.0.1); verify-full does not", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const query = `sslrootcert=${server.caFile}`
      assert.deepStrictEqual(
        yield* connect(`${base(server, "localhost")}?sslmode=verify-ca&${query}`, {}, session),
        { ssl: true, who: "postgres" }
      )
      const e = yield* connectFailure(`${base(server, "localhost")}?sslmode=verify-full&${query}`)
      assert.match(e.detail, /localhost/)
      assert.match(e.detail, /Hostname\/IP does not match|altnames/i)
      assert.include(e.detail, "and host name checked")
    }))

  it.effect("HOME without .postgresql/root.crt: verify-ca / verify-full refused at start-up naming the file; require encrypts", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const home = yield* tempHome()
      for (const mode of ["verify-full", "verify-ca"]) {
        const e = yield* Effect.flip(
          PgUrl.resolve(Redacted.make(`${base(server)}?sslmode=${mode}`), { env: {}, home, osUser: "nobody" })
        )
        assert.strictEqual(e.parameter, "sslrootcert")
        assert.include(e.message, `the default ${join(home, ".postgresql", "root.crt")} does not exist`)
        assert.include(e.message, "give sslrootcert=<file>")
        assert.include(e.message, "or sslrootcert=system")
      }
      // with the CA named by PGSSLROOTCERT instead, verify-full connects
      assert.deepStrictEqual(
        yield* connect(`${base(server)}?sslmode=verify-full`, { PGSSLROOTCERT: server.caFile }, session, home),
        { ssl: true, who: "postgres" }
      )
      // sslrootcert=system: Node's CAs, which do not include the self-signed certificate
      const system = yield* connectFailure(`${base(server)}?sslmode=verify-full&sslrootcert=system`, {}, home)
      assert.match(system.detail, /self-signed certificate/i)
      assert.include(system.detail, "Node's trusted CAs and NODE_EXTRA_CA_CERTS (sslrootcert=system)")
      // require without a root certificate: encrypted, not verified
      assert.deepStrictEqual(
        yield* connect(`${base(server)}?sslmode=require`, {}, session, home),
        { ssl: true, who: "postgres" }
      )
    }))

  it.effect("HOME with .postgresql/root.crt: verify-full uses it; require checks the chain against it (as verify-ca)", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const good = yield* tempHome(server.ca)
      assert.deepStrictEqual(
        yield* connect(`${base(server)}?sslmode=verify-full`, {}, session, good),
        { ssl: true, who: "postgres" }
      )
      // require with the right root.crt: the chain is checked, the host name is not (localhost vs IP:127.0.0.1)
      assert.deepStrictEqual(
        yield* connect(`${base(server, "localhost")}?sslmode=require`, {}, session, good),
        { ssl: true, who: "postgres" }
      )
      const wrong = yield* tempHome(readFileSync(join(server.dir, "wrong-ca.crt"), "utf8"))
      const wrongRoot = join(wrong, ".postgresql", "root.crt")
      for (const mode of ["require", "verify-ca"]) {
        const e = yield* connectFailure(`${base(server)}?sslmode=${mode}`, {}, wrong)
        assert.match(e.detail, /self-signed certificate|unable to verify/i)
        assert.include(
          e.detail,
          `sslmode=${mode}: TLS, certificate chain checked against sslrootcert ${wrongRoot}, host name not checked`
        )
      }
      // an explicit sslrootcert wins over root.crt
      assert.deepStrictEqual(
        yield* connect(`${base(server)}?sslmode=verify-full&sslrootcert=${server.caFile}`, {}, session, wrong),
        { ssl: true, who: "postgres" }
      )
    }))

  it.effect("the password of a scram-sha-256 role from the password file or PGPASSWORD; never in an error", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const url = `${base(server, "127.0.0.1", "lo_pw")}?sslmode=require`
      const file = join(server.dir, "pgpass")
      writeFileSync(file, `# test\n127.0.0.1:${server.port}:postgres:lo_pw:${rolePassword}\n`)
      chmodSync(file, 0o600)
      assert.deepStrictEqual(yield* connect(url, { PGPASSFILE: file }, session), { ssl: true, who: "lo_pw" })
      assert.deepStrictEqual(yield* connect(url, { PGPASSWORD: rolePassword }, session), { ssl: true, who: "lo_pw" })
      const wrong = "Wrong-Pw_0815"
      const e = yield* connectFailure(url, { PGPASSWORD: wrong })
      assert.include(e.detail, "28P01")
      assert.notInclude(e.message, wrong)
      // no password at all: the server asks for one and the driver has none
      const none = yield* connectFailure(url)
      assert.notInclude(none.message, rolePassword)
    }))

  it.effect("a password SASLprep changes (fullwidth letters, a ligature, a no-break space): SCRAM logs in with it prepared, as libpq does, MD5 as typed; never in an error", () =>
    Effect.gen(function*() {
      const server = yield* Server
      for (const role of ["lo_nfkc", "lo_md5_nfkc"]) {
        const url = `${base(server, "127.0.0.1", role)}?sslmode=require`
        assert.deepStrictEqual(yield* connect(url, { PGPASSWORD: unpreparedPassword }, session), { ssl: true, who: role })
        // in the URL, percent-encoded, too
        const inUrl = `postgresql://${role}:${encodeURIComponent(unpreparedPassword)}@127.0.0.1:${server.port}/postgres?sslmode=require`
        assert.deepStrictEqual(yield* connect(inUrl, {}, session), { ssl: true, who: role })
      }
      // a wrong password is still refused once both forms have failed, and neither form is in the error
      const e = yield* connectFailure(`${base(server, "127.0.0.1", "lo_nfkc")}?sslmode=require`, { PGPASSWORD: "Ｗｒｏｎｇ" })
      assert.include(e.detail, "28P01")
      assert.notInclude(e.message, "Ｗｒｏｎｇ")
      assert.notInclude(e.message, "Wrong")
    }))

  it.effect("a password stored as MD5 (pg_hba md5, an older database's) or asked for in clear (password, as LDAP and PAM ask): logs in; a wrong one is 28P01", () =>
    Effect.gen(function*() {
      const server = yield* Server
      for (const role of ["lo_md5", "lo_clear"]) {
        const url = `${base(server, "127.0.0.1", role)}?sslmode=require`
        assert.deepStrictEqual(yield* connect(url, { PGPASSWORD: rolePassword }, session), { ssl: true, who: role })
        const e = yield* connectFailure(url, { PGPASSWORD: "Wrong-Pw_0815" })
        assert.include(e.detail, "28P01", role)
        assert.isFalse(e.retryable)
        assert.notInclude(e.message, "Wrong-Pw_0815")
      }
    }))

  it.effect("a role pg_hba.conf asks for GSSAPI (Kerberos): refused at once, the method named and what to use instead", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const e = yield* connectFailure(`${base(server, "127.0.0.1", "lo_gss")}?sslmode=require`)
      assert.isFalse(e.retryable)
      assert.include(e.detail, "the server asks for GSSAPI (Kerberos) authentication (its pg_hba.conf line for this role")
      assert.include(e.detail, "does not support: give the role a password (scram-sha-256 or md5)")
    }))

  it.effect("PGPORT fills in the port the URL leaves out, for the driver and for the stall guard's own socket", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const url = "postgresql://postgres@127.0.0.1/postgres?sslmode=require"
      const options = yield* Effect.orDie(
        PgUrl.resolve(Redacted.make(url), { env: { PGPORT: String(server.port) }, home: "/nonexistent", osUser: "nobody" })
      )
      assert.strictEqual(options.target.port, server.port)
      for (const stallTimeout of [undefined, { millis: 5_000, describe: "test" }]) {
        const row = yield* Effect.scoped(
          Layer.build(PgDatabase.layer({ url: Redacted.make(url), options, maxConnections: 1, stallTimeout })).pipe(
            Effect.flatMap((context) => Effect.orDie(session(Context.get(context, SqlClient.SqlClient))))
          )
        )
        assert.deepStrictEqual(row, { ssl: true, who: "postgres" })
      }
    }))

  it.effect("sslcert + sslkey log a role in by its client certificate (pg_hba cert); without them it is refused", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const client = server.clientCerts["lo_cert"]!
      const url = `${base(server, "127.0.0.1", "lo_cert")}?sslmode=verify-full&sslrootcert=${server.caFile}`
      assert.deepStrictEqual(
        yield* connect(`${url}&sslcert=${client.cert}&sslkey=${client.key}`, {}, session),
        { ssl: true, who: "lo_cert" }
      )
      // the same from PGSSLCERT / PGSSLKEY
      assert.deepStrictEqual(
        yield* connect(url, { PGSSLCERT: client.cert, PGSSLKEY: client.key }, session),
        { ssl: true, who: "lo_cert" }
      )
      const e = yield* connectFailure(url)
      assert.include(e.detail, "28000")
      assert.include(e.detail, "certificate")
    }))
})

describe("PgUrl against the shared plaintext server", () => {
  layer(Layer.empty)((it) => {
    it.effect("no sslmode (libpq's prefer) falls back to plaintext when the server refuses TLS; require fails", () =>
      Effect.gen(function*() {
        const url = new URL(testAdminUrl())
        url.search = ""
        const row = yield* connect(url.toString(), {}, session)
        assert.strictEqual(row?.ssl, false)
        url.search = "?sslmode=require"
        const e = yield* connectFailure(url.toString())
        assert.match(e.detail, /refused TLS|does not support TLS/)
        assert.include(e.detail, "sslmode=require: TLS, certificate not verified")
      }))
  })
})

/**
 * libpq's reading of a connection URL, without a server: the password file's matching and escapes, the `sslmode`
 * table, the password's precedence, the environment, and the configuration errors (parameter and path named, no
 * password in any message).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Result } from "effect"
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PgPass, PgTls, PgUrl } from "../src/index.ts"

const target = { host: "db.example", port: "5432", database: "app", user: "alice" }

/** A private temporary directory with `files` in it (mode 0600 unless given), removed with the scope. */
const tempFiles = (files: Readonly<Record<string, string | { text: string; mode: number }>>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = mkdtempSync(join(tmpdir(), "lo-migrate-pgurl-"))
      for (const [name, content] of Object.entries(files)) {
        const { text, mode } = typeof content === "string" ? { text: content, mode: 0o600 } : content
        writeFileSync(join(dir, name), text)
        chmodSync(join(dir, name), mode)
      }
      return dir
    }),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

const resolve = (url: string, env: Record<string, string>, home = "/nonexistent") =>
  PgUrl.resolve(Redacted.make(url), { env, home, osUser: "osuser" })

const failure = (url: string, env: Record<string, string> = {}, home?: string) =>
  Effect.flip(resolve(url, env, home))

describe("PgPass.lookup (libpq's format)", () => {
  it("takes the first matching line; * matches any field; comments and short lines are skipped", () => {
    const text = [
      "# comment:*:*:*:nope",
      "db.example:5432:other:alice:wrong-db",
      "db.example:5432",
      "*:5432:app:alice:first",
      "*:*:*:*:second"
    ].join("\n")
    assert.strictEqual(PgPass.lookup(text, target), "first")
    assert.strictEqual(PgPass.lookup(text, { ...target, user: "bob" }), "second")
    assert.strictEqual(PgPass.lookup("db.example:5433:app:alice:x\n", target), undefined)
  })

  it("\\: and \\\\ are a literal colon and backslash in every field; the password ends at an unescaped colon", () => {
    const text = "db.example:5432:my\\:db:ali\\\\ce:pa\\:ss\\\\word:trailing\r\n"
    assert.strictEqual(PgPass.lookup(text, { ...target, database: "my:db", user: "ali\\ce" }), "pa:ss\\word")
    // an escaped star is a literal star, not a wildcard
    assert.strictEqual(PgPass.lookup("\\*:5432:app:alice:x", target), undefined)
    assert.strictEqual(PgPass.lookup("\\*:5432:app:alice:x", { ...target, host: "*" }), "x")
    // a field must match whole, not as a prefix
    assert.strictEqual(PgPass.lookup("db.example:5432:app:alic:x", target), undefined)
    assert.strictEqual(PgPass.lookup("db.example:5432:app:alice2:x", target), undefined)
  })

  it("a Unix socket directory or no host matches localhost", () => {
    assert.strictEqual(PgPass.targetHost("/var/run/postgresql"), "localhost")
    assert.strictEqual(PgPass.targetHost(undefined), "localhost")
    assert.strictEqual(PgPass.targetHost("127.0.0.1"), "127.0.0.1")
  })
})

describe("PgTls.plan (libpq's sslmode table)", () => {
  const root = { path: "/ca.crt", pem: "CA" }
  const base = { rootCert: undefined, clientCert: undefined, crl: undefined }
  const shape = (inputs: PgTls.TlsInputs) => {
    const p = PgTls.plan(inputs)
    if ("parameter" in p) return p.parameter
    const t = (x: PgTls.Transport | undefined) =>
      x === undefined ? "-" : x === false ? "plain" : x.rejectUnauthorized === false
        ? "tls"
        : x.checkServerIdentity !== undefined ? "tls+chain" : "tls+chain+name"
    return `${t(p.first)} / ${t(p.fallback)}`
  }

  it("without a root certificate (the verify modes refuse, as libpq's do)", () => {
    assert.deepStrictEqual(
      PgTls.sslModes.map((mode) => [mode, shape({ ...base, mode })]),
      [
        ["disable", "plain / -"],
        ["allow", "plain / tls"],
        ["prefer", "tls / plain"],
        ["require", "tls / -"],
        ["verify-ca", "sslrootcert"],
        ["verify-full", "sslrootcert"]
      ]
    )
  })

  it("with sslrootcert every TLS mode checks the chain (require as verify-ca); system needs verify-full", () => {
    assert.deepStrictEqual(
      PgTls.sslModes.map((mode) => [mode, shape({ ...base, mode, rootCert: root })]),
      [
        ["disable", "plain / -"],
        ["allow", "plain / tls+chain"],
        ["prefer", "tls+chain / plain"],
        ["require", "tls+chain / -"],
        ["verify-ca", "tls+chain / -"],
        ["verify-full", "tls+chain+name / -"]
      ]
    )
    assert.strictEqual(shape({ ...base, mode: "require", rootCert: "system" }), "sslmode")
    assert.strictEqual(shape({ ...base, mode: "verify-full", rootCert: "system" }), "tls+chain+name / -")
  })

  it("passes the CA, CRL and client certificate to the TLS options and says what is checked", () => {
    const p = PgTls.plan({
      mode: "verify-ca",
      rootCert: root,
      crl: { path: "/crl.pem", pem: "CRL" },
      clientCert: { cert: { path: "/c.crt", pem: "CERT" }, key: Redacted.make("KEY") }
    })
    assert(!("parameter" in p) && p.first !== false)
    assert.strictEqual(p.first.ca, "CA")
    assert.strictEqual(p.first.crl, "CRL")
    assert.strictEqual(p.first.cert, "CERT")
    // the private key stays out of the printable plan; the driver gets it
    assert.strictEqual(p.first.key, undefined)
    assert.notInclude(JSON.stringify(p), "KEY")
    const driver = PgTls.withClientKey(p, p.first)
    assert(driver !== false)
    assert.strictEqual(driver.key, "KEY")
    assert.strictEqual(
      p.checks,
      "sslmode=verify-ca: TLS, certificate chain checked against sslrootcert /ca.crt, revocations from sslcrl " +
        "/crl.pem, host name not checked, client certificate /c.crt"
    )
  })
})

describe("PgUrl.resolve", () => {
  it.effect("no sslmode is libpq's prefer; PGSSLMODE applies when the URL has none", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* resolve("postgres://u@h/db", {})).tls.mode, "prefer")
      assert.strictEqual((yield* resolve("postgres://u@h/db", { PGSSLMODE: "disable" })).tls.mode, "disable")
      assert.strictEqual((yield* resolve("postgres://u@h/db?sslmode=require", { PGSSLMODE: "disable" })).tls.mode, "require")
      assert.strictEqual((yield* resolve("postgres://u@h/db?sslrootcert=system", {})).tls.mode, "verify-full")
    }))

  it.effect("the password: the URL's, else PGPASSWORD, else the password file (PGPASSFILE / passfile / ~/.pgpass)", () =>
    Effect.gen(function*() {
      const dir = yield* tempFiles({
        ".pgpass": "h:5432:db:u:from-home\nh:6000:*:*:port-6000\nlocalhost:5432:u:u:default-db\n",
        "other": "*:*:*:*:from-other\n"
      })
      const fromUrl = yield* resolve("postgres://u:pw@h/db", { PGPASSWORD: "env" }, dir)
      assert.strictEqual(fromUrl.password, undefined) // the driver reads the URL's own
      assert.strictEqual(fromUrl.passwordSource, "URL")
      const fromEnv = yield* resolve("postgres://u@h/db", { PGPASSWORD: "env" }, dir)
      assert.strictEqual(Redacted.value(fromEnv.password!), "env")
      assert.strictEqual(fromEnv.passwordSource, "PGPASSWORD")
      const fromHome = yield* resolve("postgres://u@h/db", {}, dir)
      assert.strictEqual(Redacted.value(fromHome.password!), "from-home")
      assert.strictEqual(fromHome.passwordSource, `password file ${join(dir, ".pgpass")}`)
      assert.strictEqual(Redacted.value((yield* resolve("postgres://u@h:6000/x", {}, dir)).password!), "port-6000")
      // libpq's defaults: database = user name, host localhost
      assert.strictEqual(Redacted.value((yield* resolve("postgres://u@localhost", {}, dir)).password!), "default-db")
      const other = join(dir, "other")
      assert.strictEqual(Redacted.value((yield* resolve("postgres://u@h/db", { PGPASSFILE: other }, dir)).password!), "from-other")
      assert.strictEqual(
        Redacted.value((yield* resolve(`postgres://u@h/db?passfile=${other}`, {}, dir)).password!),
        "from-other"
      )
      // user from PGUSER, database from PGDATABASE (and handed to the driver, the URL having none)
      const byEnv = yield* resolve("postgres://h", { PGUSER: "u", PGDATABASE: "db", PGPORT: "5432" }, dir)
      assert.strictEqual(Redacted.value(byEnv.password!), "from-home")
      assert.deepStrictEqual([byEnv.username, byEnv.database, byEnv.target.port], ["u", "db", 5432])
      assert.strictEqual((yield* resolve("postgres://v@h/db", {}, dir)).password, undefined)
      // the user and database are matched decoded; a malformed escape is no crash (the driver reports it)
      const encoded = yield* tempFiles({ ".pgpass": "h:5432:my db:al@ice:encoded\n" })
      assert.strictEqual(Redacted.value((yield* resolve("postgres://al%40ice@h/my%20db", {}, encoded)).password!), "encoded")
      assert.strictEqual((yield* resolve("postgres://%zz@h/db", {}, encoded)).password, undefined)
    }))

  it.effect("a password file open to group or others is ignored with a warning, as libpq does", () =>
    Effect.gen(function*() {
      const dir = yield* tempFiles({ ".pgpass": { text: "*:*:*:*:secret-pw\n", mode: 0o644 } })
      const resolved = yield* resolve("postgres://u@h/db", {}, dir)
      assert.strictEqual(resolved.password, undefined)
      assert.strictEqual(resolved.warnings.length, 1)
      assert.include(resolved.warnings[0]!, "has group or world access (mode 0644)")
      assert.notInclude(resolved.warnings[0]!, "secret-pw")
    }))

  it.effect("reads sslrootcert, sslcert, sslkey, sslcrl at start; a missing file names the parameter and path", () =>
    Effect.gen(function*() {
      const dir = yield* tempFiles({ "ca.crt": "CA", "c.crt": "CERT", "c.key": "KEY", "open.key": { text: "KEY", mode: 0o644 } })
      const resolved = yield* resolve(
        `postgres://u@h/db?sslmode=verify-full&sslrootcert=${dir}/ca.crt&sslcert=${dir}/c.crt&sslkey=${dir}/c.key`,
        {}
      )
      assert(resolved.tls.first !== false)
      assert.deepStrictEqual([resolved.tls.first.ca, resolved.tls.first.cert], ["CA", "CERT"])
      assert.strictEqual(Redacted.value(resolved.tls.clientKey!), "KEY")
      const missing = yield* failure(`postgres://u@h/db?sslmode=verify-ca&sslrootcert=${dir}/nope.crt`)
      assert.strictEqual(missing.parameter, "sslrootcert")
      assert.include(missing.message, `sslrootcert: cannot read ${dir}/nope.crt`)
      assert.strictEqual((yield* failure("postgres://u@h/db", { PGSSLCRL: `${dir}/nope.crl` })).parameter, "sslcrl")
      const open = yield* failure(`postgres://u@h/db?sslmode=require&sslcert=${dir}/c.crt&sslkey=${dir}/open.key`)
      assert.strictEqual(open.parameter, "sslkey")
      assert.include(open.message, "group or world access")
    }))

  it.effect("no sslrootcert: ~/.postgresql/root.crt when it exists (then require checks the chain, as verify-ca)", () =>
    Effect.gen(function*() {
      const home = yield* tempFiles({})
      mkdirSync(join(home, ".postgresql"))
      writeFileSync(join(home, ".postgresql", "root.crt"), "HOME-CA")
      const defaultRoot = join(home, ".postgresql", "root.crt")
      for (const mode of ["verify-full", "verify-ca", "require"] as const) {
        const { tls } = yield* resolve(`postgres://u@h/db?sslmode=${mode}`, {}, home)
        assert(tls.first !== false)
        assert.strictEqual(tls.first.ca, "HOME-CA", mode)
        assert.strictEqual(tls.first.rejectUnauthorized, true, mode)
        assert.include(tls.checks, `certificate chain checked against sslrootcert ${defaultRoot}`)
      }
      // PGSSLROOTCERT and sslrootcert win over it
      const other = yield* tempFiles({ "ca.crt": "OTHER-CA" })
      const fromEnv = yield* resolve("postgres://u@h/db?sslmode=verify-ca", { PGSSLROOTCERT: `${other}/ca.crt` }, home)
      assert(fromEnv.tls.first !== false)
      assert.strictEqual(fromEnv.tls.first.ca, "OTHER-CA")
      // disable reads nothing
      assert.strictEqual((yield* resolve("postgres://u@h/db?sslmode=disable", {}, home)).tls.first, false)
    }))

  it.effect("verify-ca / verify-full with no root certificate at all fail, naming the file looked for and the fix", () =>
    Effect.gen(function*() {
      const home = yield* tempFiles({})
      for (const mode of ["verify-full", "verify-ca"] as const) {
        for (const [url, env] of [[`postgres://u:Pw-secret@h/db?sslmode=${mode}`, {}], [
          "postgres://u:Pw-secret@h/db",
          { PGSSLMODE: mode }
        ]] as const) {
          const e = yield* failure(url, env, home)
          assert.strictEqual(e.parameter, "sslrootcert")
          assert.include(e.message, `sslmode=${mode} verifies the server's certificate but there is no root certificate`)
          assert.include(e.message, `the default ${join(home, ".postgresql", "root.crt")} does not exist`)
          assert.include(e.message, "give sslrootcert=<file>")
          assert.include(e.message, "or sslrootcert=system")
          assert.notInclude(e.message, "Pw-secret")
        }
      }
      // sslrootcert=system is how to ask for the system's CAs
      const system = yield* resolve("postgres://u@h/db?sslmode=verify-full&sslrootcert=system", {}, home)
      assert(system.tls.first !== false)
      assert.strictEqual(system.tls.first.ca, undefined)
      assert.include(system.tls.checks, "Node's trusted CAs and NODE_EXTRA_CA_CERTS (sslrootcert=system)")
      // require and prefer do not need one: they encrypt without verifying
      for (const mode of ["require", "prefer"] as const) {
        const { tls } = yield* resolve(`postgres://u@h/db?sslmode=${mode}`, {}, home)
        assert(tls.first !== false)
        assert.strictEqual(tls.first.rejectUnauthorized, false)
      }
    }))

  it.effect("TCP keepalive: on with a 60 s idle time by default, keepalives_idle sets it, keepalives=0 and a Unix socket turn it off", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* resolve("postgres://u@h/db", {})).keepAliveIdleSeconds, PgUrl.defaultKeepAliveIdleSeconds)
      assert.strictEqual(PgUrl.defaultKeepAliveIdleSeconds, 60)
      assert.strictEqual((yield* resolve("postgres://u@h/db?keepalives=1&keepalives_idle=30", {})).keepAliveIdleSeconds, 30)
      assert.isUndefined((yield* resolve("postgres://u@h/db?keepalives=0&keepalives_idle=30", {})).keepAliveIdleSeconds)
      assert.isUndefined((yield* resolve("postgres://u@/db?host=/var/run/postgresql", {})).keepAliveIdleSeconds)
      // a list that mixes a socket and a TCP host: keepalive for the TCP one
      assert.strictEqual(
        (yield* resolve("postgres://u@/db?host=/var/run/postgresql,db2", {})).keepAliveIdleSeconds,
        PgUrl.defaultKeepAliveIdleSeconds
      )
      // the probes' interval and count cannot be set from Node.js: accepted (as in a cloud provider's recommended
      // connection string) and named in a warning
      const tuned = yield* resolve("postgres://u@h/db?keepalives=1&keepalives_idle=30&keepalives_interval=10&keepalives_count=3", {})
      assert.strictEqual(tuned.keepAliveIdleSeconds, 30)
      assert.include(tuned.warnings.join("\n"), "keepalives_interval and keepalives_count are not applied")
      assert.deepStrictEqual((yield* resolve("postgres://u@h/db?keepalives_idle=30", {})).warnings, [])
    }))

  it.effect("target_session_attrs, else PGTARGETSESSIONATTRS, else any: every value of libpq's is read", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* resolve("postgres://u@h/db", {})).sessionAttrs, "any")
      for (const value of ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"] as const) {
        assert.strictEqual((yield* resolve(`postgres://u@h/db?target_session_attrs=${value}`, {})).sessionAttrs, value)
      }
      assert.strictEqual((yield* resolve("postgres://u@h/db", { PGTARGETSESSIONATTRS: "primary" })).sessionAttrs, "primary")
      assert.strictEqual(
        (yield* resolve("postgres://u@h/db?target_session_attrs=read-write", { PGTARGETSESSIONATTRS: "standby" })).sessionAttrs,
        "read-write"
      )
      const e = yield* failure("postgres://u@h/db", { PGTARGETSESSIONATTRS: "readwrite" })
      assert.strictEqual(e.parameter, "target_session_attrs")
      assert.include(e.message, 'unknown value "readwrite"')
    }))

  it.effect("load_balance_hosts (libpq 16), else PGLOADBALANCEHOSTS, else disable: random or not", () =>
    Effect.gen(function*() {
      assert.isFalse((yield* resolve("postgres://u@h1,h2/db", {})).loadBalanceHosts)
      assert.isTrue((yield* resolve("postgres://u@h1,h2/db?load_balance_hosts=random", {})).loadBalanceHosts)
      assert.isFalse((yield* resolve("postgres://u@h1,h2/db?load_balance_hosts=disable", {})).loadBalanceHosts)
      assert.isTrue((yield* resolve("postgres://u@h1,h2/db", { PGLOADBALANCEHOSTS: "random" })).loadBalanceHosts)
      assert.isFalse(
        (yield* resolve("postgres://u@h1,h2/db?load_balance_hosts=disable", { PGLOADBALANCEHOSTS: "random" })).loadBalanceHosts
      )
      const e = yield* failure("postgres://u@h1,h2/db?load_balance_hosts=roundrobin")
      assert.strictEqual(e.parameter, "load_balance_hosts")
      assert.include(e.message, 'unknown value "roundrobin" (disable, random)')
    }))

  it.effect("a parameter the driver would drop is an error naming it; libpq's harmless ones are accepted", () =>
    Effect.gen(function*() {
      for (const [query, parameter] of [
        ["keepalives=yes", "keepalives"],
        ["keepalives_idle=0", "keepalives_idle"],
        ["keepalives_count=many", "keepalives_count"],
        ["sslmode=verify", "sslmode"],
        ["sslpassword=Sup3r", "sslpassword"],
        ["target_session_attrs=sometimes", "target_session_attrs"],
        ["sslrootcert=system&sslmode=require", "sslmode"],
        ["service=prod", "service"],
        ["channel_binding=require", "channel_binding"],
        ["channel_binding=maybe", "channel_binding"]
      ] as const) {
        const e = yield* failure(`postgres://u:Pw-secret@h/db?${query}`)
        assert.strictEqual(e.parameter, parameter, query)
        assert.notInclude(e.message, "Pw-secret")
        assert.notInclude(e.message, "Sup3r")
      }
      const ok = yield* resolve(
        "postgres://u@h/db?gssencmode=disable&target_session_attrs=any&client_encoding=UTF8&application_name=app&connect_timeout=3&channel_binding=prefer",
        {}
      )
      assert.strictEqual(ok.applicationName, "app")
      assert.isTrue(Result.isSuccess(yield* Effect.result(resolve("postgres://u@h/db?channel_binding=disable", {}))))
      const binding = yield* failure("postgres://u@h/db?sslmode=require&channel_binding=require")
      assert.include(binding.message, "SCRAM channel binding (SCRAM-SHA-256-PLUS), which lo-migrate's PostgreSQL driver does not support")
      assert.include(binding.message, "channel_binding=prefer")
    }))
})

describe("PgUrl: where the connections go (libpq's host, port and Unix sockets)", () => {
  /** `resolve` with the default socket directories replaced by `dirs`. */
  const resolveIn = (url: string, env: Record<string, string>, dirs: ReadonlyArray<string>) =>
    PgUrl.resolve(Redacted.make(url), { env, home: "/nonexistent", osUser: "osuser", socketDirectories: dirs })
  const tcp = (host: string, port: number): PgUrl.PgTarget => ({ _tag: "Tcp", host, port })
  const socket = (directory: string, port: number): PgUrl.PgTarget => ({
    _tag: "Socket",
    directory,
    port,
    path: `${directory}/.s.PGSQL.${port}`
  })

  it.effect("the URL's host, else its host parameter, else PGHOST; the URL's port, else port, else PGPORT, else 5432", () =>
    Effect.gen(function*() {
      const target = (url: string, env: Record<string, string> = {}) =>
        Effect.map(resolveIn(url, env, []), (o) => ({
          target: o.target,
          host: PgUrl.hostOf(o.target),
          port: o.target.port
        }))
      assert.deepStrictEqual((yield* target("postgres://u@db.example/x")).target, tcp("db.example", 5432))
      assert.deepStrictEqual((yield* target("postgres://u@db.example:6000/x?port=7000", { PGPORT: "8000" })).target, tcp("db.example", 6000))
      assert.deepStrictEqual((yield* target("postgres://u@db.example/x?port=7000", { PGPORT: "8000" })).target, tcp("db.example", 7000))
      assert.deepStrictEqual((yield* target("postgres://u@db.example/x", { PGPORT: "8000" })).target, tcp("db.example", 8000))
      assert.deepStrictEqual((yield* target("postgres://u@[::1]:6432/x")).target, tcp("::1", 6432))
      assert.deepStrictEqual((yield* target("postgres:///x?host=10.0.0.5", { PGHOST: "ignored" })).target, tcp("10.0.0.5", 5432))
      assert.deepStrictEqual(yield* target("postgres:///x", { PGHOST: "db.internal", PGPORT: "5433" }), {
        target: tcp("db.internal", 5433),
        host: "db.internal",
        port: 5433
      })
      // a host that starts with a slash is a socket directory: as a parameter, in PGHOST, or percent-encoded
      assert.deepStrictEqual(yield* target("postgres:///x?host=/var/run/postgresql&port=5433"), {
        target: socket("/var/run/postgresql", 5433),
        host: "/var/run/postgresql",
        port: 5433
      })
      assert.deepStrictEqual((yield* target("postgres:///x", { PGHOST: "/tmp" })).target, socket("/tmp", 5432))
      assert.deepStrictEqual((yield* target("postgresql://%2Fvar%2Frun%2Fpostgresql/x")).target, socket("/var/run/postgresql", 5432))
      assert.strictEqual((yield* Effect.flip(target("postgres:///x?port=99999"))).parameter, "port")
      // a list: the first host is the target (the list: the host-list test below)
      assert.deepStrictEqual((yield* target("postgres:///x", { PGHOST: "a,b" })).target, tcp("a", 5432))
    }))

  it.effect("a host list (a Patroni cluster's URL) in each of libpq's forms: the hosts in order, one port for all or one each, a password from the password file for each", () =>
    Effect.gen(function*() {
      const targetsOf = (url: string, env: Record<string, string> = {}) =>
        Effect.map(resolveIn(url, env, []), (o) => o.hosts.map((h) => h.target))
      const two = [tcp("db1", 5432), tcp("db2", 5433)]
      assert.deepStrictEqual(yield* targetsOf("postgresql://db1:5432,db2:5433/app?target_session_attrs=read-write"), two)
      assert.deepStrictEqual(yield* targetsOf("postgresql:///app?host=db1,db2&port=5432,5433"), two)
      assert.deepStrictEqual(yield* targetsOf("postgresql:///app", { PGHOST: "db1,db2", PGPORT: "5432,5433" }), two)
      assert.deepStrictEqual(yield* targetsOf("postgresql://u:pw@db1,db2/app"), [tcp("db1", 5432), tcp("db2", 5432)])
      assert.deepStrictEqual(yield* targetsOf("postgresql://db1,db2:6000/app"), [tcp("db1", 5432), tcp("db2", 6000)])
      assert.deepStrictEqual(yield* targetsOf("postgresql://u@[::1]:5433,db2/app"), [tcp("::1", 5433), tcp("db2", 5432)])
      assert.deepStrictEqual(yield* targetsOf("postgresql:///app?host=/var/run/postgresql,db2&port=5433"), [
        socket("/var/run/postgresql", 5433),
        tcp("db2", 5433)
      ])
      const o = yield* resolveIn("postgresql://u@db1:5432,db2:5433/app?target_session_attrs=primary", {}, [])
      assert.deepStrictEqual(o.target, tcp("db1", 5432), "the first host is the target shown alone")
      assert.strictEqual(PgUrl.describeServers(o), "the first that will do of db1:5432, db2:5433 (target_session_attrs=primary)")
      assert.strictEqual(PgUrl.describeServers(yield* resolveIn("postgresql://u@db1/app", {}, [])), "db1:5432")
      // three ports for two hosts, an empty entry: refused, naming the parameter
      assert.strictEqual((yield* Effect.flip(resolveIn("postgresql:///app?host=db1,db2&port=1,2,3", {}, []))).parameter, "port")
      assert.strictEqual((yield* Effect.flip(resolveIn("postgresql:///app?host=db1,,db2", {}, []))).parameter, "host")
      // a comma elsewhere is not a host list
      assert.strictEqual((yield* Effect.flip(resolveIn("postgresql://db1:99x/a,b", {}, []))).parameter, "URL")
    }))

  it.effect("a host list: the password file is matched for each host, as libpq does", () =>
    Effect.gen(function*() {
      const home = yield* tempFiles({ ".pgpass": "db1:5432:app:u:first\ndb2:5433:app:u:second\n" })
      chmodSync(join(home, ".pgpass"), 0o600)
      const o = yield* PgUrl.resolve(Redacted.make("postgresql://u@db1:5432,db2:5433/app"), {
        env: {},
        home,
        osUser: "osuser",
        socketDirectories: []
      })
      assert.deepStrictEqual(o.hosts.map((h) => h.password === undefined ? undefined : Redacted.value(h.password)), ["first", "second"])
      assert.strictEqual(Redacted.value(o.password!), "first")
    }))

  it.effect("no host at all: libpq's socket directory, the first that holds the server's socket, else exit 2 at once", () =>
    Effect.gen(function*() {
      const empty = yield* tempFiles({})
      const withSocket = yield* tempFiles({ ".s.PGSQL.5433": "" })
      assert.deepStrictEqual(
        (yield* resolveIn("postgres:///x", { PGPORT: "5433" }, ["/nonexistent-a", empty, withSocket])).target,
        socket(withSocket, 5433)
      )
      // no socket where it looks (a directory without one, a missing directory): refused, naming both socket paths
      const e = yield* Effect.flip(resolveIn("postgres://u:Pw-secret@/x", {}, [empty, "/nonexistent-b"]))
      assert.strictEqual(e.parameter, "host")
      assert.include(e.message, `${empty}/.s.PGSQL.5432, /nonexistent-b/.s.PGSQL.5432`)
      assert.include(e.message, "PGHOST")
      assert.notInclude(e.message, "Pw-secret")
      // the shipped default: Debian's directory first, then PostgreSQL's own builds' /tmp
      assert.deepStrictEqual(PgUrl.defaultSocketDirectories, ["/var/run/postgresql", "/tmp"])
    }))

  it("normalize: libpq's user name before an empty host, which the URL parser refuses, becomes parameters", () => {
    assert.isFalse(URL.canParse("postgresql://alice@/nice?host=/tmp"))
    const plain = PgUrl.normalize("postgresql://alice@/nice?host=/tmp")
    assert.isTrue(URL.canParse(plain))
    const url = new URL(plain)
    assert.deepStrictEqual(
      [url.hostname, url.pathname, url.searchParams.get("host"), url.searchParams.get("user"), url.searchParams.get("password")],
      ["", "/nice", "/tmp", "alice", null]
    )
    const secret = new URL(PgUrl.normalize("postgres://al%40ice:p%40ss:word@/nice"))
    assert.deepStrictEqual([secret.searchParams.get("user"), secret.searchParams.get("password")], ["al@ice", "p@ss:word"])
    // a user parameter wins, as libpq's later setting does
    assert.strictEqual(new URL(PgUrl.normalize("postgres://alice@/nice?user=bob")).searchParams.get("user"), "bob")
    assert.strictEqual(new URL(PgUrl.normalize("postgres://alice@")).searchParams.get("user"), "alice")
    assert.strictEqual(new URL(PgUrl.normalize("postgres://alice@?dbname=nice")).searchParams.get("dbname"), "nice")
    // what the parser reads is left alone, and so is what cannot be helped
    for (const text of ["postgres://u:p@h:5/db?sslmode=require", "postgres:///db", "not a url", "postgres://a@b@"]) {
      assert.strictEqual(PgUrl.normalize(text), text)
    }
  })

  it.effect("postgresql://user@/db?host=... resolves: user and password from it, the password file matched as localhost", () =>
    Effect.gen(function*() {
      const dir = yield* tempFiles({ ".pgpass": "localhost:5432:nice:alice:from-file\n" })
      const options = yield* PgUrl.resolve(Redacted.make("postgresql://alice@/nice?host=/var/run/postgresql"), {
        env: {},
        home: dir,
        osUser: "osuser"
      })
      assert.deepStrictEqual(options.target, socket("/var/run/postgresql", 5432))
      assert.strictEqual(Redacted.value(options.password!), "from-file")
      const withPassword = yield* PgUrl.resolve(Redacted.make("postgresql://alice:pw@/nice?host=/tmp"), {
        env: { PGPASSWORD: "env" },
        home: dir,
        osUser: "osuser"
      })
      assert.strictEqual(withPassword.passwordSource, "URL")
      assert.strictEqual(withPassword.password, undefined) // the driver reads it from the URL's password parameter
    }))

  it.effect("libpq variables lo-migrate does not read (PGHOSTADDR, PGSERVICE, ...) are named in a warning, never their values", () =>
    Effect.gen(function*() {
      const quiet = yield* resolveIn("postgres://u@h/x", { PGHOST: "other", PGSSLMODE: "require" }, [])
      assert.deepStrictEqual(quiet.warnings, [])
      const warned = yield* resolveIn("postgres://u@h/x", {
        PGHOSTADDR: "10.9.8.7",
        PGSERVICE: "prod-secret-service",
        PGREQUIREAUTH: "scram-sha-256",
        PGCONNECT_TIMEOUT: ""
      }, [])
      assert.strictEqual(warned.warnings.length, 1)
      const [warning] = warned.warnings
      assert.include(warning, "PGHOSTADDR, PGSERVICE, PGREQUIREAUTH are set, but lo-migrate does not read them")
      assert.include(warning, "PGOPTIONS")
      assert.include(warning, "PGTARGETSESSIONATTRS", "it is read now")
      assert.include(warning, "PGLOADBALANCEHOSTS", "it is read now")
      for (const value of ["10.9.8.7", "prod-secret-service", "scram-sha-256", "PGCONNECT_TIMEOUT"]) {
        assert.notInclude(warning, value)
      }
      // where the connection goes is still the URL's
      assert.deepStrictEqual(warned.target, tcp("h", 5432))
    }))

  it.effect("over a Unix socket no TLS, whatever sslmode says (as libpq); over TCP the sslmode table applies", () =>
    Effect.gen(function*() {
      for (const mode of ["prefer", "require", "verify-full"]) {
        const { tls } = yield* resolveIn(`postgres:///x?host=/tmp&sslmode=${mode}&sslrootcert=system`.replace(
          "&sslrootcert=system",
          mode === "verify-full" ? "&sslrootcert=system" : ""
        ), {}, [])
        assert.strictEqual(tls.first, false, mode)
        assert.strictEqual(tls.fallback, undefined, mode)
        assert.strictEqual(tls.checks, `sslmode=${mode}: plaintext over a Unix socket (libpq uses no TLS there)`)
      }
      // nor are its files read there: a verify mode without any root certificate, a missing one, a client key
      for (const query of ["sslmode=verify-full", "sslmode=verify-ca&sslrootcert=/nonexistent/ca.crt", "sslcert=/nonexistent/c.crt"]) {
        const { tls } = yield* resolveIn(`postgres:///x?host=/tmp&${query}`, {}, [])
        assert.strictEqual(tls.first, false, query)
      }
      assert.strictEqual((yield* Effect.flip(resolveIn("postgres://u@h/x?sslmode=verify-full", {}, []))).parameter, "sslrootcert")
      const overTcp = yield* resolveIn("postgres://u@h/x?sslmode=require", {}, [])
      assert.notStrictEqual(overTcp.tls.first, false)
      assert.strictEqual(PgUrl.describeTarget(overTcp.target), "h:5432")
      assert.strictEqual(PgUrl.describeTarget((yield* resolveIn("postgres://u@[::1]/x", {}, [])).target), "[::1]:5432")
      assert.strictEqual(
        PgUrl.describeTarget((yield* resolveIn("postgres:///x?host=/tmp", {}, [])).target),
        "Unix socket /tmp/.s.PGSQL.5432"
      )
    }))
})

/**
 * A libpq connection URL read the way psql and pg_dump read it, turned into what `PgDatabase` hands the driver:
 * `sslmode` with libpq's meaning (`PgTls.ts`), `sslrootcert` / `sslcert` / `sslkey` / `sslcrl` read at start-up, the
 * password from the URL, else `PGPASSWORD`, else the password file (`passfile`, `PGPASSFILE` or `~/.pgpass`,
 * `PgPass.ts`), and `PGHOST` / `PGPORT` / `PGUSER` / `PGDATABASE` / `PGOPTIONS` / `PGSSLMODE` / `PGSSLROOTCERT` /
 * `PGSSLCERT` / `PGSSLKEY` / `PGSSLCRL` for what the URL leaves out.
 *
 * Where the connections go, as libpq decides it (`PgTarget`): the URL's host, else its `host` parameter, else
 * `PGHOST`, else a Unix socket in the default directory; a host that starts with `/` is a socket directory (also
 * percent-encoded in the authority, `postgresql://%2Fvar%2Frun%2Fpostgresql/db`). libpq's `postgresql://user@/db`,
 * which the WHATWG URL parser refuses, is accepted too (`normalize`). Over a Unix socket no TLS is used whatever
 * `sslmode` says, as in libpq.
 *
 * A parameter the driver would silently drop fails with `PgUrlError` naming it, and so does a file that cannot be
 * read (naming the parameter and the path), and `verify-ca` / `verify-full` with no root certificate at all (no
 * `sslrootcert`, no `PGSSLROOTCERT`, no `~/.postgresql/root.crt`), as in libpq. No message carries a password.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { readFileSync, statSync } from "node:fs"
import { userInfo } from "node:os"
import { join } from "node:path"
import * as PgPass from "./PgPass.ts"
import { isSslMode, type PemFile, plan, type SslMode, type TlsPlan } from "./PgTls.ts"

/** A URL parameter (or its environment variable) that cannot be honoured. */
export class PgUrlError extends Schema.TaggedError<PgUrlError>()("PgUrlError", {
  parameter: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `${this.parameter}: ${this.detail}`
  }
}

/**
 * Where the connections go: a TCP host and port, or a Unix socket (`directory/.s.PGSQL.port`, as libpq names it).
 */
export type PgTarget =
  | { readonly _tag: "Tcp"; readonly host: string; readonly port: number }
  | { readonly _tag: "Socket"; readonly directory: string; readonly port: number; readonly path: string }

/** The socket file of a PostgreSQL listening in `directory` on `port`. */
export const socketPath = (directory: string, port: number): string => join(directory, `.s.PGSQL.${port}`)

/** What the driver takes as the host of `target`: the host name or address, or the socket's directory. */
export const hostOf = (target: PgTarget): string => target._tag === "Socket" ? target.directory : target.host

/** A printable form of `target`: `db.example:5432`, `[::1]:5432`, `Unix socket /var/run/postgresql/.s.PGSQL.5432`. */
export const describeTarget = (target: PgTarget): string =>
  target._tag === "Socket"
    ? `Unix socket ${target.path}`
    : `${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`

/**
 * The servers of `options` for people: one host as `describeTarget` prints it; several as a list, the first that
 * accepts the connection and meets `target_session_attrs` being the one used.
 */
export const describeServers = (options: Pick<PgConnectionOptions, "hosts" | "sessionAttrs">): string =>
  (options.hosts.length === 1
    ? describeTarget(options.hosts[0]!.target)
    : `the first that will do of ${options.hosts.map((h) => describeTarget(h.target)).join(", ")}`) +
  (options.sessionAttrs === "any" ? "" : ` (target_session_attrs=${options.sessionAttrs})`)

/**
 * One host of the URL's list (libpq's `host=h1,h2`, `postgresql://h1:5432,h2:5432/db`, `PGHOST=h1,h2`), with what
 * depends on it: the TLS plan (none over a Unix socket) and the password (the password file matches by host).
 */
export interface PgHost {
  readonly target: PgTarget
  readonly tls: TlsPlan
  readonly password: Redacted.Redacted<string> | undefined
  readonly passwordSource: string | undefined
}

/** What `PgDatabase` needs beyond the URL itself (which the driver still parses for user, database, options...). */
export interface PgConnectionOptions {
  /** Where the connections go (the driver gets `hostOf(target)` and its port): the first of `hosts`. */
  readonly target: PgTarget
  /**
   * Every host, in the URL's order (one for most URLs). A pool connects to the first that accepts it and meets
   * `sessionAttrs`, as libpq does (`PgDatabase`).
   */
  readonly hosts: ReadonlyArray<PgHost>
  readonly tls: TlsPlan
  /** Set when the URL has no password: from `PGPASSWORD` or the password file. */
  readonly password: Redacted.Redacted<string> | undefined
  /** Where the password comes from: "URL", "PGPASSWORD", "password file /home/u/.pgpass"; none: no password. */
  readonly passwordSource: string | undefined
  /** From `PGUSER` / `PGDATABASE`, only for what the URL leaves out. */
  readonly username: string | undefined
  readonly database: string | undefined
  /**
   * `PGOPTIONS` (`-c search_path=app`, say), when the URL has no `options` parameter (the driver reads the URL's):
   * command-line options for the server, sent at connection start as libpq sends them.
   */
  readonly serverOptions: string | undefined
  /** The URL's `application_name`, which wins over the program's default. */
  readonly applicationName: string | undefined
  /**
   * TCP keepalive: seconds a connection may be idle before the first probe (`keepalives_idle`, default
   * `defaultKeepAliveIdleSeconds`); `undefined` with `keepalives=0` and when every host is a Unix socket.
   */
  readonly keepAliveIdleSeconds: number | undefined
  /** `target_session_attrs` (or `PGTARGETSESSIONATTRS`): what the server must be, checked when a pool starts. */
  readonly sessionAttrs: TargetSessionAttrs
  /**
   * `load_balance_hosts=random` (or `PGLOADBALANCEHOSTS`, libpq 16): each choice of a host tries `hosts` in a random
   * order, so that processes started with one URL spread over the servers that will do; `disable` (the default): in
   * the URL's order.
   */
  readonly loadBalanceHosts: boolean
  /** E.g. a password file ignored for its permissions (as libpq warns). */
  readonly warnings: ReadonlyArray<string>
}

/** The environment, `HOME` and the OS user name (libpq's default user). */
export interface PgEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly home: string
  readonly osUser: string
  /** Where to look for the server's socket when no host is given at all; `defaultSocketDirectories` by default. */
  readonly socketDirectories?: ReadonlyArray<string> | undefined
}

/**
 * libpq's default socket directory is fixed when it is built: `/var/run/postgresql` in Debian's and Red Hat's
 * packages, `/tmp` in PostgreSQL's own builds. With no host given, the first of these that holds the server's socket
 * is used; none holding one is a configuration error at once (not an outage to wait out: on a host without a local
 * server, a forgotten host would otherwise wait the whole retry budget).
 */
export const defaultSocketDirectories: ReadonlyArray<string> = ["/var/run/postgresql", "/tmp"]

/**
 * `text` as the WHATWG URL parser reads it. libpq accepts a user name with an empty host (`postgresql://user@/db`,
 * `postgresql://user:pw@/db?host=/var/run/postgresql`), which that parser refuses: the user name and password move to
 * the `user` / `password` parameters (unless those are given) and the host stays empty. As in libpq the user
 * information ends at the first `@` (one in a user name or password is written `%40`). Any other text is returned as
 * it is.
 */
export const normalize = (text: string): string => {
  // a host list first: the URL parser reads `db1,db2:6000` as one host with one port, or not at all
  const listed = hostListToParameters(text)
  if (listed !== undefined) return normalize(listed)
  if (URL.canParse(text)) return text
  const match = /^(postgres(?:ql)?:\/\/)([^/?#@]*)@([/?#].*)?$/is.exec(text)
  if (match === null) return text
  const rest = match[3] ?? ""
  const candidate = `${match[1]}${rest.startsWith("/") ? "" : "/"}${rest}`
  if (!URL.canParse(candidate)) return text
  const url = new URL(candidate)
  const userinfo = match[2]!
  const colon = userinfo.indexOf(":")
  const user = decodedComponent(colon < 0 ? userinfo : userinfo.slice(0, colon))
  const password = colon < 0 ? undefined : decodedComponent(userinfo.slice(colon + 1))
  if (user !== "" && !url.searchParams.has("user")) url.searchParams.set("user", user)
  if (password !== undefined && password !== "" && !url.searchParams.has("password")) {
    url.searchParams.set("password", password)
  }
  return url.toString()
}

/**
 * libpq's host list in the authority (`postgresql://u@db1:5432,db2:5433/app`), which the URL parser refuses, as the
 * `host` and `port` parameters (`postgresql://u@/app?host=db1,db2&port=5432,5433`; a host without a port leaves its
 * entry empty: the default). `undefined` when `text` has no such list, or has those parameters already.
 */
const hostListToParameters = (text: string): string | undefined => {
  const match = /^(postgres(?:ql)?:\/\/)((?:[^/?#@]*@)?)([^/?#@]*,[^/?#@]*)([/?#].*)?$/is.exec(text)
  if (match === null) return undefined
  const hosts: Array<string> = []
  const ports: Array<string> = []
  for (const entry of match[3]!.split(/,(?![^[]*\])/)) {
    const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(entry)
    if (m === null) return undefined
    hosts.push(m[1]!)
    ports.push(m[2] ?? "")
  }
  const rest = match[4] ?? "/"
  const [pathPart, query = ""] = rest.split(/\?(.*)/s, 2) as [string, string?]
  const params = new URLSearchParams(query)
  if (params.has("host") || params.has("port")) return undefined
  const extra = `host=${hosts.map(encodeURIComponent).join(",")}` +
    (ports.some((p) => p !== "") ? `&port=${ports.join(",")}` : "")
  const path = pathPart.startsWith("/") ? pathPart : `/${pathPart}`
  return `${match[1]}${match[2]}${path}?${query === "" ? extra : `${query}&${extra}`}`
}

/** The parameters the driver reads itself (besides `sslmode`, which is read here). */
const driverParameters = new Set(["host", "port", "user", "password", "dbname", "options", "connect_timeout"])

/** libpq parameters whose value changes nothing here, with the values that mean so. */
const harmless: Readonly<Record<string, ReadonlyArray<string>>> = {
  gssencmode: ["disable", "prefer"],
  client_encoding: ["UTF8", "utf8", "UTF-8", "utf-8"],
  sslsni: ["1"],
  fallback_application_name: [],
  // libpq's default, prefer, binds only where it can and goes on without; lo-migrate's driver never binds
  channel_binding: ["disable", "prefer"]
}

/** Read here: the libpq parameter and its environment variable. */
const ours: Readonly<Record<string, string>> = {
  sslmode: "PGSSLMODE",
  sslrootcert: "PGSSLROOTCERT",
  sslcert: "PGSSLCERT",
  sslkey: "PGSSLKEY",
  sslcrl: "PGSSLCRL",
  passfile: "PGPASSFILE",
  application_name: "PGAPPNAME",
  target_session_attrs: "PGTARGETSESSIONATTRS",
  load_balance_hosts: "PGLOADBALANCEHOSTS"
}

const fail = (parameter: string, detail: string) => Effect.fail(new PgUrlError({ parameter, detail }))

/**
 * TCP keepalive's idle time when the URL sets none. libpq turns keepalive on with the OS's idle time (two hours on
 * Linux), which neither keeps a connection through a load balancer or NAT that forgets idle flows after minutes (AWS
 * NLB 350 s, Azure's 4 min by default) nor notices such a silent drop: a client waiting for a long statement's answer
 * (the count at start-up, `status`'s pass, `verify`'s sort before its first row) would wait forever. 60 s is below
 * those limits; a lost peer is then noticed about 10 s later (Node's libuv probes every second, 10 times, on Linux).
 */
export const defaultKeepAliveIdleSeconds = 60

/**
 * libpq's `target_session_attrs`: what a server must be for a pool to use it, `read-write` (`transaction_read_only`
 * off), `read-only` (on), `primary` (not in recovery), `standby` (in recovery); `any` accepts any server, and
 * `prefer-standby` a standby among a host list's if one answers, else any (with one host: any), as libpq does.
 */
export type TargetSessionAttrs = "any" | "read-write" | "read-only" | "primary" | "standby" | "prefer-standby"
const targetSessionAttrs: ReadonlyArray<TargetSessionAttrs> = [
  "any",
  "read-write",
  "read-only",
  "primary",
  "standby",
  "prefer-standby"
]

/** libpq's keepalive parameters, read here (`keepAliveOf`). */
const keepAliveParameters = new Set(["keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"])

/** `keepalives` (0 or 1), `keepalives_idle` (seconds); `keepalives_interval` and `keepalives_count` warned about. */
const keepAliveOf = (params: URLSearchParams, targets: ReadonlyArray<PgTarget>, warnings: Array<string>) =>
  Effect.gen(function*() {
    const whole = (name: string, min: number) => {
      const text = params.get(name)
      if (text === null || text === "") return Effect.succeed(undefined)
      const n = Number(text)
      return Number.isSafeInteger(n) && n >= min && n <= 2147483
        ? Effect.succeed(n)
        : fail(name, `must be a whole number of ${name === "keepalives_count" ? "probes" : "seconds"} from ${min}, got ${JSON.stringify(text)}`)
    }
    const on = params.get("keepalives")
    if (on !== null && on !== "0" && on !== "1") return yield* fail("keepalives", `must be 0 or 1, got ${JSON.stringify(on)}`)
    const idle = yield* whole("keepalives_idle", 1)
    const tuned = ["keepalives_interval", "keepalives_count"].filter((name) => params.get(name) !== null)
    for (const name of tuned) yield* whole(name, name === "keepalives_count" ? 1 : 0)
    // a Unix socket has no TCP keepalive (the sockets apply it to TCP hosts only, so a list may mix both)
    if (on === "0" || targets.every((t) => t._tag === "Socket")) return undefined
    if (tuned.length > 0) {
      warnings.push(
        `${tuned.join(" and ")} ${tuned.length === 1 ? "is" : "are"} not applied: Node.js sets only the idle time ` +
          "before the first keepalive probe (keepalives_idle); the probes that follow are libuv's (on Linux every " +
          "second, 10 of them)"
      )
    }
    return idle ?? defaultKeepAliveIdleSeconds
  })

const errorText = (e: unknown) => e instanceof Error ? e.message : String(e)

/** A URL component decoded; a malformed escape is left as written (the driver reports it when it parses the URL). */
export const decodedComponent = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** Reads a PEM file named by `parameter`; a missing or unreadable file is a `PgUrlError` naming both. */
const readPem = (parameter: string, path: string): Effect.Effect<PemFile, PgUrlError> =>
  Effect.try({
    try: () => ({ path, pem: readFileSync(path, "utf8") }),
    catch: (e) => new PgUrlError({ parameter, detail: `cannot read ${path}: ${errorText(e)}` })
  })

const exists = (path: string) => statSync(path, { throwIfNoEntry: false }) !== undefined

/** libpq refuses a private key readable by group or others (0640 allowed when root owns it). */
const checkKeyMode = (path: string): Effect.Effect<void, PgUrlError> =>
  Effect.try({
    try: () => statSync(path),
    catch: (e) => new PgUrlError({ parameter: "sslkey", detail: `cannot read ${path}: ${errorText(e)}` })
  }).pipe(Effect.flatMap((stat) => {
    const loose = stat.uid === 0 ? (stat.mode & 0o037) !== 0 : (stat.mode & 0o077) !== 0
    return loose
      ? fail(
        "sslkey",
        `private key file ${path} has group or world access (mode ${(stat.mode & 0o777).toString(8)}); ` +
          "it must be 0600 or less (0640 if owned by root), as libpq requires"
      )
      : Effect.void
  }))

const portOf = (parameter: string, value: string | undefined) => {
  if (value === undefined || value === "") return Effect.succeed(undefined)
  const port = Number(value)
  return Number.isInteger(port) && port >= 1 && port <= 65535
    ? Effect.succeed(port)
    : fail(parameter, `is not a port number: ${JSON.stringify(value)}`)
}

/** The TLS plan over a Unix socket: plaintext, as libpq does there whatever `sslmode` asks. */
const overSocket = (mode: SslMode): TlsPlan => ({
  mode,
  first: false,
  fallback: undefined,
  checks: `sslmode=${mode}: plaintext over a Unix socket (libpq uses no TLS there)`,
  clientKey: undefined
})

/** A host that names a socket directory (libpq: it starts with a slash). */
const isSocketDirectory = (host: string) => host.startsWith("/")

/**
 * Where the connections go, as libpq decides: the URL's host (percent-decoded: `%2Ftmp` is the directory `/tmp`),
 * else its `host` parameter, else `PGHOST`, else a Unix socket in the default directory; the URL's port, else its
 * `port` parameter, else `PGPORT`, else 5432.
 */
const targetsOf = (url: URL, environment: PgEnvironment): Effect.Effect<ReadonlyArray<PgTarget>, PgUrlError> =>
  Effect.gen(function*() {
    const params = url.searchParams
    const env = environment.env
    const authority = url.hostname === "" ? undefined : decodedComponent(url.hostname)
    const given = [authority, params.get("host") ?? undefined, env["PGHOST"]].find((h) => h !== undefined && h !== "")
    const hosts = given === undefined ? [] : given.split(/,(?![^[]*\])/).map((h) => h.trim().replace(/^\[(.*)\]$/, "$1"))
    if (hosts.some((h) => h === "")) {
      return yield* fail("host", `has an empty entry in the list ${JSON.stringify(given)}; name every host`)
    }
    const [portName, portText] = ([["URL port", url.port], ["port", params.get("port")], ["PGPORT", env["PGPORT"]]] as const)
      .find(([, text]) => text !== undefined && text !== null && text !== "") ?? ["port", ""]
    const portTexts = (portText ?? "").split(",")
    if (portTexts.length > 1 && portTexts.length !== Math.max(1, hosts.length)) {
      return yield* fail(portName, `lists ${portTexts.length} ports for ${hosts.length} hosts; give one port, or one per host`)
    }
    const ports: Array<number> = []
    for (const text of portTexts) ports.push((yield* portOf(portName, text.trim())) ?? 5432)
    const portFor = (i: number) => ports[portTexts.length === 1 ? 0 : i]!
    if (hosts.length > 0) {
      return hosts.map((host, i): PgTarget =>
        isSocketDirectory(host)
          ? { _tag: "Socket", directory: host, port: portFor(i), path: socketPath(host, portFor(i)) }
          : { _tag: "Tcp", host, port: portFor(i) }
      )
    }
    const port = portFor(0)
    const candidates = environment.socketDirectories ?? defaultSocketDirectories
    const directory = candidates.find((d) => exists(socketPath(d, port)))
    if (directory === undefined) {
      return yield* fail(
        "host",
        `no host is given (none in the URL, no host parameter, no PGHOST), and no PostgreSQL listens on a Unix socket ` +
          `where libpq looks by default (${candidates.map((d) => socketPath(d, port)).join(", ")}); give the ` +
          "server's host name, or host=<socket directory> (then a server that is starting is waited for)"
      )
    }
    return [{ _tag: "Socket", directory, port, path: socketPath(directory, port) }]
  })

/** Reads `raw` (a `postgres://` / `postgresql://` URL) with libpq's meaning. */
export const resolve = Effect.fn("PgUrl.resolve")(function*(
  raw: Redacted.Redacted<string>,
  environment: PgEnvironment
): Effect.fn.Return<PgConnectionOptions, PgUrlError> {
  const text = normalize(Redacted.value(raw))
  if (!URL.canParse(text)) return yield* fail("URL", "is not a valid URL")
  const url = new URL(text)
  const params = url.searchParams
  const env = environment.env
  for (const key of new Set(params.keys())) {
    if (driverParameters.has(key) || key in ours || keepAliveParameters.has(key)) continue
    const values = harmless[key]
    if (values === undefined) {
      return yield* fail(
        key,
        "is not supported by lo-migrate's PostgreSQL driver; remove it from the URL (it would be ignored otherwise)"
      )
    }
    const value = params.get(key) ?? ""
    if (key === "channel_binding" && value === "require") {
      return yield* fail(
        key,
        "=require asks for SCRAM channel binding (SCRAM-SHA-256-PLUS), which lo-migrate's PostgreSQL driver does " +
          "not support; use channel_binding=prefer (libpq's default: no binding where it is not available) with " +
          "sslmode=verify-full, which authenticates the server by its certificate instead"
      )
    }
    if (values.length > 0 && !values.includes(value)) {
      return yield* fail(key, `=${value} is not supported (only ${values.join(", ")}); remove it from the URL`)
    }
  }
  const param = (name: string): string | undefined => {
    const value = params.get(name) ?? (ours[name] !== undefined ? env[ours[name]] : undefined)
    return value === "" ? undefined : value
  }

  const targets = yield* targetsOf(url, environment)
  const target = targets[0]!
  const attrs = param("target_session_attrs") ?? "any"
  if (!targetSessionAttrs.includes(attrs as TargetSessionAttrs)) {
    return yield* fail("target_session_attrs", `unknown value ${JSON.stringify(attrs)} (${targetSessionAttrs.join(", ")})`)
  }
  const sessionAttrs = attrs as TargetSessionAttrs
  const loadBalance = param("load_balance_hosts") ?? "disable"
  if (loadBalance !== "disable" && loadBalance !== "random") {
    return yield* fail("load_balance_hosts", `unknown value ${JSON.stringify(loadBalance)} (disable, random)`)
  }

  // TLS
  const modeText = param("sslmode")
  const rootCertName = param("sslrootcert")
  const mode = modeText ?? (rootCertName === "system" ? "verify-full" : "prefer")
  if (!isSslMode(mode)) {
    return yield* fail("sslmode", `unknown value ${JSON.stringify(mode)} (disable, allow, prefer, require, verify-ca, verify-full)`)
  }
  // over TCP: the sslmode table, its files read now
  const tcpPlan = Effect.gen(function*() {
    const dotPostgresql = join(environment.home, ".postgresql")
    const defaultRoot = join(dotPostgresql, "root.crt")
    // libpq: no sslrootcert means ~/.postgresql/root.crt when it exists (then even require checks the chain, as
    // verify-ca); verify-ca / verify-full refuse to connect without it (the system CAs only with sslrootcert=system)
    const rootCert = rootCertName === "system"
      ? "system" as const
      : rootCertName !== undefined
      ? yield* readPem("sslrootcert", rootCertName)
      : mode !== "disable" && exists(defaultRoot)
      ? yield* readPem("sslrootcert", defaultRoot)
      : undefined
    if (rootCert === undefined && (mode === "verify-ca" || mode === "verify-full")) {
      return yield* fail(
        "sslrootcert",
        `sslmode=${mode} verifies the server's certificate but there is no root certificate: neither sslrootcert nor ` +
          `PGSSLROOTCERT is set and the default ${defaultRoot} does not exist; give sslrootcert=<file> (the CA that ` +
          "signed the server's certificate), or sslrootcert=system to trust the system's CAs (Node's trusted CAs and " +
          "NODE_EXTRA_CA_CERTS; only with verify-full), as libpq requires"
      )
    }
    const certName = param("sslcert") ?? (exists(join(dotPostgresql, "postgresql.crt")) ? join(dotPostgresql, "postgresql.crt") : undefined)
    const keyName = param("sslkey") ?? join(dotPostgresql, "postgresql.key")
    let clientCert: { cert: PemFile; key: Redacted.Redacted<string> } | undefined = undefined
    if (certName !== undefined && mode !== "disable") {
      const cert = yield* readPem("sslcert", certName)
      yield* checkKeyMode(keyName)
      clientCert = { cert, key: Redacted.make((yield* readPem("sslkey", keyName)).pem) }
    } else if (params.get("sslkey") !== null && mode !== "disable") {
      return yield* fail("sslkey", "is given without sslcert (the client certificate it belongs to)")
    }
    const crlName = param("sslcrl")
    const crl = crlName !== undefined && mode !== "disable" ? yield* readPem("sslcrl", crlName) : undefined
    const tls = plan({ mode, rootCert, clientCert, crl })
    if ("parameter" in tls) return yield* fail(tls.parameter, tls.detail)
    return tls
  })
  // libpq uses no TLS over a Unix socket, whatever sslmode says, and reads none of its files
  const tcpTls = targets.some((t) => t._tag === "Tcp") ? yield* tcpPlan : undefined
  const tlsOf = (t: PgTarget): TlsPlan => t._tag === "Socket" || tcpTls === undefined ? overSocket(mode) : tcpTls
  const tls = tlsOf(target)

  // where to, as whom (libpq's defaults: the OS user, a database named like the user)
  const urlUser = url.username !== "" ? decodedComponent(url.username) : params.get("user") ?? undefined
  const username = urlUser === undefined ? env["PGUSER"] : undefined
  const urlDatabase = url.pathname.replace(/^\//, "") !== ""
    ? decodedComponent(url.pathname.replace(/^\//, ""))
    : params.get("dbname") ?? undefined
  const database = urlDatabase === undefined ? env["PGDATABASE"] : undefined
  const user = urlUser ?? username ?? env["USER"] ?? environment.osUser

  // the password: the URL's, else PGPASSWORD, else the password file
  const warnings: Array<string> = []
  const ignored = ignoredEnvironmentVariables.filter((name) => (env[name] ?? "") !== "")
  if (ignored.length > 0) {
    warnings.push(
      `${ignored.join(", ")} ${ignored.length === 1 ? "is" : "are"} set, but lo-migrate does not read ` +
        `${ignored.length === 1 ? "it" : "them"} (psql would): the connection is what the URL says, completed by ` +
        `the variables lo-migrate reads (${environmentVariables.join(", ")}); put what you need in the URL`
    )
  }
  // per host: the password file is looked up for each (libpq matches its lines by host and port)
  const passwordFor = (t: PgTarget) =>
    Effect.gen(function*() {
      if (url.password !== "" || params.get("password") !== null) {
        return { password: undefined, passwordSource: "URL" }
      }
      if (env["PGPASSWORD"] !== undefined && env["PGPASSWORD"] !== "") {
        return { password: Redacted.make(env["PGPASSWORD"]), passwordSource: "PGPASSWORD" }
      }
      const file = param("passfile") ?? join(environment.home, ".pgpass")
      const found = yield* PgPass.readLookup(file, {
        host: PgPass.targetHost(hostOf(t)),
        port: String(t.port),
        database: urlDatabase ?? database ?? user,
        user
      }).pipe(Effect.mapError((detail) => new PgUrlError({ parameter: "passfile", detail: `cannot read ${file}: ${detail}` })))
      if (found.warning !== undefined && !warnings.includes(found.warning)) warnings.push(found.warning)
      return found.password === undefined
        ? { password: undefined, passwordSource: undefined }
        : { password: Redacted.make(found.password), passwordSource: `password file ${file}` }
    })
  const hosts: Array<PgHost> = []
  for (const t of targets) hosts.push({ target: t, tls: tlsOf(t), ...(yield* passwordFor(t)) })
  const { password, passwordSource } = hosts[0]!
  return {
    target,
    hosts,
    tls,
    password,
    passwordSource,
    username,
    database,
    serverOptions: params.get("options") === null && env["PGOPTIONS"] !== "" ? env["PGOPTIONS"] : undefined,
    applicationName: param("application_name"),
    keepAliveIdleSeconds: yield* keepAliveOf(params, targets, warnings),
    sessionAttrs,
    loadBalanceHosts: loadBalance === "random",
    warnings
  }
})

/**
 * libpq's environment variables that lo-migrate does not read, and which would change the connection for psql: a
 * warning names those that are set (never their values), so that nobody wonders why they had no effect.
 */
export const ignoredEnvironmentVariables = [
  "PGHOSTADDR", "PGSERVICE", "PGSERVICEFILE", "PGREQUIREAUTH",
  "PGCHANNELBINDING", "PGGSSENCMODE", "PGSSLCERTMODE", "PGSSLCRLDIR", "PGSSLMINPROTOCOLVERSION",
  "PGSSLMAXPROTOCOLVERSION", "PGREQUIRESSL", "PGCONNECT_TIMEOUT", "PGCLIENTENCODING"
] as const

/** The environment variables `resolve` reads (besides `HOME` and `USER`). */
export const environmentVariables = [
  "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGOPTIONS", ...Object.values(ours)
] as const

/** `HOME` and the OS user around `env` (libpq's default user is the OS user's name). */
export const environmentOf = (env: Readonly<Record<string, string | undefined>>): PgEnvironment => ({
  env,
  home: env["HOME"] ?? process.env["HOME"] ?? userInfo().homedir,
  osUser: env["USER"] ?? process.env["USER"] ?? userInfo().username
})

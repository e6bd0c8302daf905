/**
 * A libpq connection URL read the way psql and pg_dump read it, turned into what `PgDatabase` hands the driver:
 * `sslmode` with libpq's meaning (`PgTls.ts`), `sslrootcert` / `sslcert` / `sslkey` / `sslcrl` read at start-up, the
 * password from the URL, else `PGPASSWORD`, else the password file (`passfile`, `PGPASSFILE` or `~/.pgpass`,
 * `PgPass.ts`), and `PGHOST` / `PGPORT` / `PGUSER` / `PGDATABASE` / `PGSSLMODE` / `PGSSLROOTCERT` / `PGSSLCERT` /
 * `PGSSLKEY` / `PGSSLCRL` for what the URL leaves out.
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
import { isSslMode, type PemFile, plan, type TlsPlan } from "./PgTls.ts"

/** A URL parameter (or its environment variable) that cannot be honoured. */
export class PgUrlError extends Schema.TaggedError<PgUrlError>()("PgUrlError", {
  parameter: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `${this.parameter}: ${this.detail}`
  }
}

/** What `PgDatabase` needs beyond the URL itself (which the driver still parses for host, port, user, database...). */
export interface PgConnectionOptions {
  readonly tls: TlsPlan
  /** Set when the URL has no password: from `PGPASSWORD` or the password file. */
  readonly password: Redacted.Redacted<string> | undefined
  /** Where the password comes from: "URL", "PGPASSWORD", "password file /home/u/.pgpass"; none: no password. */
  readonly passwordSource: string | undefined
  /** From `PGHOST` etc., only for what the URL leaves out. */
  readonly host: string | undefined
  readonly port: number | undefined
  readonly username: string | undefined
  readonly database: string | undefined
  /** The URL's `application_name`, which wins over the program's default. */
  readonly applicationName: string | undefined
  /** E.g. a password file ignored for its permissions (as libpq warns). */
  readonly warnings: ReadonlyArray<string>
}

/** The environment, `HOME` and the OS user name (libpq's default user). */
export interface PgEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly home: string
  readonly osUser: string
}

/** The parameters the driver reads itself (besides `sslmode`, which is read here). */
const driverParameters = new Set(["host", "port", "user", "password", "dbname", "options", "connect_timeout"])

/** libpq parameters whose value changes nothing here, with the values that mean so. */
const harmless: Readonly<Record<string, ReadonlyArray<string>>> = {
  gssencmode: ["disable", "prefer"],
  target_session_attrs: ["any"],
  client_encoding: ["UTF8", "utf8", "UTF-8", "utf-8"],
  sslsni: ["1"],
  fallback_application_name: []
}

/** Read here: the libpq parameter and its environment variable. */
const ours: Readonly<Record<string, string>> = {
  sslmode: "PGSSLMODE",
  sslrootcert: "PGSSLROOTCERT",
  sslcert: "PGSSLCERT",
  sslkey: "PGSSLKEY",
  sslcrl: "PGSSLCRL",
  passfile: "PGPASSFILE",
  application_name: "PGAPPNAME"
}

const fail = (parameter: string, detail: string) => Effect.fail(new PgUrlError({ parameter, detail }))

const errorText = (e: unknown) => e instanceof Error ? e.message : String(e)

/** A URL component decoded; a malformed escape is left as written (the driver reports it when it parses the URL). */
const decoded = (text: string): string => {
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

/** Reads `raw` (a `postgres://` / `postgresql://` URL) with libpq's meaning. */
export const resolve = Effect.fn("PgUrl.resolve")(function*(
  raw: Redacted.Redacted<string>,
  environment: PgEnvironment
): Effect.fn.Return<PgConnectionOptions, PgUrlError> {
  const text = Redacted.value(raw)
  if (!URL.canParse(text)) return yield* fail("URL", "is not a valid URL")
  const url = new URL(text)
  const params = url.searchParams
  const env = environment.env
  for (const key of new Set(params.keys())) {
    if (driverParameters.has(key) || key in ours) continue
    const values = harmless[key]
    if (values === undefined) {
      return yield* fail(
        key,
        "is not supported by lo-migrate's PostgreSQL driver; remove it from the URL (it would be ignored otherwise)"
      )
    }
    const value = params.get(key) ?? ""
    if (values.length > 0 && !values.includes(value)) {
      return yield* fail(key, `=${value} is not supported (only ${values.join(", ")}); remove it from the URL`)
    }
  }
  if ((params.get("host") ?? "").includes(",") || url.hostname.includes(",")) {
    return yield* fail("host", "several hosts are not supported; give one")
  }
  const param = (name: string): string | undefined => {
    const value = params.get(name) ?? (ours[name] !== undefined ? env[ours[name]] : undefined)
    return value === "" ? undefined : value
  }

  // TLS
  const modeText = param("sslmode")
  const rootCertName = param("sslrootcert")
  const mode = modeText ?? (rootCertName === "system" ? "verify-full" : "prefer")
  if (!isSslMode(mode)) {
    return yield* fail("sslmode", `unknown value ${JSON.stringify(mode)} (disable, allow, prefer, require, verify-ca, verify-full)`)
  }
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

  // where to, as whom (libpq's defaults: the OS user, a database named like the user)
  const urlHost = url.hostname.replace(/^\[(.*)\]$/, "$1")
  const host = urlHost === "" && params.get("host") === null ? env["PGHOST"] : undefined
  const port = url.port === "" && params.get("port") === null ? yield* portOf("PGPORT", env["PGPORT"]) : undefined
  const urlUser = url.username !== "" ? decoded(url.username) : params.get("user") ?? undefined
  const username = urlUser === undefined ? env["PGUSER"] : undefined
  const urlDatabase = url.pathname.replace(/^\//, "") !== ""
    ? decoded(url.pathname.replace(/^\//, ""))
    : params.get("dbname") ?? undefined
  const database = urlDatabase === undefined ? env["PGDATABASE"] : undefined
  const user = urlUser ?? username ?? env["USER"] ?? environment.osUser

  // the password: the URL's, else PGPASSWORD, else the password file
  const warnings: Array<string> = []
  let password: Redacted.Redacted<string> | undefined = undefined
  let passwordSource: string | undefined = undefined
  if (url.password !== "" || params.get("password") !== null) {
    passwordSource = "URL"
  } else if (env["PGPASSWORD"] !== undefined && env["PGPASSWORD"] !== "") {
    password = Redacted.make(env["PGPASSWORD"])
    passwordSource = "PGPASSWORD"
  } else {
    const file = param("passfile") ?? join(environment.home, ".pgpass")
    const found = yield* PgPass.readLookup(file, {
      host: PgPass.targetHost(urlHost !== "" ? urlHost : params.get("host") ?? host),
      port: String(url.port !== "" ? url.port : params.get("port") ?? port ?? 5432),
      database: urlDatabase ?? database ?? user,
      user
    }).pipe(Effect.mapError((detail) => new PgUrlError({ parameter: "passfile", detail: `cannot read ${file}: ${detail}` })))
    if (found.warning !== undefined) warnings.push(found.warning)
    if (found.password !== undefined) {
      password = Redacted.make(found.password)
      passwordSource = `password file ${file}`
    }
  }
  return {
    tls,
    password,
    passwordSource,
    host,
    port,
    username,
    database,
    applicationName: param("application_name"),
    warnings
  }
})

/** The environment variables `resolve` reads (besides `HOME` and `USER`). */
export const environmentVariables = [
  "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", ...Object.values(ours)
] as const

/** `HOME` and the OS user around `env` (libpq's default user is the OS user's name). */
export const environmentOf = (env: Readonly<Record<string, string | undefined>>): PgEnvironment => ({
  env,
  home: env["HOME"] ?? process.env["HOME"] ?? userInfo().homedir,
  osUser: env["USER"] ?? process.env["USER"] ?? userInfo().username
})

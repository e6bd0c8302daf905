/**
 * The connection pool: `@effect/sql-pg`'s own wire client, sized by the caller (the pipeline passes its stage
 * concurrency), checked once at start-up so that a wrong URL or an unreachable server fails fast with a
 * `DatabaseError` whose text never contains the password. With `options` (`PgUrl.resolve`: what the CLI passes) the
 * URL means what it means to libpq: `sslmode`, root and client certificates, the password from `PGPASSWORD` or the
 * password file; `prefer` / `allow` fall back (plaintext / TLS) when the first way is refused at start-up.
 */
import { DatabaseError, scrubSecrets } from "@lo-migrate/core"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import type { ConnectionOptions } from "node:tls"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import * as ClusterClient from "./ClusterClient.ts"
import { describeSqlError, sqlStateOf, toDatabaseError, urlSecrets } from "./DatabaseErrors.ts"
import {
  decodedComponent,
  describeTarget,
  hostOf,
  normalize,
  type PgConnectionOptions,
  type PgHost,
  type TargetSessionAttrs
} from "./PgUrl.ts"
import { type Transport, withClientKey } from "./PgTls.ts"
import { preparedIfDifferent } from "./SaslPrep.ts"
import { readSessionKind } from "./SessionKind.ts"
import { guardedSocket, tcpTargetOf } from "./StalledSockets.ts"

export interface PgConnectionConfig {
  /** `postgres://user:password@host:port/database?sslmode=...` */
  readonly url: Redacted.Redacted<string>
  /** Pool size: the number of statements that can run at once (readers + committers + source). */
  readonly maxConnections: number
  /** `application_name` shown in `pg_stat_activity`; defaults to `lo-migrate`. */
  readonly applicationName?: string | undefined
  /** Time allowed to open one connection (TCP + TLS + auth). Defaults to the driver's 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /**
   * Cut a connection that was used and then moved no byte for this long (`StalledSockets.ts`): only for a pool whose
   * statements are all short (never a `count(*)` over the table or an index build). Over TCP or a Unix socket: the
   * target of `options`, or without them a URL's TCP host (not its `host` parameter).
   */
  readonly stallTimeout?: { readonly millis: number; readonly describe: string } | undefined
  /**
   * TLS options for the driver (e.g. `{ ca }`, a CA to trust besides Node's own). Setting them makes TLS mandatory
   * whatever the URL's `sslmode` and `options` say. The CLI does not set them (it passes `options`); tests use them
   * to trust a throwaway server's self-signed certificate.
   */
  readonly tls?: ConnectionOptions | undefined
  /**
   * The URL read as libpq reads it (`PgUrl.resolve`): TLS, password, environment. Without it the driver reads the URL
   * its own way (no `sslmode`: plaintext; `require`: verified), which only tests on the plaintext server rely on.
   */
  readonly options?: PgConnectionOptions | undefined
  /**
   * Keep each statement prepared on its connection under a name (the driver's cache; the default): PostgreSQL then
   * parses and plans it once per connection. Off (every statement sent unnamed, ~15% more PostgreSQL CPU on the bench)
   * behind a pooler in transaction mode, which hands each transaction to any server connection, where the names
   * are unknown (26000, "prepared statement ... does not exist"). Off as well when the pooler gave itself away by
   * refusing the startup parameter `statement_timeout` (PgBouncer).
   */
  readonly preparedStatements?: boolean | undefined
  /**
   * Log the warning when the startup parameter `statement_timeout` is refused or silently dropped (default). Off for a
   * second pool to the same server, whose first pool's warning has told it already.
   */
  readonly warnWhenRefused?: boolean | undefined
}

/** Whether the first way of `prefer` / `allow` was refused so that the other one is worth trying. */
const refused = (transport: Transport, error: SqlError): boolean =>
  transport === false
    // allow: the server rejected plaintext (pg_hba.conf: hostssl only): 28000
    ? sqlStateOf(error) === "28000"
    // prefer: the server answered the SSLRequest with "N"
    : /refused TLS|does not support TLS/i.test(`${error.cause.message ?? ""} ${String(error.cause.cause)}`)

/**
 * The server-side `statement_timeout` of lo-migrate's sessions: none, as pg_dump does, unless the URL's `options`
 * set one (`?options=-c%20statement_timeout%3D...`, which is then the one sent). A database's or role's default,
 * which DBAs set to protect production from slow application queries, would otherwise cancel (57014) the statements
 * that are long by design on tens of millions of rows: the count at start-up and in `status`, the pending-rows index
 * build, verify's one streamed query. It stopped every run at start-up. lo-migrate bounds its short statements
 * itself, on the client (`--pg-statement-timeout`: `StatementTimeout.ts`, `StalledSockets.ts`).
 */
export const sessionParameters = (url: string, serverOptions?: string): Readonly<Record<string, string>> => {
  const options = serverOptions ?? (URL.canParse(url) ? new URL(url).searchParams.get("options") ?? "" : "")
  return /statement_timeout/i.test(options) ? {} : { statement_timeout: "0" }
}

/**
 * The server refused a startup parameter: PgBouncer answers "unsupported startup parameter: statement_timeout"
 * unless its `ignore_startup_parameters` lists it. The pool then connects without it (`make`).
 */
const refusedStartupParameter = (error: unknown): error is SqlError =>
  isSqlError(error) && /unsupported startup parameter/i.test(describeSqlError(error))

/** What a database's or role's default `statement_timeout` still applies to when the session could not lift it. */
const subjectToDefault = "what lo-migrate cannot run in a transaction with SET LOCAL (the optional index build; the " +
  "counts and verify's rows lift it that way)"

/**
 * The session asked for statement_timeout=0 at start-up and has `setting`: a pooler accepted the parameter and dropped
 * it (PgBouncer's `ignore_startup_parameters`), so the database's or role's default applies after all.
 */
const timeoutDropped = (setting: string) =>
  `statement_timeout is ${setting} in lo-migrate's sessions although they asked for 0 at start-up: a pooler in front ` +
  `of PostgreSQL dropped the parameter (PgBouncer's ignore_startup_parameters), so the database's or role's default ` +
  `cancels after ${setting} ${subjectToDefault}; set it to 0 for this role (ALTER ROLE ... SET statement_timeout = ` +
  `0) or connect to PostgreSQL directly`

/**
 * The pool, checked with one `SELECT 1`. Fails with `DatabaseError` (password scrubbed) if it cannot connect. A host
 * list gets a client that follows the cluster through a failover (`ClusterClient`).
 */
export const make = (given: PgConnectionConfig): ReturnType<typeof makeFor> => {
  const hosts = given.options?.hosts ?? []
  return hosts.length <= 1 ? makeFor(given) : ClusterClient.make(choose(given, hosts), given.options!.sessionAttrs)
}

/**
 * A pool of the first host of `hosts` that accepts the connection and meets target_session_attrs, as libpq chooses
 * (in a random order under load_balance_hosts=random); the driver gets that host and port, and a URL without the
 * lists, which it could not read.
 */
const choose = (given: PgConnectionConfig, hosts: ReadonlyArray<PgHost>) => {
  const url = new URL(normalize(Redacted.value(given.url)))
  url.searchParams.delete("host")
  url.searchParams.delete("port")
  const options = given.options!
  return Effect.gen(function*() {
    const scope = yield* Effect.scope
    const failures: Array<readonly [PgHost, DatabaseError]> = []
    // prefer-standby: a standby among them first, then any (libpq's two passes)
    const passes: ReadonlyArray<TargetSessionAttrs> = options.sessionAttrs === "prefer-standby"
      ? ["standby", "any"]
      : [options.sessionAttrs]
    // load_balance_hosts=random: libpq shuffles the list once per connection attempt, before its passes
    const order = options.loadBalanceHosts ? yield* Random.shuffle(hosts) : hosts
    for (const sessionAttrs of passes) {
      for (const host of order) {
        // each host's pool in a scope of its own: a server that connects but fails the check is let go at once
        const own = yield* Scope.fork(scope, "sequential")
        const attempt = yield* Effect.result(makeFor({
          ...given,
          url: Redacted.make(url.toString()),
          // the host's target, TLS plan and password in place of the first host's
          options: { ...options, ...host, sessionAttrs }
        }).pipe(Scope.provide(own)))
        if (Result.isSuccess(attempt)) return { client: attempt.success, server: describeTarget(host.target) }
        yield* Scope.close(own, Exit.void)
        failures.push([host, attempt.failure])
      }
    }
    return yield* new DatabaseError({
      operation: "connect",
      detail: `none of the ${hosts.length} hosts would do` +
        (options.sessionAttrs === "any" ? "" : ` (target_session_attrs=${options.sessionAttrs})`) + ": " +
        failures.map(([host, e]) => `${describeTarget(host.target)}: ${e.detail}`).join("; "),
      // during a failover one of them may come back or be promoted
      retryable: failures.some(([, e]) => e.retryable)
    })
  })
}

/** The password a (normalized) URL carries, its `password` parameter or its user information's, decoded. */
const urlPassword = (url: string): string | undefined => {
  if (!URL.canParse(url)) return undefined
  const parsed = new URL(url)
  const password = parsed.searchParams.get("password") ?? (parsed.password === "" ? null : decodedComponent(parsed.password))
  return password === null || password === "" ? undefined : password
}

/** `make` for the one host of `given.options.target`. */
const makeFor = (given: PgConnectionConfig) => {
  // libpq's `postgresql://user@/db`, which the driver's URL parser would refuse, in a form it reads
  const config = { ...given, url: Redacted.make(normalize(Redacted.value(given.url))) }
  const options = config.options
  // the password as typed, and as SASLprep prepares it where that differs (tried after a failed authentication)
  const typed = options?.password === undefined ? urlPassword(Redacted.value(config.url)) : Redacted.value(options.password)
  const prepared = typed === undefined ? undefined : preparedIfDifferent(typed)
  const secrets = [
    ...urlSecrets(given.url),
    ...urlSecrets(config.url),
    ...(options?.password === undefined ? [] : [Redacted.value(options.password)]),
    ...(prepared === undefined ? [] : [prepared])
  ]
  // where the stall guard connects: where libpq's reading of the URL points (a TCP host or a Unix socket)
  const target = config.stallTimeout === undefined
    ? undefined
    : options === undefined
    ? tcpTargetOf(Redacted.value(config.url))
    : options.target._tag === "Socket"
    ? { path: options.target.path }
    : { host: options.target.host, port: options.target.port }
  const stall = config.stallTimeout
  const keepAliveMillis = options?.keepAliveIdleSeconds === undefined ? undefined : options.keepAliveIdleSeconds * 1000
  const parameters = sessionParameters(Redacted.value(config.url), options?.serverOptions)
  const poolWith = (
    transport: Transport | undefined,
    startupParameters: Readonly<Record<string, string>>,
    password: Redacted.Redacted | undefined,
    prepare = config.preparedStatements ?? true
  ) =>
    PgClient.make({
      url: config.url,
      maxConnections: Math.max(1, Math.floor(config.maxConnections)),
      applicationName: options?.applicationName ?? config.applicationName ?? "lo-migrate",
      startupParameters,
      prepare,
      ...(config.connectTimeout !== undefined ? { connectTimeout: config.connectTimeout } : {}),
      // Idle connections are closed after a minute; the pool reopens them on demand.
      idleTimeout: "60 seconds",
      ...(config.tls !== undefined
        ? { ssl: config.tls }
        : transport !== undefined && options !== undefined
        ? { ssl: withClientKey(options.tls, transport) }
        : {}),
      ...(password !== undefined ? { password } : {}),
      ...(options !== undefined ? { host: hostOf(options.target), port: options.target.port } : {}),
      ...(options?.username !== undefined ? { username: options.username } : {}),
      ...(options?.database !== undefined ? { database: options.database } : {}),
      ...(options?.serverOptions !== undefined ? { startupOptions: options.serverOptions } : {}),
      // TCP keepalive (PgUrl: keepalives, keepalives_idle): keeps a connection that waits for a long statement
      // through a load balancer that forgets idle flows, and notices when such a flow was dropped
      ...(keepAliveMillis !== undefined ? { keepAlive: Duration.millis(keepAliveMillis) } : {}),
      ...(target !== undefined && stall !== undefined
        ? {
          stream: () =>
            guardedSocket({ ...target, stallMillis: stall.millis, describe: stall.describe, keepAliveMillis })
        }
        : {})
    }).pipe(
      // The pool connects lazily: prove now that the URL, credentials and database are right (and, when the session
      // asked for statement_timeout=0, that it got it)
      Effect.tap((client) =>
        startupParameters.statement_timeout === undefined
          ? client`SELECT 1`
          : client<{ readonly t: string }>`SELECT current_setting('statement_timeout') AS t`.pipe(
            Effect.flatMap(([row]) =>
              row === undefined || row.t === "0" || config.warnWhenRefused === false
                ? Effect.void
                : Effect.logWarning(timeoutDropped(row.t))
            )
          )
      )
    )
  const pool = (transport: Transport | undefined, password: Redacted.Redacted | undefined) =>
    Object.keys(parameters).length === 0 ? poolWith(transport, parameters, password) : poolWith(transport, parameters, password).pipe(
      Effect.catchIf(refusedStartupParameter, (error) =>
        (config.warnWhenRefused === false ? Effect.void : Effect.logWarning(
          `PostgreSQL (or a pooler in front of it) refused the startup parameter statement_timeout=0 ` +
            `(${scrubSecrets(describeSqlError(error), secrets)}); connecting without it, so a database or role ` +
            `default statement_timeout applies to ${subjectToDefault}; ` +
            `statements are sent unnamed, since a pooler in transaction mode does not keep prepared statements`
        )).pipe(Effect.andThen(poolWith(transport, {}, password, false))))
    )
  const plan = config.tls === undefined ? options?.tls : undefined
  const fallback = plan?.fallback
  const connectedWith = (password: Redacted.Redacted | undefined) =>
    plan === undefined || fallback === undefined
      ? pool(plan?.first, password)
      : pool(plan.first, password).pipe(
        Effect.catchIf(
          (e): e is SqlError => isSqlError(e) && refused(plan.first, e),
          () => pool(fallback, password)
        )
      )
  // a password that SASLprep changes is stored prepared in a SCRAM verifier, which the driver does not prepare for:
  // after a failed authentication (28P01), the prepared form, as libpq would have sent it (SaslPrep.ts)
  const connected = prepared === undefined ? connectedWith(options?.password) : connectedWith(options?.password).pipe(
    Effect.catchIf(
      (e): e is SqlError => isSqlError(e) && sqlStateOf(e) === "28P01",
      () => connectedWith(Redacted.make(prepared))
    )
  )
  // a connect the driver gave up on says so without saying after how long: the bound it was given
  const timeoutNote = (detail: string) =>
    detail.includes("Connection timed out")
      ? ` (no answer within ${Duration.format(Duration.fromInputUnsafe(config.connectTimeout ?? "5 seconds"))}, the connect timeout)`
      : ""
  return connected.pipe(
    Effect.mapError((e) => {
      const error = toDatabaseError("connect", e, secrets)
      const note = timeoutNote(error.detail)
      return plan === undefined && note === "" ? error : new DatabaseError({
          operation: error.operation,
          detail: `${error.detail}${note}${plan === undefined ? "" : ` (${plan.checks})`}`,
          retryable: error.retryable
        })
    }),
    Effect.tap((client) =>
      options === undefined ? Effect.void : checkSessionAttrs(client, options.sessionAttrs, describeTarget(options.target))
    )
  )
}

/**
 * What `target_session_attrs` asks of the one server lo-migrate connects to, checked when a pool starts (for a host
 * list also at each new choice after a sign of a failover: `ClusterClient`): the
 * server as libpq would refuse it, a `DatabaseError` that is not retryable (the URL names the wrong server; during a
 * failover the refused connects and resets before it are retried as usual).
 */
const checkSessionAttrs = (client: SqlClient.SqlClient, attrs: TargetSessionAttrs, server: string) =>
  attrs === "any" || attrs === "prefer-standby"
    ? Effect.void
    : readSessionKind.pipe(
      Effect.provideService(SqlClient.SqlClient, client),
      Effect.mapError((e) => toDatabaseError("connect", e)),
      Effect.flatMap(({ readOnly, standby }) => {
        const meets: Record<typeof attrs, boolean> = {
          "read-write": !readOnly,
          "read-only": readOnly,
          primary: !standby,
          standby
        }
        const is = standby ? "a standby (in recovery)" : readOnly ? "read-only (transaction_read_only is on)" : "a primary that accepts writes"
        return meets[attrs] ? Effect.void : Effect.fail(new DatabaseError({
          operation: "connect",
          detail: `target_session_attrs=${attrs}: the server at ${server} is ${is}; point the URL at ` +
            (attrs === "read-write" || attrs === "primary" ? "the primary" : "a standby") +
            ", or list the cluster's hosts (host=h1,h2: the first that will do is used)",
          retryable: false
        }))
      })
    )

/** `PgClient` + `SqlClient` for the given URL. Fails with `DatabaseError` (password scrubbed) if it cannot connect. */
export const layer = (config: PgConnectionConfig): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseError> =>
  PgClient.layerFrom(make(config))

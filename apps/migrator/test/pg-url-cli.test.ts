/**
 * The CLI (`lo-migrate status`, a child process as operators run it) with a libpq URL against a TLS-only PostgreSQL 15
 * of the test's own (`TlsServer`, self-signed certificate): the server's CA named by `sslrootcert` (no
 * `NODE_EXTRA_CA_CERTS`) and the password of a `scram-sha-256` role from a password file (`PGPASSFILE`), so the
 * URL carries no secret. A wrong CA is a fatal error naming what was checked (exit 3), a missing one a configuration
 * error naming the parameter and the path (exit 2). And `--connect-timeout` for status, verify and finalize, against a
 * server that accepts and never answers. No PostgreSQL on 5432 and no Ceph needed.
 */
import { assert, describe, it } from "@effect/vitest"
import { PgDatabase } from "@lo-migrate/postgres"
import { TlsServer } from "@lo-migrate/postgres/testing"
import { Context, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { rootCertificates } from "node:tls"
import { runCli, setUpSchema } from "./cli.ts"

const password = "Cli-Scram_pw-93"

describe("the CLI with a libpq URL (sslrootcert, password file) over TLS", () => {
  it.live("status: verify-full against sslrootcert, password from PGPASSFILE: exit 0; wrong CA exit 3; missing CA exit 2", () =>
    Effect.gen(function*() {
      const server = yield* TlsServer.makeWith({ passwordRoles: ["lo_pw"] })
      const admin = Context.get(
        yield* Layer.build(PgDatabase.layer({ url: Redacted.make(server.url("postgres")), maxConnections: 1, tls: { ca: server.ca } })),
        SqlClient.SqlClient
      )
      yield* Effect.orDie(
        Effect.andThen(admin.unsafe(`CREATE ROLE lo_pw LOGIN SUPERUSER PASSWORD '${password}'`), setUpSchema).pipe(
          Effect.provideService(SqlClient.SqlClient, admin)
        )
      )
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "lo-migrate-pgurl-cli-"))),
        (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
      )
      const passfile = join(dir, "pgpass")
      yield* Effect.sync(() => {
        writeFileSync(passfile, `127.0.0.1:${server.port}:postgres:lo_pw:${password}\n`)
        chmodSync(passfile, 0o600)
        writeFileSync(join(dir, "wrong-ca.crt"), rootCertificates[0]!)
      })
      const url = (ca: string) => `postgresql://lo_pw@127.0.0.1:${server.port}/postgres?sslmode=verify-full&sslrootcert=${ca}`

      const ok = yield* runCli(["status"], { PG_URL: url(server.caFile), PGPASSFILE: passfile })
      assert.strictEqual(ok.code, 0, ok.stderr)
      assert.notInclude(ok.stdout + ok.stderr, password)

      const wrong = join(dir, "wrong-ca.crt")
      const refused = yield* runCli(["status"], { PG_URL: url(wrong), PGPASSFILE: passfile })
      assert.strictEqual(refused.code, 3, refused.stderr)
      assert.include(refused.stderr, `certificate chain checked against sslrootcert ${wrong} and host name checked`)
      assert.notInclude(refused.stdout + refused.stderr, password)

      const missing = join(dir, "missing-ca.crt")
      const misconfigured = yield* runCli(["status"], { PG_URL: url(missing), PGPASSFILE: passfile })
      assert.strictEqual(misconfigured.code, 2, misconfigured.stderr)
      assert.include(misconfigured.stderr, `--pg-url: sslrootcert: cannot read ${missing}`)
    }).pipe(Effect.scoped), 90_000)
})

describe("--connect-timeout for the commands besides migrate", () => {
  /** A TCP endpoint that accepts connections and never sends a byte (a hung server, a black-holing middlebox). */
  const silentServer = Effect.acquireRelease(
    Effect.callback<{ readonly server: Net.Server; readonly accepted: Array<number>; readonly sockets: Array<Net.Socket> }>(
      (resume) => {
        const accepted: Array<number> = []
        const sockets: Array<Net.Socket> = []
        const server = Net.createServer((socket) => {
          accepted.push(Date.now())
          sockets.push(socket)
        }).listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, accepted, sockets })))
      }
    ),
    ({ server, sockets }) =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
        server.close()
      })
  )

  it.live("status, verify and finalize give a connection --connect-timeout to answer, not the driver's 5 s", () =>
    Effect.gen(function*() {
      const commands = [["status"], ["verify"], ["finalize"]]
      const runs = yield* Effect.all(
        commands.map((command) =>
          Effect.gen(function*() {
            const { accepted, server } = yield* silentServer
            const port = (server.address() as Net.AddressInfo).port
            // sslmode=disable: one connection per attempt (prefer tries TLS, then plain)
            const env = {
              PG_URL: `postgresql://nobody@127.0.0.1:${port}/none?sslmode=disable`,
              S3_URL: "http://127.0.0.1:1",
              S3_BUCKET: "b"
            }
            const run = yield* runCli([...command, "--connect-timeout", "8", "--retry-budget", "1"], env)
            // from the first connection accepted to the first attempt given up (the retry warning's timestamp)
            const warning = run.stderr.split("\n").find((l) => l.includes("connect failed"))
            const seconds = warning === undefined || accepted.length === 0
              ? undefined
              : (Date.parse(warning.slice(0, 24)) - accepted[0]!) / 1000
            return { command, run, seconds }
          })
        ),
        { concurrency: "unbounded" }
      )
      for (const { command, run, seconds } of runs) {
        assert.strictEqual(run.code, 3, `${command}: ${run.stderr}`)
        assert.include(run.stderr, "Connection timed out (no answer within 8s, the connect timeout)")
        // the driver's default ended that attempt after 5 s before
        assert.isAtLeast(seconds!, 7.5, `${command}: the first connect attempt was given up after ${seconds} s`)
      }
    }).pipe(Effect.scoped), 120_000)
})

/**
 * The Unix socket of the test server, for tests that connect the way a DBA on the database host does
 * (`postgresql://user@/db?host=/var/run/postgresql`): the directories the server listens in
 * (`unix_socket_directories`) and its port, read over the current connection, and the first socket file of them
 * that this host can see. A server on another host (or with no socket) fails the test, saying so.
 */
import * as Effect from "effect/Effect"
import { SqlClient } from "effect/sql"
import { existsSync } from "node:fs"
import { join } from "node:path"

export interface ServerSocket {
  readonly directory: string
  readonly port: number
  readonly path: string
}

export const serverSocket = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ readonly dirs: string; readonly port: string }>`
    SELECT current_setting('unix_socket_directories') AS dirs, current_setting('port') AS port`
  const port = Number(row?.port ?? 5432)
  const directories = (row?.dirs ?? "").split(",").map((d) => d.trim()).filter((d) => d.startsWith("/"))
  const directory = directories.find((d) => existsSync(join(d, `.s.PGSQL.${port}`)))
  if (directory === undefined) {
    return yield* Effect.die(
      new Error(
        `this test connects over the test server's Unix socket, but none of its unix_socket_directories ` +
          `(${row?.dirs ?? "none"}) holds .s.PGSQL.${port} on this host: run PostgreSQL on this host ` +
          "(pg_ctlcluster --skip-systemctl-redirect 15 main start) and point PG_TEST_URL at it"
      )
    )
  }
  return { directory, port, path: join(directory, `.s.PGSQL.${port}`) } satisfies ServerSocket
})

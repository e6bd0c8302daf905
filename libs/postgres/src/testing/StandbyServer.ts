/**
 * A throwaway PostgreSQL 15 server that is a standby, for tests of what a client meets when it is pointed at a replica
 * (the shared server on 127.0.0.1:5432 has no replica, and its `pg_hba.conf` allows no replication connection): a
 * fresh cluster on a free loopback port, first a primary that `seed` fills, then shut down cleanly and started again
 * with `standby.signal`. From then on it is in recovery (`pg_is_in_recovery()`), answers read-only queries (hot standby)
 * and refuses every write (SQLSTATE 25006), as a streaming replica does. It follows no primary (no `primary_conninfo`),
 * which changes nothing a client can see. Stopped and removed when the scope closes, bounded in time like every
 * cluster of a test's own (`OwnCluster.ts`).
 *
 * If the server cannot be started the effect dies with what was tried and how to make it work: tests that need it
 * fail, never skip.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import {
  chownToPostgres,
  clusterFailure,
  freePort,
  haltCluster,
  loopbackSettings,
  makeClusterDir,
  startCluster,
  startSeeded
} from "./OwnCluster.ts"

export interface StandbyServerInfo {
  readonly port: number
  /** `postgresql://postgres@127.0.0.1:<port>/<database>` (trust authentication). */
  readonly url: (database: string) => string
}

const howTo = "this test starts its own PostgreSQL 15 and turns it into a standby"

/** Starts the server as a primary, runs `seed` on its `postgres` database, then makes it a standby. */
export const make = <E>(
  seed: Effect.Effect<void, E, SqlClient.SqlClient>
): Effect.Effect<StandbyServerInfo, never, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const dir = yield* makeClusterDir("lo-migrate-pgstandby-")
    const url = (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}`
    const settings = loopbackSettings(dir, port)
    const step = (what: string, f: () => void) =>
      Effect.try({ try: f, catch: clusterFailure(`${what} (${dir}, port ${port})`, dir, howTo) }).pipe(Effect.orDie)
    // the seeding client's pool is closed before the restart
    yield* startSeeded(dir, port, seed, howTo)
    yield* step("restart PostgreSQL as a standby", () => {
      haltCluster(dir, "fast")
      writeFileSync(join(dir, "data", "standby.signal"), "")
      chownToPostgres([join(dir, "data", "standby.signal")])
      startCluster(dir, settings)
    })
    return { port, url }
  })

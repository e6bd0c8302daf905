/**
 * A throwaway PostgreSQL 15 cluster of two servers, for tests of what a client meets in a failover: a primary and a
 * streaming standby of it (`pg_basebackup -R`), each on a free loopback port, both of the test's own (the shared server
 * on 127.0.0.1:5432 is never stopped). `failover` does what Patroni does when the primary's host goes away: the primary
 * stops (`stopPrimary`) and the standby is promoted (`promoteStandby`). `demoteOldPrimary` brings the old primary back as a standby that follows nobody:
 * it accepts connections and refuses every write (SQLSTATE 25006), as a demoted primary does until it has caught up.
 *
 * The primary stops with a fast shutdown, which sends every committed transaction to the connected standby first, so
 * the promoted standby has what the primary committed. Stopped and removed when the scope closes, bounded in time like
 * every cluster of a test's own (`OwnCluster.ts`). If a server cannot be started the effect dies with what was tried
 * and how to make it work: tests that need it fail, never skip.
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
  pgBinDir,
  run,
  startCluster,
  startSeeded,
  stopCluster
} from "./OwnCluster.ts"

export interface ReplicatedClusterInfo {
  readonly primaryPort: number
  readonly standbyPort: number
  /** `postgresql://postgres@127.0.0.1:<port>/<database>` (trust authentication) for one of the two servers. */
  readonly url: (port: number, database: string) => string
  /**
   * libpq's host list of both servers, the primary first: `postgresql://postgres@127.0.0.1:<p>,127.0.0.1:<s>/<db>`
   * with `query` appended (e.g. `target_session_attrs=read-write`).
   */
  readonly hostListUrl: (database: string, query: string) => string
  /** Stops the primary (fast shutdown: what it committed has reached the standby). */
  readonly stopPrimary: Effect.Effect<void>
  /** Promotes the standby; returns once it accepts writes. */
  readonly promoteStandby: Effect.Effect<void>
  /** `stopPrimary`, then `promoteStandby`. */
  readonly failover: Effect.Effect<void>
  /** Starts the old primary again as a standby of nobody: in recovery, read-only (25006 for every write). */
  readonly demoteOldPrimary: Effect.Effect<void>
}

const howTo = "this test starts its own PostgreSQL 15 primary and a streaming standby of it, and fails over"

/** Starts the primary, runs `seed` on its `postgres` database, then clones it into a streaming standby. */
export const make = <E>(
  seed: Effect.Effect<void, E, SqlClient.SqlClient>
): Effect.Effect<ReplicatedClusterInfo, never, Scope.Scope> =>
  Effect.gen(function*() {
    const primaryPort = yield* freePort
    const standbyPort = yield* freePort
    const primaryDir = yield* makeClusterDir("lo-migrate-pgprimary-")
    const standbyDir = yield* makeClusterDir("lo-migrate-pgreplica-")
    const url = (port: number, database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}`
    const step = (what: string, dir: string, f: () => void) =>
      Effect.try({ try: f, catch: clusterFailure(what, dir, howTo) }).pipe(Effect.orDie)
    yield* startSeeded(primaryDir, primaryPort, seed, howTo, [standbyDir])
    yield* Effect.acquireRelease(
      step(`clone the primary into a standby (${standbyDir}, port ${standbyPort})`, standbyDir, () => {
        // initdb's pg_hba.conf lets replication connections from 127.0.0.1 in (trust); -R writes standby.signal and
        // primary_conninfo, so the clone streams from the primary once started; a fast checkpoint, not one spread over
        // minutes
        run(
          join(pgBinDir(), "pg_basebackup"),
          ["-h", "127.0.0.1", "-p", String(primaryPort), "-U", "postgres", "-D", join(standbyDir, "data"), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"],
          60_000,
          true
        )
        startCluster(standbyDir, loopbackSettings(standbyDir, standbyPort))
      }).pipe(Effect.onError(() => stopCluster(standbyDir))),
      () => stopCluster(standbyDir)
    )
    const stopPrimary = step(`stop the primary (port ${primaryPort})`, primaryDir, () => haltCluster(primaryDir, "fast"))
    const promoteStandby = step(`promote the standby (port ${standbyPort})`, standbyDir, () =>
      void run(join(pgBinDir(), "pg_ctl"), ["-D", join(standbyDir, "data"), "-w", "-t", "30", "promote"], 40_000, true))
    const demoteOldPrimary = step(`start the old primary as a standby (port ${primaryPort})`, primaryDir, () => {
      const signal = join(primaryDir, "data", "standby.signal")
      writeFileSync(signal, "")
      chownToPostgres([signal])
      startCluster(primaryDir, loopbackSettings(primaryDir, primaryPort))
    })
    return {
      primaryPort,
      standbyPort,
      url,
      hostListUrl: (database, query) =>
        `postgresql://postgres@127.0.0.1:${primaryPort},127.0.0.1:${standbyPort}/${database}${query === "" ? "" : `?${query}`}`,
      stopPrimary,
      promoteStandby,
      failover: Effect.andThen(stopPrimary, promoteStandby),
      demoteOldPrimary
    }
  })

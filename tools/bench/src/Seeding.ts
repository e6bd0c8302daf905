/**
 * The bench database: created and seeded with the run's objects, or, with `--db`, reused when it was seeded with the
 * same mix and seed (else dropped and seeded again); dropped at the end unless `--keep-db`.
 */
import { createDatabase, databaseExists, dropDatabase } from "@lo-migrate/postgres/testing"
import * as Effect from "effect/Effect"
import { fmtMiB, fmtNum } from "./Format.ts"
import { seed, seededWith } from "./Seed.ts"
import { note, onDb, type Session } from "./Session.ts"

/** Makes the database ready and returns the report's seeding line. */
export const prepareDatabase = Effect.fn("Seeding.prepare")(function*(session: Session) {
  const { adminUrl, dbName, objects, bytes, options } = session
  if (options.db !== undefined && (yield* databaseExists(adminUrl, dbName))) {
    const meta = yield* onDb(session, seededWith).pipe(Effect.orElseSucceed(() => undefined))
    if (meta !== undefined && meta.seed === options.seed && meta.mix === options.mix.name && meta.objects === objects.length) {
      yield* note(`reusing database ${dbName} (seeded with the same mix and seed)`)
      return "seeding: reused"
    }
    yield* dropDatabase(adminUrl, dbName)
  }
  yield* createDatabase(adminUrl, dbName)
  const t0 = performance.now()
  let lastTenth = -1
  yield* onDb(
    session,
    seed({
      seed: options.seed,
      mix: options.mix,
      objects,
      onProgress: (d, t) => {
        const tenth = Math.floor((d / t) * 10)
        if (tenth !== lastTenth) {
          lastTenth = tenth
          process.stderr.write(`[bench] seeding ${d}/${t}\n`)
        }
      }
    })
  )
  const ms = performance.now() - t0
  const line = `seeding: ${objects.length} objects, ${fmtMiB(bytes)} MiB in ${fmtNum(ms / 1000)} s (${
    fmtNum(bytes / 1048576 / (ms / 1000))
  } MiB/s, server-side)`
  yield* note(line)
  return line
})

/** Drops the bench database unless `--keep-db` (a failure to drop is reported, not fatal). */
export const releaseDatabase = (session: Session) =>
  session.options.keepDb
    ? Effect.void
    : dropDatabase(session.adminUrl, session.dbName).pipe(
      Effect.catch((e) => note(`could not drop ${session.dbName}: ${String(e)}`))
    )

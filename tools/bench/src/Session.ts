/**
 * One bench run's fixed facts, derived once from the options: where the migrator and the helpers are, the database and
 * its URL, the S3 settings, the seeded objects, and the lists the measurements and report sections accumulate in.
 */
import { databaseUrl, defaultAdminUrl } from "@lo-migrate/postgres/testing"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import type { SqlClient } from "effect/sql"
import { cpus, loadavg, totalmem } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { pgLayer } from "./Db.ts"
import { makeObjects, type ObjectSpec, totalBytes } from "./Mix.ts"
import type { BenchOptions } from "./Options.ts"
import { fmtMiB, fmtNum } from "./Format.ts"
import { type Measurement, mibPerSec } from "./Measurement.ts"
import { type S3Env, s3EnvFrom } from "./S3.ts"

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, "../../..")

export const paths = {
  root,
  worker: join(here, "worker.ts"),
  stages: join(here, "stages.ts"),
  // The built CLI, as `nx run migrator:start` and the Docker image run it (bench.sh builds it first). Loading the
  // TypeScript sources instead (type stripping) costs ~30 MiB more RSS.
  migratorMain: join(root, "apps/migrator/dist/main.js"),
  results: join(here, "../results"),
  node: process.execPath
} as const

export interface Session {
  readonly options: BenchOptions
  readonly runId: string
  readonly adminUrl: string
  readonly dbName: string
  readonly dbUrl: string
  readonly s3: S3Env | undefined
  readonly objects: ReadonlyArray<ObjectSpec>
  readonly bytes: number
  readonly measurements: Ref.Ref<ReadonlyArray<Measurement>>
  readonly sections: Ref.Ref<ReadonlyArray<string>>
}

/** A progress line on stderr (the report itself goes to stdout). */
export const note = (text: string) => Console.error(`[bench] ${text}`)

export const makeSession = Effect.fn("Session.make")(function*(options: BenchOptions) {
  const now = new Date(yield* Clock.currentTimeMillis)
  const runId = `${now.toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "_").toLowerCase()}_${process.pid}`
  const adminUrl = options.pgUrl ?? process.env["PG_TEST_URL"] ?? defaultAdminUrl
  const dbName = options.db ?? `lo_bench_${runId}`
  const objects = makeObjects(options.mix, options.seed)
  const session: Session = {
    options,
    runId,
    adminUrl,
    dbName,
    dbUrl: databaseUrl(adminUrl, dbName),
    s3: s3EnvFrom(process.env),
    objects,
    bytes: totalBytes(objects),
    measurements: yield* Ref.make<ReadonlyArray<Measurement>>([]),
    sections: yield* Ref.make<ReadonlyArray<string>>([])
  }
  return session
})

/** A bucket name unique to this run. */
export const bucketName = (session: Session, suffix: string) => `lo-bench-${session.runId.replace(/_/g, "-")}-${suffix}`

/** Runs `effect` on a small pool of the bench database. */
export const onDb = <A, E, R>(session: Session, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provide(pgLayer(session.dbUrl, 2)))

/** Records measurements (in order) and prints a line for each. */
export const record = Effect.fn("Session.record")(function*(session: Session, ms: ReadonlyArray<Measurement>) {
  for (const m of ms) {
    yield* Ref.update(session.measurements, (all) => [...all, m])
    yield* note(
      `${m.name}: ${
        m.error ??
          `${fmtNum(m.wallMs / 1000)} s, ${fmtNum(mibPerSec(m))} MiB/s, ${fmtNum(m.objects / (m.wallMs / 1000))} obj/s, peak RSS ${
            fmtMiB(m.peakRssBytes)
          } MiB`
      }`
    )
  }
})

/** Adds a section (markdown) after the table of the report. */
export const addSection = (session: Session, section: string) => Ref.update(session.sections, (all) => [...all, section])

export const machine = (): string => {
  const cpu = cpus()
  return `${cpu.length} × ${cpu[0]?.model ?? "?"}, ${Math.round(totalmem() / 1024 ** 3)} GiB RAM, Node ${process.version}, ` +
    `load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`
}

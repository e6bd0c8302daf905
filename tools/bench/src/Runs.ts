/**
 * Child processes of the bench: a measurement helper (`worker.ts`), and the migrator CLI (or the instrumented pipeline
 * of `stages.ts`) on a fresh bucket, checked afterwards: every row has its sha2 and the bucket holds every object.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { SqlClient } from "effect/sql"
import { cpuDelta, type ChildResult, measureChild, sampleCpu } from "./Proc.ts"
import type { Measurement } from "./Measurement.ts"
import type { BenchOptions } from "./Options.ts"
import { bucketStats, createBucket, deleteBucket, makeClient } from "./S3.ts"
import { resetSha2 } from "./Seed.ts"
import { bucketName, note, onDb, paths, type Session } from "./Session.ts"
import type { WorkerResult } from "./worker.ts"

interface WorkerOutput {
  readonly results: ReadonlyArray<WorkerResult>
  readonly peakRssBytes: number
}

/** Runs `worker.ts <kind> <options>`; its last stdout line is its JSON result. A failed worker is one failed row. */
export const runWorker = Effect.fn("Runs.worker")(function*(kind: string, options: object, defaultKind: Measurement["kind"]) {
  const child = yield* measureChild(paths.node, ["--conditions=development", paths.worker, kind, JSON.stringify(options)], { echoStderr: "    " })
  const last = child.stdout.trim().split("\n").pop() ?? ""
  if (child.code !== 0 || !last.startsWith("{")) {
    const tail = child.stderr.trim().split("\n").slice(-3).join(" / ")
    const failed: Measurement = {
      name: kind,
      kind: defaultKind,
      objects: 0,
      bytes: 0,
      wallMs: child.wallMs,
      cpuMs: child.cpuMs,
      peakRssBytes: child.peakRssBytes,
      error: `exit ${child.code ?? child.signal}: ${tail}`
    }
    return [failed] as ReadonlyArray<Measurement>
  }
  const out = JSON.parse(last) as WorkerOutput
  return out.results.map((r): Measurement => ({ ...r, kind: r.kind ?? defaultKind, peakRssBytes: out.peakRssBytes }))
})

export interface MigratorRun {
  readonly measurement: Measurement
  readonly stdout: string
  readonly stderr: string
}

export const shellWords = (text: string): ReadonlyArray<string> => text.split(/\s+/).filter((w) => w.length > 0)

/**
 * The V8 flags and the glibc malloc settings the migrator ships with (`nx run migrator:start`, the Docker image; see
 * apps/migrator/README.md): a small young generation, a floor under the old generation's allocation limit (without it
 * V8 starts marking right after each major GC of this small heap), and freed buffers of 128 KiB and more returned to
 * the system at once. `--heap-growing` (not shipped) adds V8's growth factor.
 */
export const shippedNodeFlags = (
  session: { readonly options: Pick<BenchOptions, "semiSpace" | "oldSpaceFloor" | "heapGrowing"> }
): ReadonlyArray<string> => [
  `--max-semi-space-size=${session.options.semiSpace}`,
  ...(session.options.oldSpaceFloor > 0 ? [`--initial-old-space-size=${session.options.oldSpaceFloor}`] : []),
  ...(session.options.heapGrowing > 0 ? [`--heap-growing-percent=${session.options.heapGrowing}`] : [])
]
export const shippedMallocEnv: NodeJS.ProcessEnv = { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072" }

/** The migrator's environment for `bucket`: secrets by environment, never on the command line. */
export const migratorEnv = (session: Session, bucket: string): NodeJS.ProcessEnv => ({
  ...shippedMallocEnv,
  ...process.env,
  PG_URL: session.dbUrl,
  S3_URL: session.s3!.endpoint,
  S3_BUCKET: bucket,
  AWS_ACCESS_KEY_ID: session.s3!.accessKeyId,
  AWS_SECRET_ACCESS_KEY: session.s3!.secretAccessKey,
  AWS_REGION: session.s3!.region
})

/** Node's arguments for a migrator run (or for `stages.ts` with `stages`). */
export const migratorArgv = (session: Session, extra: ReadonlyArray<string>, profileDir?: string, stages?: object) => {
  const o = session.options
  return [
    ...(profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]),
    // as `nx run migrator:start` and the Docker image start it (see apps/migrator/README.md)
    ...shippedNodeFlags(session),
    ...o.nodeExtra,
    ...(stages === undefined
      ? [paths.migratorMain, "--skip-batch-job-check", "--interval", o.quick ? "2" : "5", ...o.migratorExtra.flatMap(shellWords), ...extra]
      : ["--conditions=development", paths.stages, JSON.stringify(stages)])
  ]
}

let bucketSeq = 0
/** A fresh bucket for one migration, every row's sha2 reset first. */
export const freshBucket = Effect.fn("Runs.freshBucket")(function*(session: Session) {
  const client = makeClient(session.s3!, 4)
  const bucket = bucketName(session, `m${++bucketSeq}`)
  yield* onDb(session, resetSha2)
  yield* createBucket(client, bucket)
  return { client, bucket }
})

/**
 * After a migration into `bucket` (then deleted): what is wrong, if anything (exit codes, rows without sha2, objects or
 * bytes missing from the bucket), and the rows and bytes done.
 */
export const checkMigration = Effect.fn("Runs.checkMigration")(
  function*(session: Session, client: ReturnType<typeof makeClient>, bucket: string, children: ReadonlyArray<ChildResult>) {
    const [counted] = yield* onDb(
      session,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        return yield* sql<{ readonly done: number; readonly bytes: bigint | number | null }>`
          SELECT count(*)::int AS done, sum(size)::int8 AS bytes FROM _nice_binary WHERE sha2 IS NOT NULL`
      })
    )
    const stored = yield* bucketStats(client, bucket)
    yield* deleteBucket(client, bucket).pipe(
      Effect.catch((e) => Console.error(`[bench] could not delete bucket ${bucket}: ${String(e.cause)}`))
    )
    const done = counted?.done ?? 0
    const problems: Array<string> = []
    for (const child of children) if (child.code !== 0) problems.push(`exit ${child.code ?? child.signal}`)
    if (done !== session.objects.length) problems.push(`${done}/${session.objects.length} rows have sha2`)
    if (stored.objects !== session.objects.length || stored.bytes !== session.bytes) {
      problems.push(`bucket holds ${stored.objects} objects / ${stored.bytes} bytes, expected ${session.objects.length} / ${session.bytes}`)
    }
    return { done, bytes: Number(counted?.bytes ?? 0), problems }
  }
)

/**
 * Runs the migrator CLI (or, with `stages`, the instrumented pipeline of stages.ts) on a fresh bucket with every row's
 * sha2 reset, then checks that every row got its sha2 and the bucket holds every object.
 */
export const runMigrator = Effect.fn("Runs.migrator")(
  function*(session: Session, label: string, extra: ReadonlyArray<string>, profileDir?: string, stages?: object) {
    const { client, bucket } = yield* freshBucket(session)
    const sys0 = sampleCpu()
    const child = yield* measureChild(paths.node, migratorArgv(session, extra, profileDir, stages), {
      env: migratorEnv(session, bucket),
      cwd: paths.root
    })
    const sys1 = sampleCpu()
    const { done, bytes, problems } = yield* checkMigration(session, client, bucket, [child])
    if (problems.length > 0) {
      yield* note(`${label}: ${problems.join("; ")}`)
      yield* note(child.stderr.trim().split("\n").slice(-15).join("\n"))
    }
    const run: MigratorRun = {
      measurement: {
        name: label,
        kind: "migrator",
        objects: done,
        bytes,
        wallMs: child.wallMs,
        cpuMs: child.cpuMs,
        peakRssBytes: child.peakRssBytes,
        ...cpuDelta(sys0, sys1),
        note: extra.join(" "),
        ...(problems.length > 0 ? { error: problems.join("; ") } : {})
      },
      stdout: child.stdout,
      stderr: child.stderr
    }
    return run
  }
)

/** The last status block the migrator printed (it starts with a rule of asterisks) and what follows it. */
export const finalStatus = (stdout: string): string => {
  const lines = stdout.trimEnd().split("\n")
  const start = lines.findLastIndex((l) => /^\*{20,}$/.test(l.trim()))
  return (start >= 0 ? lines.slice(start) : lines.slice(-20)).join("\n")
}

/**
 * The benchmark: seeds a throwaway database with a reproducible mix of large objects, then measures on the same data
 * the PostgreSQL read limit, the S3 write limit, a naive one-row-at-a-time baseline, and the migrator end to end (as a
 * separate process, with defaults and with tuned options), prints a table, the ratios and the issue's targets, and
 * profiles the migrator.
 *
 *   npx node --conditions=development tools/bench/src/main.ts [--quick] [--mix default|quick|huge|SPEC] [options]
 *   bash tools/bench/bench.sh [--quick] [options]        (starts Ceph RGW if S3_ENDPOINT is unset)
 *
 * Run with --help for the options.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { cpus, loadavg, tmpdir, totalmem } from "node:os"
import { mkdirSync, readdirSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { attachValues } from "./Args.ts"
import {
  createDatabase,
  databaseExists,
  databaseUrl,
  defaultAdminUrl,
  dropDatabase
} from "@lo-migrate/postgres/testing"
import { pgLayer } from "./Db.ts"
import { describeMix, makeObjects, parseMix, totalBytes } from "./Mix.ts"
import { cpuDelta, runMeasured, sampleCpu } from "./Proc.ts"
import { readProfile, renderProfile, summarize } from "./Profile.ts"
import { best, fmtMiB, fmtNum, type Measurement, mibPerSec, renderVerdict, resultsTable, verdict } from "./Report.ts"
import { bucketStats, createBucket, deleteBucket, makeClient, s3EnvFrom } from "./S3.ts"
import { exportObjects, measureRclone } from "./Rclone.ts"
import { resetSha2, seed, seededWith } from "./Seed.ts"
import { renderStages, type StageReport } from "./StageReport.ts"
import { renderThrottleAccuracy, throttleAccuracy } from "./ThrottleAccuracy.ts"
import type { WorkerResult } from "./worker.ts"

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, "../../..")
const workerPath = join(here, "worker.ts")
const stagesPath = join(here, "stages.ts")
// The built CLI, as `nx run migrator:start` and the Docker image run it (bench.sh builds it first). Loading the
// TypeScript sources instead (type stripping) costs ~30 MiB more RSS.
const migratorMain = join(root, "apps/migrator/dist/main.js")
const nodeBin = process.execPath

const usage = `bench: lo-migrate throughput and memory against the limits of PostgreSQL and S3 on this machine

  --quick                 small mix (300 objects of 1-256 KiB + 2 of 8 MiB), fewer probes: CI's smoke run
  --mix NAME|SPEC         default | quick | huge | inmem | groups COUNT:MIN-MAX,... e.g. 20000:1K-256K,20:8M-64M
  --seed N                RNG seed of the mix and of the bytes (default 42)
  --only LIST             comma list of: pg,hash,s3,combined,rclone,naive,migrator,tuned,throttle,stages,profile
                          (default: pg,hash,s3,combined,rclone,naive,migrator,profile, ~15 min on the default mix;
                          tuned, throttle and stages on request)
  --read-concurrency L    PG read limit: connections to try (default 1,2)
  --s3-concurrency L      S3 write limit: requests in flight to probe (default 8,16,32,64; all objects then go
                          at the best two)
  --tuned ARGS            migrator options to try as "tuned" (repeatable; the fastest is kept)
  --migrator-arg ARG      extra option for every migrator run (repeatable)
  --db NAME               use this database name; with --keep-db a later run reuses it if seeded alike
  --keep-db               do not drop the database at the end
  --node-arg ARG          extra Node/V8 flag for every migrator run, e.g. --node-arg --max-old-space-size=256
  --rounds N              measure the S3 write limit, the combined limit and the migrator with defaults N times,
                          back to back in a rotating order (default 3, 1 with --quick); the 80% target is judged
                          on the median of the ratios within a round, the RSS target on the worst run
  --semi-space MiB        V8 --max-semi-space-size of the migrator runs (default 8, as the start target ships it)
  --out FILE              also write the results as JSON (default tools/bench/results/<time>.json)
  --pg-url URL            admin PostgreSQL URL (default $PG_TEST_URL or ${defaultAdminUrl})
S3 comes from S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION (bench.sh starts Ceph RGW for you).`

// Options whose value is itself a list of options ("--tuned '--storer-threads 64'"): node's parseArgs refuses a value
// that starts with a dash unless it is attached with "=", so attach it.
const argv = attachValues(process.argv.slice(2), new Set(["--tuned", "--migrator-arg", "--node-arg"]))

const { values: args } = parseArgs({
  args: argv,
  options: {
    quick: { type: "boolean", default: false },
    mix: { type: "string" },
    seed: { type: "string", default: "42" },
    only: { type: "string" },
    "read-concurrency": { type: "string" },
    "s3-concurrency": { type: "string" },
    tuned: { type: "string", multiple: true },
    "migrator-arg": { type: "string", multiple: true },
    "node-arg": { type: "string", multiple: true },
    db: { type: "string" },
    "keep-db": { type: "boolean", default: false },
    "semi-space": { type: "string", default: "8" },
    rounds: { type: "string" },
    out: { type: "string" },
    "pg-url": { type: "string" },
    help: { type: "boolean", default: false }
  },
  allowPositionals: false
})

if (args.help) {
  console.log(usage)
  process.exit(0)
}

const quick = args.quick
const mix = parseMix(args.mix ?? (quick ? "quick" : "default"))
const seedValue = Number(args.seed)
const only = new Set((args.only ?? "pg,hash,s3,combined,rclone,naive,migrator,profile").split(",").map((s) => s.trim()))
const list = (text: string | undefined, dflt: ReadonlyArray<number>) =>
  text === undefined ? dflt : text.split(",").map((s) => Number(s.trim())).filter((n) => n > 0)
const readConcurrency = list(args["read-concurrency"], quick ? [2] : [1, 2])
const s3Concurrency = list(args["s3-concurrency"], quick ? [8, 32] : [8, 16, 32, 64])
const tunedCandidates = args.tuned ?? (quick
  ? ["--receiver-threads 4 --storer-threads 32 --commit-chunk 500"]
  : ["--receiver-threads 4 --storer-threads 64 --commit-chunk 500"])
const migratorExtra = args["migrator-arg"] ?? []
const nodeExtra = args["node-arg"] ?? []
const rounds = Number(args.rounds ?? (quick ? "1" : "3"))
if (!Number.isSafeInteger(rounds) || rounds < 1) {
  console.error(`--rounds: expected a whole number of at least 1, got ${JSON.stringify(args.rounds)}`)
  process.exit(2)
}
const adminUrl = args["pg-url"] ?? process.env["PG_TEST_URL"] ?? defaultAdminUrl
const runId = `${new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "_").toLowerCase()}_${process.pid}`
const dbName = args.db ?? `lo_bench_${runId}`
const dbUrl = databaseUrl(adminUrl, dbName)
const s3 = s3EnvFrom(process.env)
const resultsDir = join(here, "../results")

const err = (text: string) => void process.stderr.write(`[bench] ${text}\n`)

const objects = makeObjects(mix, seedValue)
const bytes = totalBytes(objects)

const onDb = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.runPromise(effect.pipe(Effect.provide(pgLayer(dbUrl, 2))))

interface WorkerOutput {
  readonly results: ReadonlyArray<WorkerResult>
  readonly peakRssBytes: number
}

const runWorker = async (kind: string, options: object, defaultKind: Measurement["kind"]): Promise<ReadonlyArray<Measurement>> => {
  const child = await runMeasured(nodeBin, ["--conditions=development", workerPath, kind, JSON.stringify(options)], {
    echoStderr: "    "
  })
  const last = child.stdout.trim().split("\n").pop() ?? ""
  if (child.code !== 0 || !last.startsWith("{")) {
    const tail = child.stderr.trim().split("\n").slice(-3).join(" / ")
    return [{
      name: kind,
      kind: defaultKind,
      objects: 0,
      bytes: 0,
      wallMs: child.wallMs,
      cpuMs: child.cpuMs,
      peakRssBytes: child.peakRssBytes,
      error: `exit ${child.code ?? child.signal}: ${tail}`
    }]
  }
  const out = JSON.parse(last) as WorkerOutput
  return out.results.map((r) => ({ ...r, kind: r.kind ?? defaultKind, peakRssBytes: out.peakRssBytes }))
}

interface MigratorRun {
  readonly measurement: Measurement
  readonly stdout: string
  readonly stderr: string
}

const shellWords = (text: string): ReadonlyArray<string> => text.split(/\s+/).filter((w) => w.length > 0)

let bucketSeq = 0
/**
 * Runs the migrator CLI (or, with `stages`, the instrumented pipeline of stages.ts) on a fresh bucket with every row's
 * sha2 reset, then checks that every row got its sha2 and the bucket holds every object.
 */
const runMigrator = async (
  label: string,
  extra: ReadonlyArray<string>,
  profileDir?: string,
  stages?: object
): Promise<MigratorRun> => {
  const env = s3!
  const client = makeClient(env, 4)
  const bucket = `lo-bench-${runId.replace(/_/g, "-")}-m${++bucketSeq}`
  await onDb(resetSha2)
  await createBucket(client, bucket)
  const argv = [
    ...(profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]),
    // as `nx run migrator:start` and the Docker image start it (a small young generation: see apps/migrator/README.md)
    `--max-semi-space-size=${args["semi-space"]}`,
    ...nodeExtra,
    ...(stages === undefined
      ? [migratorMain, "--skip-batch-job-check", "--interval", quick ? "2" : "5", ...migratorExtra.flatMap(shellWords), ...extra]
      : ["--conditions=development", stagesPath, JSON.stringify(stages)])
  ]
  const sys0 = sampleCpu()
  // Secrets by environment, never on the command line.
  const child = await runMeasured(nodeBin, argv, {
    env: {
      ...process.env,
      PG_URL: dbUrl,
      S3_URL: env.endpoint,
      S3_BUCKET: bucket,
      AWS_ACCESS_KEY_ID: env.accessKeyId,
      AWS_SECRET_ACCESS_KEY: env.secretAccessKey,
      AWS_REGION: env.region
    },
    cwd: root
  })
  const sys1 = sampleCpu()
  const [counted] = await onDb(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql<{ readonly done: number; readonly bytes: bigint | number | null }>`
      SELECT count(*)::int AS done, sum(size)::int8 AS bytes FROM _nice_binary WHERE sha2 IS NOT NULL`
  }))
  const stored = await bucketStats(client, bucket)
  await deleteBucket(client, bucket).catch((e: unknown) => err(`could not delete bucket ${bucket}: ${String(e)}`))
  const done = counted?.done ?? 0
  const problems: Array<string> = []
  if (child.code !== 0) problems.push(`exit ${child.code ?? child.signal}`)
  if (done !== objects.length) problems.push(`${done}/${objects.length} rows have sha2`)
  if (stored.objects !== objects.length || stored.bytes !== bytes) {
    problems.push(`bucket holds ${stored.objects} objects / ${stored.bytes} bytes, expected ${objects.length} / ${bytes}`)
  }
  if (problems.length > 0) {
    err(`${label}: ${problems.join("; ")}`)
    err(child.stderr.trim().split("\n").slice(-15).join("\n"))
  }
  return {
    measurement: {
      name: label,
      kind: "migrator",
      objects: done,
      bytes: Number(counted?.bytes ?? 0),
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
}

/** The last status block the migrator printed (it starts with a rule of asterisks) and what follows it. */
const finalStatus = (stdout: string): string => {
  const lines = stdout.trimEnd().split("\n")
  const start = lines.findLastIndex((l) => /^\*{20,}$/.test(l.trim()))
  return (start >= 0 ? lines.slice(start) : lines.slice(-20)).join("\n")
}

const machine = (): string => {
  const cpu = cpus()
  return `${cpu.length} × ${cpu[0]?.model ?? "?"}, ${Math.round(totalmem() / 1024 ** 3)} GiB RAM, Node ${process.version}, ` +
    `load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`
}

const main = async () => {
  const measurements: Array<Measurement> = []
  const sections: Array<string> = []
  const add = (ms: ReadonlyArray<Measurement>) => {
    for (const m of ms) {
      measurements.push(m)
      err(`${m.name}: ${m.error ?? `${fmtNum(m.wallMs / 1000)} s, ${fmtNum(mibPerSec(m))} MiB/s, ${fmtNum(m.objects / (m.wallMs / 1000))} obj/s, peak RSS ${fmtMiB(m.peakRssBytes)} MiB`}`)
    }
  }
  const startedAt = new Date()
  const header = [
    `lo-migrate bench ${startedAt.toISOString()}`,
    `machine: ${machine()}`,
    `mix: ${mix.name} = ${describeMix(mix)}, seed ${seedValue}: ${objects.length} objects, ${fmtMiB(bytes)} MiB`,
    `database: ${dbName}; S3: ${s3?.endpoint ?? "not configured"}`
  ].join("\n")
  err(header)

  // --- seed --------------------------------------------------------------------------------------------------------
  let fresh = true
  if (args.db !== undefined && await Effect.runPromise(databaseExists(adminUrl, dbName))) {
    const meta = await onDb(seededWith).catch(() => undefined)
    if (meta !== undefined && meta.seed === seedValue && meta.mix === mix.name && meta.objects === objects.length) {
      err(`reusing database ${dbName} (seeded with the same mix and seed)`)
      fresh = false
    } else {
      await Effect.runPromise(dropDatabase(adminUrl, dbName))
    }
  }
  let seedLine = "seeding: reused"
  if (fresh) {
    await Effect.runPromise(createDatabase(adminUrl, dbName))
    const t0 = performance.now()
    let lastPct = -1
    await onDb(seed({
      seed: seedValue,
      mix,
      objects,
      onProgress: (d, t) => {
        const pct = Math.floor((d / t) * 10)
        if (pct !== lastPct) {
          lastPct = pct
          err(`seeding ${d}/${t}`)
        }
      }
    }))
    const ms = performance.now() - t0
    seedLine = `seeding: ${objects.length} objects, ${fmtMiB(bytes)} MiB in ${fmtNum(ms / 1000)} s (${fmtNum(bytes / 1048576 / (ms / 1000))} MiB/s, server-side)`
    err(seedLine)
  }

  try {
    // --- limits ------------------------------------------------------------------------------------------------------
    if (only.has("pg")) {
      for (const method of ["lo_get", "loread"] as const) {
        for (const c of readConcurrency) {
          add(await runWorker("pg-read", {
            url: dbUrl,
            method,
            concurrency: c,
            chunk: 4 * 1024 * 1024,
            batchBytes: 4 * 1024 * 1024,
            batchCount: 256
          }, "pg-limit"))
        }
      }
    }
    if (only.has("pg")) {
      // the transfer alone, without hashing: how much of the read limit is the client's hashing
      const best = Math.max(...readConcurrency)
      add((await runWorker("pg-read", {
        url: dbUrl,
        method: "lo_get",
        concurrency: best,
        chunk: 4 * 1024 * 1024,
        batchBytes: 4 * 1024 * 1024,
        batchCount: 256,
        hash: false
      }, "pg-limit")).map((m) => ({ ...m, kind: "diagnostic" as const })))
    }
    if (only.has("hash")) add(await runWorker("hash", { bytes: Math.min(bytes, 1024 ** 3) }, "diagnostic"))
    if (s3 === undefined) {
      err("S3_ENDPOINT / S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY not set: skipping everything that writes to S3")
    } else {
      const bucketPrefix = `lo-bench-${runId.replace(/_/g, "-")}`
      // The S3 write limit (probing `concurrencies` on a `probeFraction` sample when there are several) and the
      // combined limit at the S3 limit's best concurrency so far; both are measured again in every round.
      const measureS3 = (suffix: string, concurrencies: ReadonlyArray<number>, probeFraction: number) =>
        runWorker("s3-put", { url: dbUrl, bucket: `${bucketPrefix}-${suffix}`, concurrencies, probeFraction }, "s3-limit")
      const bestS3Concurrency = () => Number(/(\d+) in flight/.exec(best(measurements, "s3-limit")?.name ?? "")?.[1] ?? 32)
      const measureCombined = (suffix: string) =>
        runWorker("combined", {
          url: dbUrl,
          bucket: `${bucketPrefix}-${suffix}`,
          readers: 2,
          storers: bestS3Concurrency(),
          commitChunk: 500
        }, "combined-limit")
      if (only.has("s3")) {
        add((await measureS3("s3", s3Concurrency, quick ? 1 : 0.1)).map((m) => m.kind === "s3-limit" ? { ...m, round: 1 } : m))
      }
      if (only.has("combined")) add((await measureCombined("combined")).map((m) => ({ ...m, round: 1 })))
      if (only.has("rclone")) {
        add(await measureRclone({
          s3,
          dir: join(tmpdir(), `lo-bench-rclone-${runId}`),
          bucketPrefix,
          transfers: [32, 64],
          exportOnce: (dir) => onDb(exportObjects(dir))
        }))
      }
      if (only.has("naive")) {
        // the combined limit recorded sha2 for every row: the naive script must find them all to do again
        await onDb(resetSha2)
        add(await runWorker("naive", { url: dbUrl, bucket: `lo-bench-${runId.replace(/_/g, "-")}-naive` }, "naive"))
      }
      // --- the migrator --------------------------------------------------------------------------------------------
      if (only.has("migrator")) {
        // what the process costs before it moves a byte: loading the app from source (type stripping) and its modules
        const help = await runMeasured(nodeBin, [`--max-semi-space-size=${args["semi-space"]}`, migratorMain, "--help"], { cwd: root })
        add([{
          name: "migrator start-up only (--help)",
          kind: "diagnostic",
          objects: 0,
          bytes: 0,
          wallMs: help.wallMs,
          cpuMs: help.cpuMs,
          peakRssBytes: help.peakRssBytes,
          ...(help.code === 0 ? {} : { error: `exit ${help.code}` })
        }])
        const r = await runMigrator("migrator (defaults)", [])
        add([{ ...r.measurement, round: 1 }])
        sections.push(`### migrator (defaults): final status\n\n\`\`\`\n${finalStatus(r.stdout)}\n\`\`\``)
      }
      // --- repeated rounds: the S3 limit, the combined limit and the migrator back to back, so that each ratio compares
      // runs on the same server state (a single run moves by +-15% here); the order rotates so no measurement always
      // follows the same one.
      const repeated = (["s3", "combined", "migrator"] as const).filter((k) => only.has(k))
      for (let round = 2; round <= rounds && repeated.length > 0; round++) {
        const order = repeated.map((_, i) => repeated[(i + round - 1) % repeated.length]!)
        err(`round ${round} of ${rounds}: ${order.join(", ")}`)
        const tag = (m: Measurement): Measurement => ({ ...m, name: `${m.name} (round ${round})`, round })
        for (const step of order) {
          if (step === "s3") {
            add((await measureS3(`s3r${round}`, [bestS3Concurrency()], 0)).map(tag))
          } else if (step === "combined") {
            add((await measureCombined(`combined-r${round}`)).map(tag))
          } else {
            add([tag((await runMigrator("migrator (defaults)", [])).measurement)])
          }
        }
      }
      if (only.has("tuned")) {
        let bestRun: MigratorRun | undefined
        for (const candidate of tunedCandidates) {
          const r = await runMigrator(`migrator (tuned: ${candidate})`, shellWords(candidate))
          err(`  candidate ${candidate}: ${r.measurement.error ?? `${fmtNum(mibPerSec(r.measurement))} MiB/s`}`)
          if (r.measurement.error === undefined && (bestRun === undefined || mibPerSec(r.measurement) > mibPerSec(bestRun.measurement))) {
            bestRun = r
          }
          if (tunedCandidates.length > 1) add([{ ...r.measurement, name: `candidate: ${candidate}`, kind: "candidate" }])
        }
        if (bestRun !== undefined) {
          add([bestRun.measurement])
          sections.push(`### ${bestRun.measurement.name}: final status\n\n\`\`\`\n${finalStatus(bestRun.stdout)}\n\`\`\``)
        }
      }
      if (only.has("throttle")) {
        // the throttle's accuracy, by objects and by bytes. The limit must bind: half the rates of this session's
        // "migrator (defaults)" run when there is one (the run then lasts about twice as long), else limits that make
        // the run last about `seconds`.
        const unthrottled = measurements.find((m) => m.name === "migrator (defaults)" && m.error === undefined)
        const seconds = unthrottled === undefined ? (quick ? 30 : 120) : (2 * unthrottled.wallMs) / 1000
        const perSecond = Math.max(5, Math.round(objects.length / seconds))
        const mibPerSecond = Math.max(0.1, Number((bytes / 1024 / 1024 / seconds).toFixed(2)))
        const rows: Array<string> = []
        for (
          const [resource, option, limit, total] of [
            ["objects", ["--max-objects-per-second", String(perSecond)], perSecond, objects.length],
            ["bytes", ["--max-bandwidth", String(mibPerSecond)], mibPerSecond * 1024 * 1024, bytes]
          ] as const
        ) {
          const r = await runMigrator(`migrator (throttled: ${option.join(" ")})`, [...option, "--log-format", "json"])
          add([{ ...r.measurement, kind: "diagnostic" }])
          const a = throttleAccuracy(r.stdout, resource, limit, total)
          rows.push(a === undefined ? `| ${resource} | ${option.join(" ")} | - | - | too short a run | - |` : renderThrottleAccuracy(a))
        }
        sections.push(
          "### Throttle accuracy: the read stage's rate over the throttled part of the run vs the limit (target: within 5%)\n\n" +
            "| limit on | limit | achieved | deviation | window | within 5% |\n| --- | --- | --- | --- | --- | --- |\n" +
            rows.join("\n")
        )
      }
      if (only.has("stages")) {
        const r = await runMigrator("migrator pipeline, instrumented (stages.ts, defaults)", [], undefined, {})
        const last = r.stdout.trim().split("\n").pop() ?? ""
        if (r.measurement.error === undefined && last.startsWith("{")) {
          sections.push(`### Where the time goes: the pipeline with defaults, every port call timed (tools/bench/src/stages.ts)\n\n${renderStages(JSON.parse(last) as StageReport)}`)
        } else {
          err(`stages: ${r.measurement.error ?? "no report"}`)
        }
      }
      if (only.has("profile")) {
        const dir = join(resultsDir, `profile-${runId}`)
        mkdirSync(dir, { recursive: true })
        const r = await runMigrator("migrator (defaults, --cpu-prof)", [], dir)
        const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))
        if (file !== undefined) {
          const summary = summarize(readProfile(join(dir, file)))
          sections.push(
            `### CPU profile of the migrator (defaults), ${join(dir, file).replace(`${root}/`, "")}\n\n` +
              `wall ${fmtNum(r.measurement.wallMs / 1000)} s, CPU ${fmtNum((r.measurement.cpuMs ?? 0) / 1000)} s ` +
              `(profiling adds overhead; not in the table)\n\n${renderProfile(summary)}`
          )
        }
      }
    }
  } finally {
    if (!args["keep-db"]) {
      await Effect.runPromise(dropDatabase(adminUrl, dbName)).catch((e: unknown) => err(`could not drop ${dbName}: ${String(e)}`))
    }
  }

  const table = measurements.filter((m) => m.kind !== "candidate")
  const candidates = measurements.filter((m) => m.kind === "candidate")
  const v = verdict(table, mix.name)
  const report = [
    header,
    seedLine,
    "",
    resultsTable(table),
    "",
    "CPU s = user+system of the process doing the work (a child process each; the migrator's includes its start-up).",
    "PG / Ceph CPU s = all PostgreSQL backends / Ceph daemons meanwhile (shared servers: other work included).",
    "machine busy = share of both cores busy (all processes) during the measurement.",
    ...(candidates.length > 0 ? ["", "Tuning candidates (migrator options, full mix):", resultsTable(candidates)] : []),
    "",
    renderVerdict(v),
    ...sections.flatMap((s) => ["", s])
  ].join("\n")
  console.log(report)
  const out = args.out ?? join(resultsDir, `${runId}.json`)
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, JSON.stringify({ startedAt, machine: machine(), mix, seed: seedValue, objects: objects.length, bytes, measurements, report }, null, 2))
  writeFileSync(join(resultsDir, quick ? "latest-quick.md" : `latest-${mix.name}.md`), `${report}\n`)
  err(`results: ${out}`)
  const failed = table.filter((m) => m.error !== undefined)
  return failed.length === 0 ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    err(`failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`)
    process.exit(1)
  }
)

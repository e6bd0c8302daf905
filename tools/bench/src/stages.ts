/**
 * Where the migrator's time goes: the pipeline (`runMigration`) with the live PostgreSQL and S3 adapters wired by the
 * CLI's own factory (`@lo-migrate/migrator` Live.ts) from a configuration resolved like the CLI's, every port call timed, the queues sampled, the event loop's utilization measured. Runs in a process
 * of its own (the harness starts it like the CLI):
 *   node --conditions=development tools/bench/src/stages.ts '<json options>'
 * Env: PG_URL, S3_URL, S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (as for the CLI).
 * Prints one JSON line (a `StageReport`) on stdout.
 */
import { HashCommitter, LoReader, Metrics, ObjectStore } from "@lo-migrate/core"
import { defaultRawOptions, pipelineConfigOf, portsLayer, resolve } from "@lo-migrate/migrator"
import { type PipelineConfig, runMigration } from "@lo-migrate/pipeline"
import { Context, Effect, Fiber, Layer, Option, Schedule } from "effect"
import { performance } from "node:perf_hooks"
import type { StageReport } from "./StageReport.ts"

export interface StageOptions {
  readonly readers?: number
  readonly storers?: number
  readonly committers?: number
  readonly commitChunk?: number
  readonly storeQueue?: number
  /** bytes */
  readonly inMemMax?: number
  /** bytes (the CLI's --max-in-memory, 32 MiB by default) */
  readonly maxInMemory?: number
}

const stats = new Map<string, { calls: number; busyMs: number; maxMs: number }>()
const timed = <A, E, R>(name: string, self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const t0 = performance.now()
    return Effect.ensuring(self, Effect.sync(() => {
      const ms = performance.now() - t0
      const s = stats.get(name) ?? { calls: 0, busyMs: 0, maxMs: 0 }
      s.calls += 1
      s.busyMs += ms
      s.maxMs = Math.max(s.maxMs, ms)
      stats.set(name, s)
    }))
  })

const options = JSON.parse(process.argv[2] ?? "{}") as StageOptions
const fromEnv = (name: string) => Option.fromNullishOr(process.env[name])
const given = <A>(value: A | undefined, fallback: A): A => value ?? fallback

/** The CLI's configuration with the CLI's defaults (PG_URL, AWS_SECRET_ACCESS_KEY are read by `resolve` itself). */
const migratorConfig = resolve({
  ...defaultRawOptions,
  s3Url: fromEnv("S3_URL"),
  bucket: fromEnv("S3_BUCKET"),
  accessKey: fromEnv("AWS_ACCESS_KEY_ID"),
  region: process.env["AWS_REGION"] ?? defaultRawOptions.region,
  receiverThreads: given(options.readers, defaultRawOptions.receiverThreads),
  storerThreads: given(options.storers, defaultRawOptions.storerThreads),
  committerThreads: given(options.committers, defaultRawOptions.committerThreads),
  commitChunk: given(options.commitChunk, defaultRawOptions.commitChunk),
  storerQueue: given(options.storeQueue, defaultRawOptions.storerQueue),
  inMemMax: options.inMemMax === undefined ? defaultRawOptions.inMemMax : options.inMemMax / 1024,
  maxInMemory: options.maxInMemory === undefined ? defaultRawOptions.maxInMemory : options.maxInMemory / (1024 * 1024)
})

/** The live ports, each call of the reader, the store and the committer timed. */
const timedPorts = (ports: ReturnType<typeof portsLayer>) => Layer.effectContext(Effect.gen(function*() {
  const r = yield* LoReader
  const s = yield* ObjectStore
  const c = yield* HashCommitter
  const context = yield* Effect.context<Layer.Success<typeof ports>>()
  return context.pipe(
    Context.add(LoReader, LoReader.of({
      read: (row) => timed("read (1 object)", r.read(row)),
      readBatch: (rows) => timed("readBatch (small objects)", r.readBatch(rows))
    })),
    Context.add(ObjectStore, ObjectStore.of({ ...s, put: (req) => timed("put", s.put(req)) })),
    Context.add(HashCommitter, HashCommitter.of({ commit: (batch) => timed("commit (batch)", c.commit(batch)) }))
  )
})).pipe(Layer.provide(ports))

const program = Effect.gen(function*() {
  const cliConfig = yield* migratorConfig
  const config = pipelineConfigOf(cliConfig)
  return yield* profile(config).pipe(
    Effect.provide(timedPorts(portsLayer(cliConfig)))
  )
})

const profile = Effect.fn("stages.profile")(function*(config: PipelineConfig) {
  const metrics = yield* Metrics
  const fills = new Map<string, { sum: number; n: number; capacity: number }>()
  const memory = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
  const sampler = yield* Effect.forkChild(Effect.repeat(
    Effect.map(metrics.snapshot, (snap) => {
      const m = process.memoryUsage()
      memory.rss = Math.max(memory.rss, m.rss)
      memory.heapTotal = Math.max(memory.heapTotal, m.heapTotal)
      memory.heapUsed = Math.max(memory.heapUsed, m.heapUsed)
      memory.external = Math.max(memory.external, m.external)
      memory.arrayBuffers = Math.max(memory.arrayBuffers, m.arrayBuffers)
      for (const q of snap.queues) {
        const f = fills.get(q.name) ?? { sum: 0, n: 0, capacity: q.capacity }
        f.sum += q.used
        f.n += 1
        fills.set(q.name, f)
      }
    }),
    Schedule.spaced("100 millis")
  ))
  const elu0 = performance.eventLoopUtilization()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const summary = yield* runMigration(config)
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const elu = performance.eventLoopUtilization(elu0)
  yield* Fiber.interrupt(sampler)
  const report: StageReport = {
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    eventLoopUtilization: elu.utilization,
    config: { readers: config.readers, storers: config.storers, committers: config.committers, commitChunk: config.commitChunk },
    calls: Object.fromEntries(stats),
    queueFill: Object.fromEntries([...fills].map(([k, f]) => [k, { meanUsed: f.n === 0 ? 0 : f.sum / f.n, capacity: f.capacity }])),
    migrated: summary.migrated,
    migratedBytes: summary.migratedBytes,
    failed: summary.failed,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    memoryPeaks: memory
  }
  return report
})

Effect.runPromise(program).then(
  (report) => {
    process.stdout.write(`${JSON.stringify(report)}\n`)
    process.exit(0)
  },
  (e: unknown) => {
    process.stderr.write(`stages failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
    process.exit(1)
  }
)

/**
 * Where the migrator's time goes: the pipeline (`runMigration`) with the live PostgreSQL and S3 adapters wired as the
 * CLI wires them, every port call timed, the queues sampled, the event loop's utilization measured. Runs in a process
 * of its own (the harness starts it like the CLI):
 *   node --conditions=development tools/bench/src/stages.ts '<json options>'
 * Env: PG_URL, S3_URL, S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (as for the CLI).
 * Prints one JSON line (a `StageReport`) on stdout.
 */
import { HashCommitter, LoReader, Metrics, ObjectStore } from "@lo-migrate/core"
import { defaultPipelineConfig, type PipelineConfig, runMigration } from "@lo-migrate/pipeline"
import { defaultChunkSize, PgDatabase, PgHashCommitter, PgLoReader, PgLoSource } from "@lo-migrate/postgres"
import { defaultS3StoreConfig, multipartPartSize, S3ObjectStore } from "@lo-migrate/s3"
import { Effect, Fiber, Layer, Redacted, Schedule } from "effect"
import { tmpdir } from "node:os"
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

const env = (name: string): string => {
  const v = process.env[name]
  if (v === undefined) throw new Error(`${name} is not set`)
  return v
}

const options = JSON.parse(process.argv[2] ?? "{}") as StageOptions
const inMemMax = options.inMemMax ?? 1024 * 1024
// as the CLI configures it with its defaults (apps/migrator/src/Migrate.ts pipelineConfigOf)
const config: PipelineConfig = {
  ...defaultPipelineConfig,
  maxInMemoryBytes: options.maxInMemory ?? 32 * 1024 * 1024,
  inMemoryObjectMax: inMemMax,
  ...(options.readers === undefined ? {} : { readers: options.readers }),
  ...(options.storers === undefined ? {} : { storers: options.storers }),
  ...(options.committers === undefined ? {} : { committers: options.committers }),
  ...(options.commitChunk === undefined ? {} : { commitChunk: options.commitChunk }),
  ...(options.storeQueue === undefined ? {} : { storeQueue: options.storeQueue })
}

const database = PgDatabase.layer({
  url: Redacted.make(env("PG_URL")),
  maxConnections: config.readers + config.committers + 3
})
// Each port wrapped so that every call is timed; the wrapped layer replaces the live one.
const reader = Layer.effect(LoReader, Effect.gen(function*() {
  const r = yield* LoReader
  return LoReader.of({
    read: (row) => timed("read (1 object)", r.read(row)),
    readBatch: (rows) => timed("readBatch (small objects)", r.readBatch(rows))
  })
}))
const store = Layer.effect(ObjectStore, Effect.gen(function*() {
  const s = yield* ObjectStore
  return ObjectStore.of({ ...s, put: (req) => timed("put", s.put(req)) })
}))
const committer = Layer.effect(HashCommitter, Effect.gen(function*() {
  const c = yield* HashCommitter
  return HashCommitter.of({ commit: (batch) => timed("commit (batch)", c.commit(batch)) })
}))

const live = Layer.mergeAll(
  PgLoSource.layer({ pageSize: 1000 }),
  reader.pipe(Layer.provide(PgLoReader.layer({
    inMemMax,
    tempDir: tmpdir(),
    chunkSize: defaultChunkSize,
    partSizeFor: (size) => multipartPartSize(size, defaultS3StoreConfig.partSize)
  }))),
  committer.pipe(Layer.provide(PgHashCommitter.layer))
).pipe(
  Layer.provide(database),
  Layer.merge(store.pipe(Layer.provide(S3ObjectStore.layer({
    ...defaultS3StoreConfig,
    bucket: env("S3_BUCKET"),
    endpoint: env("S3_URL"),
    region: process.env["AWS_REGION"] ?? "us-east-1",
    forcePathStyle: true,
    accessKeyId: Redacted.make(env("AWS_ACCESS_KEY_ID")),
    secretAccessKey: Redacted.make(env("AWS_SECRET_ACCESS_KEY")),
    maxSockets: config.storers * (defaultS3StoreConfig.partConcurrency ?? 2)
  })))),
  Layer.provideMerge(Metrics.layer)
)

const program = Effect.gen(function*() {
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

Effect.runPromise(program.pipe(Effect.provide(live))).then(
  (report) => {
    process.stdout.write(`${JSON.stringify(report)}\n`)
    process.exit(0)
  },
  (e: unknown) => {
    process.stderr.write(`stages failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
    process.exit(1)
  }
)

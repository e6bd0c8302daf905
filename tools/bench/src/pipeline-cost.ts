/**
 * What the pipeline itself costs per object: `runMigration` with the CLI's default configuration (`resolve` and
 * `pipelineConfigOf` of @lo-migrate/migrator) and the live `Metrics`, over ports that do no work of their own, so
 * every CPU microsecond measured is the pipeline's (stages, queues, fibers, spans, metric updates, budgets, garbage):
 *
 * - `null` (default): a source that pages rows from memory (1000 a page, like the CLI's), a reader that hands out
 *   prebuilt objects, a store that answers `Uploaded` and a committer that answers `Committed`; each read, put and
 *   commit answers from a `setImmediate` callback, as I/O would, so its fiber suspends and resumes as in a real run;
 * - `fakes`: the in-memory fakes of @lo-migrate/testing (verified reads that hash every body, a bucket, a committer
 *   that checks the bucket), with the live `Metrics`: closer to a real run, the fakes' own work included.
 *
 * Each repetition runs the whole migration of OBJECTS small objects (1-4 KiB, all batched by the read stage); the
 * process's CPU time (user + system, `process.cpuUsage`) around `runMigration` is printed per object, and the median of
 * the repetitions (the first is a warm-up, not counted). CPU time, not wall time, is the figure on a loaded machine.
 *
 *   cd tools/bench && npx node --conditions=development src/pipeline-cost.ts [OBJECTS=20000] [REPS=5] [null|fakes]
 *
 * For a profile, add `--cpu-prof --cpu-prof-dir=results` after `node`.
 */
import { HashCommitter, type LoObject, LoReader, LoSource, Metrics, ObjectStore, type SourceRow } from "@lo-migrate/core"
import { defaultRawOptions, pipelineConfigOf, resolve } from "@lo-migrate/migrator"
import { type PipelineConfig, runMigration } from "@lo-migrate/pipeline"
import { fakeHashCommitter, fakeLoReader, fakeLoSource, fakeObjectStore, World } from "@lo-migrate/testing"
import { Console, Effect, Layer, Option, Redacted, Result, Stream } from "effect"
import { createHash } from "node:crypto"

const [objectsArg = "20000", repsArg = "5", portsArg = "null"] = process.argv.slice(2)
const objects = Number(objectsArg)
const reps = Number(repsArg)
if (!(Number.isSafeInteger(objects) && objects > 0 && Number.isSafeInteger(reps) && reps > 0)) {
  console.error("usage: pipeline-cost.ts [OBJECTS=20000] [REPS=5] [null|fakes]")
  process.exit(2)
}
if (portsArg !== "null" && portsArg !== "fakes") {
  console.error(`ports must be null or fakes, got ${JSON.stringify(portsArg)}`)
  process.exit(2)
}

const sizeOf = (i: number) => 1024 + ((i * 7919) % (3 * 1024))
const bodyOf = (i: number) => {
  const bytes = new Uint8Array(sizeOf(i))
  bytes.fill(i % 251)
  new DataView(bytes.buffer).setUint32(0, i)
  return bytes
}
const hex = (algorithm: string, bytes: Uint8Array) => createHash(algorithm).update(bytes).digest("hex")

/** Completes from an I/O-phase callback of the event loop, as a network answer does. */
const answer = <A>(value: () => A): Effect.Effect<A> =>
  Effect.callback<A>((resume) => void setImmediate(() => resume(Effect.sync(value))))

/** Ports that do nothing but hand out what was prepared once: the pipeline alone is measured. */
const nullPorts = (): Layer.Layer<LoSource | LoReader | ObjectStore | HashCommitter> => {
  const rows: Array<SourceRow> = []
  const prepared = new Map<SourceRow, Omit<LoObject, "row" | "release">>()
  for (let i = 0; i < objects; i++) {
    const bytes = bodyOf(i)
    const row: SourceRow = { hash: hex("sha1", bytes), oid: i + 1, size: bytes.byteLength, mimeType: "image/png" }
    rows.push(row)
    prepared.set(row, {
      sha1: row.hash as LoObject["sha1"],
      sha256: hex("sha256", bytes) as LoObject["sha256"],
      md5Base64: createHash("md5").update(bytes).digest("base64"),
      size: bytes.byteLength,
      body: { _tag: "InMemory", bytes }
    })
  }
  const objectOf = (row: SourceRow): LoObject => ({ ...prepared.get(row)!, row, release: Effect.void })
  const pages: Array<ReadonlyArray<SourceRow>> = []
  for (let i = 0; i < rows.length; i += 1000) pages.push(rows.slice(i, i + 1000))
  return Layer.mergeAll(
    Layer.succeed(LoSource, LoSource.of({
      rows: Stream.fromIterable(pages).pipe(Stream.flatMap(Stream.fromArray)),
      count: Effect.succeed({ total: objects, remaining: objects, remainingBytes: 0, largest: 0 }),
      pending: Effect.succeed(0)
    })),
    Layer.succeed(LoReader, LoReader.of({
      read: (row) => answer(() => objectOf(row)),
      readBatch: (batch) => answer(() => batch.map((row) => Result.succeed(objectOf(row))))
    })),
    Layer.succeed(ObjectStore, ObjectStore.of({
      put: () => answer(() => "Uploaded" as const),
      head: () => Effect.succeed(Option.none()),
      check: Effect.void
    })),
    Layer.succeed(HashCommitter, HashCommitter.of({
      commit: (batch) => answer(() => batch.map(() => Result.succeed("Committed" as const)))
    }))
  )
}

/** The fakes of @lo-migrate/testing over a world of the same objects. */
const fakePorts = (): Layer.Layer<LoSource | LoReader | ObjectStore | HashCommitter, never, Metrics> => {
  const world = new World()
  for (let i = 0; i < objects; i++) world.insertContent(bodyOf(i), "image/png")
  return Layer.mergeAll(fakeLoSource(world), fakeLoReader(world), fakeObjectStore(world), fakeHashCommitter(world))
}

/** The CLI's defaults, resolved as the CLI resolves them (placeholders for the addresses nothing connects to). */
const cliConfig = resolve({
  ...defaultRawOptions,
  pgUrl: Option.some(Redacted.make("postgres://bench@127.0.0.1:5432/none")),
  s3Url: Option.some("http://127.0.0.1:9"),
  bucket: Option.some("pipeline-cost")
})

/** One whole migration over fresh ports and a fresh `Metrics`; the CPU microseconds per object it took. */
const once = Effect.fn("pipelineCost.once")(function*(config: PipelineConfig) {
  const ports = portsArg === "null" ? nullPorts() : fakePorts()
  return yield* Effect.gen(function*() {
    const cpu0 = process.cpuUsage()
    const summary = yield* runMigration(config)
    const cpu = process.cpuUsage(cpu0)
    if (summary.migrated !== objects || summary.failed !== 0) {
      return yield* Effect.die(new Error(`migrated ${summary.migrated} of ${objects} objects, ${summary.failed} failed`))
    }
    return (cpu.user + cpu.system) / objects
  }).pipe(Effect.provide(ports.pipe(Layer.provideMerge(Metrics.layer))))
})

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const program = Effect.gen(function*() {
  const config = pipelineConfigOf(yield* cliConfig)
  const runs: Array<number> = []
  for (let rep = 0; rep <= reps; rep++) {
    const us = yield* once(config)
    yield* Console.log(`${rep === 0 ? "warm-up" : `rep ${rep}`}: ${us.toFixed(1)} us CPU per object`)
    if (rep > 0) runs.push(us)
  }
  yield* Console.log(
    `pipeline cost (${portsArg} ports, ${objects} objects of 1-4 KiB, CLI defaults): median ${median(runs).toFixed(1)} us ` +
      `CPU per object over ${reps} runs (${runs.map((us) => us.toFixed(1)).join(", ")})`
  )
})

Effect.runPromise(program).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`pipeline-cost failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`)
    process.exit(1)
  }
)

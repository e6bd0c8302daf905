/**
 * The command's flow (`migrate`, `--dry-run`, `finalize`) over the in-memory fakes of `@lo-migrate/testing` and the
 * real pipeline: exit codes, what is printed, the graceful stop on a signal, and the invariant the fakes check at every
 * commit (nothing recorded without its object in the bucket).
 */
import { DatabaseError, Metrics, type RowCounts } from "@lo-migrate/core"
import { FinalizeRefused, PgUrl, PreflightFailed, SchemaTasks } from "@lo-migrate/postgres"
import { fakeHashCommitter, fakeLoReader, fakeLoSource, fakeObjectStore, World } from "@lo-migrate/testing"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Console, Effect, FileSystem, Layer, Option } from "effect"
import { TestConsole } from "effect/testing"
import { loggerFor } from "../src/Cli.ts"
import { resolve } from "../src/Config.ts"
import { ExitCode } from "../src/ExitCode.ts"
import { Leftovers } from "../src/Leftovers.ts"
import { finalizeCommand, migrate } from "../src/Migrate.ts"
import { StatusOutput } from "../src/RunSettings.ts"
import type { RawOptions } from "../src/Options.ts"
import { FailureReport } from "../src/Report.ts"
import { makeSignalController, Shutdown } from "../src/Shutdown.ts"
import { rawOptions } from "./support.ts"

interface SchemaKnobs {
  batchJob?: "ok" | "active"
  hasColumn?: boolean
  finalizeRefusedWith?: number
  calls: Array<string>
}

const fakeSchema = (knobs: SchemaKnobs, world: World) =>
  Layer.succeed(
    SchemaTasks,
    SchemaTasks.of({
      checkBatchJob: Effect.suspend(() => {
        knobs.calls.push("checkBatchJob")
        return knobs.batchJob === "active"
          ? Effect.fail(new PreflightFailed({ reason: "JobActive", job: "nice2.dms.DeleteUnreferencedBinariesBatchJob" }))
          : Effect.void
      }),
      tableExists: Effect.succeed(true),
      checkPrivileges: Effect.void,
      sha2ColumnExists: Effect.sync(() => knobs.hasColumn ?? true),
      pendingIndexValid: Effect.succeed(false),
      ensureSha2Column: Effect.sync(() => {
        knobs.calls.push("ensureSha2Column")
        const added = !(knobs.hasColumn ?? true)
        knobs.hasColumn = true
        return added
      }),
      ensurePendingIndex: Effect.sync(() => {
        knobs.calls.push("ensurePendingIndex")
        return true
      }),
      countAll: Effect.sync((): RowCounts => ({
        total: world.rows.length,
        remaining: world.rows.length,
        remainingBytes: world.rows.reduce((n, r) => n + r.size, 0),
        largest: Math.max(0, ...world.rows.map((r) => r.size))
      })),
      finalize: Effect.suspend(() => {
        knobs.calls.push("finalize")
        const left = world.rows.filter((r) => r.sha2 === null).length
        return left > 0
          ? Effect.fail(new FinalizeRefused({ reason: "RowsPending", remaining: left }))
          : knobs.finalizeRefusedWith !== undefined
          ? Effect.fail(new FinalizeRefused({ reason: "RowsPending", remaining: knobs.finalizeRefusedWith }))
          : Effect.void
      })
    })
  )

const seed = (world: World, n: number, sizes = (i: number) => 10 + i * 97) => {
  for (let i = 0; i < n; i++) {
    const bytes = new Uint8Array(sizes(i)).map((_, j) => (i * 31 + j * 7) & 0xff)
    world.insertContent(bytes, i % 2 === 0 ? "image/png" : "application/pdf")
  }
}

const servicesFor = <E>(
  world: World,
  knobs: SchemaKnobs,
  report: Layer.Layer<FailureReport, E> = FailureReport.logOnly as Layer.Layer<FailureReport, never>
) =>
  Layer.mergeAll(
    fakeLoSource(world),
    fakeLoReader(world),
    fakeObjectStore(world),
    fakeHashCommitter(world),
    fakeSchema(knobs, world),
    Leftovers.none,
    report
  ).pipe(Layer.provideMerge(Metrics.layer))

/** A live clock (the pipeline lingers and sleeps for real) with a captured console. */
const itLive = <E>(name: string, body: () => Effect.Effect<void, E, never>) =>
  it.live(name, () => body().pipe(Effect.provide(TestConsole.layer)))

const noEnv = ConfigProvider.layer(ConfigProvider.fromEnv({ env: {} }))

/** Runs `migrate` with a signal controller whose "interrupt" is recorded (the real one interrupts the process). */
const runMigrate = (world: World, knobs: SchemaKnobs, options: Partial<RawOptions> = {}) =>
  Effect.gen(function*() {
    const config = yield* resolve(rawOptions({ interval: 1, ...options }))
    const events: Array<string> = []
    const controller = makeSignalController({
      interrupt: () => events.push("interrupt"),
      armDeadline: () => events.push("deadline"),
      exitNow: () => events.push("exit"),
      notify: (m) => events.push(m)
    })
    const report = config.report === undefined
      ? FailureReport.logOnly
      : FailureReport.file(config.report).pipe(Layer.provide(NodeServices.layer))
    const code = yield* migrate(config, servicesFor(world, knobs, report)).pipe(
      Effect.provideService(Shutdown, controller.service),
      Effect.provideService(StatusOutput, (block) => Console.log(block))
    )
    const out = (yield* TestConsole.logLines).map(String).join("\n")
    const err = (yield* TestConsole.errorLines).map(String).join("\n")
    return { code, out, err, controller, events }
  }).pipe(Effect.provide(noEnv))

/** The invariant, checked independently of the committer's own check: every sha2 has its exact object. */
const assertInvariant = (world: World) => {
  assert.deepStrictEqual(world.violations, [])
  const bucket = new Map(world.bucketState().map((o) => [o.key, o]))
  for (const row of world.rows) {
    if (row.sha2 === null) continue
    const object = bucket.get(row.sha2)
    assert.isDefined(object, `object for ${row.hash}`)
    assert.strictEqual(object!.sha256, row.sha2)
  }
}

describe("migrate flow (fakes)", () => {
  itLive("a clean run: pre-flights, column added, everything migrated, exit 0", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 40)
      const knobs: SchemaKnobs = { hasColumn: false, calls: [] }
      const { code, out } = yield* runMigrate(world, knobs)
      assert.strictEqual(code, ExitCode.Ok)
      assert.deepStrictEqual(knobs.calls, ["checkBatchJob", "ensureSha2Column", "ensurePendingIndex"])
      assert.isTrue(world.rows.every((r) => r.sha2 !== null))
      assertInvariant(world)
      assert.include(out, "configuration")
      assert.include(out, "40 objects migrated")
      assert.include(out, "migration completed")
      assert.notInclude(out, "hunter2")
    }))

  itLive("bad rows: skipped and reported, the rest migrated, exit 1, finalize skipped", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 10)
      world.insertRow({ hash: "not-a-hash", oid: world.addLargeObject(new Uint8Array(3)), size: 3, mimeType: null })
      world.insertRow({ hash: "a".repeat(40), oid: null, size: 3, mimeType: null })
      const knobs: SchemaKnobs = { calls: [] }
      const { code, err } = yield* runMigrate(world, knobs, { finalize: true })
      assert.strictEqual(code, ExitCode.RowsFailed)
      assert.include(err, "2 row(s) failed")
      assert.include(err, "finalize skipped")
      assert.notInclude(knobs.calls, "finalize")
      assert.strictEqual(world.rows.filter((r) => r.sha2 !== null).length, 10)
      assertInvariant(world)
    }))

  itLive("--finalize after a complete run", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 5)
      const knobs: SchemaKnobs = { calls: [] }
      const { code, out } = yield* runMigrate(world, knobs, { finalize: true })
      assert.strictEqual(code, ExitCode.Ok)
      assert.include(knobs.calls, "finalize")
      assert.include(out, "finalize: done")
    }))

  itLive("the batch-job pre-flight refuses (exit 2) before anything is written; --skip-batch-job-check overrides", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 5)
      const knobs: SchemaKnobs = { batchJob: "active", hasColumn: false, calls: [] }
      const refused = yield* runMigrate(world, knobs)
      assert.strictEqual(refused.code, ExitCode.Usage)
      assert.include(refused.err, "is active")
      assert.include(refused.err, "--skip-batch-job-check")
      assert.deepStrictEqual(knobs.calls, ["checkBatchJob"])
      assert.strictEqual(world.bucket.size, 0)
      const skipped = yield* runMigrate(world, knobs, { skipBatchJobCheck: true })
      assert.strictEqual(skipped.code, ExitCode.Ok)
    }))

  itLive("a bucket check that fails for good (AccessDenied): exit 2 at once, says which check and where", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 5)
      world.faults.storeBroken = true
      const knobs: SchemaKnobs = { hasColumn: false, calls: [] }
      const { code, err } = yield* runMigrate(world, knobs)
      assert.strictEqual(code, ExitCode.Usage)
      assert.deepStrictEqual(knobs.calls, ["checkBatchJob"], "no schema change before the bucket check passed")
      assert.match(err, /error: bucket check: S3 .*AccessDenied/)
      assert.include(err, "at S3 https://rgw.example/ bucket binaries")
      assert.include(err, "Refusing to start")
      assert.isTrue(world.rows.every((r) => r.sha2 === null))
    }))

  itLive("a fatal database error: exit 3, the URL shown without its password", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 5)
      world.faults.commitFailures = 1000
      world.faults.commitFailureRetryable = false
      const { code, err } = yield* runMigrate(world, { calls: [] })
      assert.strictEqual(code, ExitCode.Fatal)
      assert.match(err, /fatal: database /)
      assert.include(err, "PostgreSQL postgresql://app:<redacted>@db.example:5433/nice")
      assert.notInclude(err, "hunter2")
      assertInvariant(world)
    }))

  itLive("a signal mid-run: no new rows, what is in flight is committed, exit 130, a rerun finishes", () =>
    Effect.gen(function*() {
      const world = new World()
      // objects above the fakes' batching limit, read one at a time: reading is still going on at the first commit
      seed(world, 200, (i) => 140_000 + i)
      world.faults.latency = (op) => (op === "put" || op === "read" ? "5 millis" : undefined)
      let signalled = false
      world.listeners.push((op) => {
        if (op === "commit" && !signalled) {
          signalled = true
          // delivered from outside the fiber, like a real signal
          setTimeout(() => pendingController?.onSignal("SIGINT"), 0)
        }
      })
      let pendingController: { onSignal: (s: string) => void } | undefined
      const config = yield* resolve(rawOptions({ interval: 1, commitChunk: 5, storerThreads: 2 })).pipe(
        Effect.provide(noEnv)
      )
      const events: Array<string> = []
      const controller = makeSignalController({
        interrupt: () => events.push("interrupt"),
        armDeadline: () => events.push("deadline"),
        exitNow: () => events.push("exit"),
        notify: (m) => events.push(m)
      })
      pendingController = controller
      const code = yield* migrate(config, servicesFor(world, { calls: [] })).pipe(
        Effect.provideService(Shutdown, controller.service),
      Effect.provideService(StatusOutput, (block) => Console.log(block))
      )
      const err = (yield* TestConsole.errorLines).map(String).join("\n")
      assert.strictEqual(code, ExitCode.Interrupted)
      assert.include(err, "interrupted; run again to resume")
      assert.notInclude(events, "interrupt", "the first signal inside the migration must not interrupt")
      const committed = world.rows.filter((r) => r.sha2 !== null).length
      assert.isAbove(committed, 0)
      assert.isBelow(committed, 200, "the stop should have happened mid-run")
      assertInvariant(world)
      // everything uploaded was committed: no object in the bucket lacks its row's sha2
      const recorded = new Set(world.rows.map((r) => r.sha2))
      assert.isTrue(world.bucketState().every((o) => recorded.has(o.key)), "an uploaded object was left uncommitted")

      world.faults.latency = () => undefined
      const rerun = yield* runMigrate(world, { calls: [] })
      assert.strictEqual(rerun.code, ExitCode.Ok)
      assert.isTrue(world.rows.every((r) => r.sha2 !== null))
      assertInvariant(world)
    }))

  itLive("the grace period runs out: the run is cut short (exit 130), still nothing committed without its object", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 50, (i) => 70_000 + i)
      // uploads take far longer than the grace period
      world.faults.latency = (op) => (op === "put" ? "400 millis" : undefined)
      const config = yield* resolve(rawOptions({ interval: 60, gracePeriod: 1, commitChunk: 1, storerThreads: 5 })).pipe(
        Effect.provide(noEnv)
      )
      const controller = makeSignalController({
        interrupt: () => {},
        armDeadline: () => {},
        exitNow: () => {},
        notify: () => {}
      })
      let signalled = false
      world.listeners.push((op) => {
        if (op === "commit" && !signalled) {
          signalled = true
          setTimeout(() => controller.onSignal("SIGTERM"), 0)
        }
      })
      const started = Date.now()
      const code = yield* migrate(config, servicesFor(world, { calls: [] })).pipe(
        Effect.provideService(Shutdown, controller.service),
      Effect.provideService(StatusOutput, (block) => Console.log(block))
      )
      const err = (yield* TestConsole.errorLines).map(String).join("\n")
      assert.strictEqual(code, ExitCode.Interrupted)
      assert.include(err, "the grace period (1 s) ran out")
      assert.isBelow(Date.now() - started, 10_000)
      assertInvariant(world)
      assert.isBelow(world.rows.filter((r) => r.sha2 !== null).length, 50)
    }))

  itLive("--dry-run counts and writes nothing", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 12, (i) => (i === 3 ? 5000 : 10 + i))
      const knobs: SchemaKnobs = { hasColumn: false, calls: [] }
      const { code, out } = yield* runMigrate(world, knobs, { dryRun: true })
      assert.strictEqual(code, ExitCode.Ok)
      assert.include(out, "12 of 12 rows left")
      assert.include(out, "largest object 4.88 KiB (5000 bytes)")
      assert.include(out, "sha2 missing")
      assert.deepStrictEqual(knobs.calls, ["checkBatchJob"])
      assert.strictEqual(world.bucket.size, 0)
      assert.isTrue(world.rows.every((r) => r.sha2 === null))
    }))

  itLive("--report gets one JSON line per failed row", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const path = `${dir}/failed.jsonl`
      const world = new World()
      seed(world, 3)
      world.insertRow({ hash: "b".repeat(40), oid: 999_999, size: 3, mimeType: null })
      const { code } = yield* runMigrate(world, { calls: [] }, { report: [path] })
      assert.strictEqual(code, ExitCode.RowsFailed)
      const lines = (yield* fs.readFileString(path)).trim().split("\n").map((l) => JSON.parse(l))
      assert.deepStrictEqual(lines.map((l) => [l.hash, l.oid, l.reason]), [["b".repeat(40), 999_999, "MissingLargeObject"]])
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)))
})

describe("--log-format json: every line of stdout is a JSON record (fakes)", () => {
  /** As the CLI runs it: the logs are JSON lines on stderr (`loggerFor`), not on stdout. */
  const runJson = (world: World, knobs: SchemaKnobs, options: Partial<RawOptions>) =>
    runMigrate(world, knobs, { logFormat: "json", ...options }).pipe(Effect.provide(loggerFor("json")))
  const records = (out: string) =>
    out.split("\n").map((line) => {
      assert.doesNotThrow(() => JSON.parse(line), line)
      return JSON.parse(line) as { readonly type: string; readonly [field: string]: any }
    })

  itLive("the configuration, the statuses, the summary and finalize, secrets redacted", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 40)
      const { code, out } = yield* runJson(world, { calls: [] }, { finalize: true })
      assert.strictEqual(code, ExitCode.Ok)
      assert.notInclude(out, "hunter2")
      const all = records(out)
      const types = all.map((r) => r.type)
      assert.strictEqual(types[0], "configuration")
      assert.deepStrictEqual(types.slice(-3), ["summary", "finalize", "finalize"])
      assert.isAtLeast(types.filter((t) => t === "status").length, 1)
      assert.deepStrictEqual(new Set(types), new Set(["configuration", "status", "summary", "finalize"]))
      const [configuration] = all
      assert.strictEqual(configuration!.postgres, "postgresql://app:<redacted>@db.example:5433/nice?sslmode=require&password=<redacted>")
      assert.deepStrictEqual(configuration!.s3.credentials, {
        accessKeyId: "AKIAEXAMPLE",
        secretKey: "<redacted>",
        source: "command line"
      })
      assert.deepStrictEqual(configuration!.threads, { receiver: 2, storer: 5, committer: 2 })
      assert.strictEqual(configuration!.mode, "migrate")
      assert.isTrue(configuration!.finalize)
      assert.isNumber(configuration!.inFlightBound.bytes)
      assert.strictEqual(all.filter((r) => r.type === "status").at(-1)!.progress.migrated, 40)
      const summary = all.at(-3)!
      assert.deepStrictEqual(
        [summary.migrated, summary.failed, summary.vanished, summary.stopped, summary.completed],
        [40, 0, 0, false, true]
      )
      assert.deepStrictEqual(all.slice(-2).map((r) => r.state), ["started", "done"])
    }))

  itLive("a run with failed rows: the summary says so (completed false)", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 3)
      world.insertRow({ hash: "a".repeat(40), oid: null, size: 3, mimeType: null })
      const { code, out } = yield* runJson(world, { calls: [] }, {})
      assert.strictEqual(code, ExitCode.RowsFailed)
      const summary = records(out).at(-1)!
      assert.deepStrictEqual([summary.type, summary.migrated, summary.failed, summary.completed], ["summary", 3, 1, false])
    }))

  itLive("--dry-run: the configuration, then one check record each, the rows with their counts", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 12, (i) => (i === 3 ? 5000 : 10 + i))
      const { code, out } = yield* runJson(world, { hasColumn: false, calls: [] }, { dryRun: true })
      assert.strictEqual(code, ExitCode.Ok)
      const all = records(out)
      assert.deepStrictEqual(all.map((r) => r.type), ["configuration", "check", "check", "check", "check", "check"])
      assert.strictEqual(all[0]!.mode, "dry run")
      assert.deepStrictEqual(all.slice(1).map((r) => r.check), ["batch job", "schema", "privileges", "bucket", "rows"])
      assert.deepStrictEqual(all.at(-1)!.counts, { total: 12, remaining: 12, remainingBytes: 5173, largest: 5000 })
    }))
})

describe("finalize flow (fakes)", () => {
  itLive("refused while rows are left (exit 1), done otherwise (exit 0)", () =>
    Effect.gen(function*() {
      const world = new World()
      seed(world, 2)
      const pgUrl = rawOptions().pgUrl.pipe(Option.getOrThrow)
      const pgOptions = yield* PgUrl.resolve(pgUrl, PgUrl.environmentOf({ HOME: "/nonexistent" }))
      const config = { pgUrl, pgOptions, pgTransactionPooler: false, logFormat: "text" as const, retryBudget: 300, connectTimeout: 5, warnings: [] }
      const refused = yield* finalizeCommand(config, fakeSchema({ calls: [] }, world))
      assert.strictEqual(refused, ExitCode.RowsFailed)
      assert.include((yield* TestConsole.errorLines).map(String).join("\n"), "finalize refused: 2 row(s)")
      for (const r of world.rows) r.sha2 = "x"
      assert.strictEqual(yield* finalizeCommand(config, fakeSchema({ calls: [] }, world)), ExitCode.Ok)
      const broken = Layer.effect(
        SchemaTasks,
        Effect.fail(new DatabaseError({ operation: "connect", detail: "connection refused", retryable: false }))
      )
      assert.strictEqual(yield* finalizeCommand(config, broken), ExitCode.Fatal)
      assert.include(
        (yield* TestConsole.errorLines).map(String).join("\n"),
        "Retrying does not cure this error (it was not retried): fix what it names. Then run finalize again"
      )
      // a server that refuses twice (a restart, a failover) is waited out (the log of each retry: e2e-settings)
      let attempts = 0
      const restarting = Layer.unwrap(Effect.sync(() =>
        ++attempts <= 2
          ? Layer.effect(
            SchemaTasks,
            Effect.fail(new DatabaseError({ operation: "connect", detail: "connection refused", retryable: true }))
          )
          : fakeSchema({ calls: [] }, world)
      ))
      assert.strictEqual(yield* finalizeCommand(config, restarting), ExitCode.Ok)
      assert.strictEqual(attempts, 3, "connected at the third attempt")
    }))
})

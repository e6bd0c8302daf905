/**
 * The fault suite: full migrations (the CLI as a subprocess) against the real PostgreSQL and the real Ceph RGW, with
 * the project's fault proxy (`@lo-migrate/faults`) between the migrator and the S3 endpoint. One scenario per fault,
 * the fault switched on once the run has committed its first rows.
 * After each: exit 0, every row migrated with the right bytes (GET + SHA-256), no multipart upload left open, no
 * file left in --temp-dir, and the proxy's counters show that the fault really hit the run.
 *
 * The suite also runs once without a fault (the baseline, same data and options); each run is timed from its first
 * commit (when the fault starts) to its exit, and the table printed at the end ("fault suite timings") gives the time
 * each fault cost against the baseline: the "time lost" column of libs/faults/README.md.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import {
  type Fault,
  FaultProxy,
  type FaultStats,
  flipByte,
  httpError,
  latency,
  passThrough,
  reset,
  stall
} from "@lo-migrate/faults"
import { insertBinary } from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect } from "effect"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  assertInvariant,
  assertMigrated,
  committedCount,
  Env,
  listOpenUploads,
  runCli,
  settings,
  setUpSchema,
  waitUntil
} from "./cli.ts"

/**
 * 30 objects of 16-46 KiB and, among them, 2 of 5 MiB + 64 KiB: spilled (--in-mem-max 1024) and sent in 2 parts each
 * (--upload-chunk-size 5120).
 */
const seed = Effect.forEach(
  Array.from({ length: 32 }, (_, i) => i),
  (i) =>
    insertBinary({
      bytes: { size: i % 16 === 8 ? (5 * 1024 + 64) * 1024 + i : 16 * 1024 + ((i * 7919) % 30) * 1024, seed: 5000 + i },
      mimeType: "image/png"
    }),
  { concurrency: 4 }
)

const requestTimeout = 3
const options = (tempDir: string) => [
  "--storer-threads", "3", "--receiver-threads", "2", "--in-mem-max", "1024", "--upload-chunk-size", "5120",
  "--commit-chunk", "5", "-i", "1", "--request-timeout", String(requestTimeout), "--retry-budget", "120",
  "--temp-dir", tempDir
]

interface Timing {
  readonly scenario: string
  readonly millis: number
  readonly retries: string
  readonly stats: FaultStats
}
const timings: Array<Timing> = []

/**
 * One full migration through the proxy: `during` runs once the first rows are committed (it switches the fault on,
 * or takes the port down); `hit` says from the proxy's counters whether the fault reached the run.
 */
const scenario = (
  name: string,
  during: (proxy: FaultProxy["Service"]) => Effect.Effect<void, unknown>,
  hit: (stats: FaultStats) => boolean
) =>
  Effect.gen(function*() {
    yield* setUpSchema
    const rows = yield* seed
    const { env } = yield* settings
    const bucket = yield* TestBucket
    const endpoint = new URL(bucket.config.endpoint!)
    const proxy = yield* FaultProxy.make({ targetPort: Number(endpoint.port), maxStallMillis: 30_000 })
    const dir = mkdtempSync(join(tmpdir(), "lo-migrate-faults-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    // timed from the first commit (when the fault starts) to the exit: the process start-up is left out
    let started = Date.now()
    const run = yield* runCli(options(dir), { ...env, S3_URL: proxy.url }, () =>
      waitUntil("the first commits", Effect.map(committedCount, (n) => n >= 1)).pipe(
        Effect.andThen(Effect.sync(() => void (started = Date.now()))),
        Effect.andThen(during(proxy))
      ))
    const millis = Date.now() - started
    yield* proxy.setFault(passThrough)
    const stats = yield* proxy.stats
    assert.strictEqual(run.code, 0, `${name}: ${run.stderr}`)
    assert.strictEqual(stats.multipartUploads >= 2, true, `${name}: the two large objects went multipart`)
    assert.isTrue(hit(stats), `${name}: the fault reached the run (proxy counters ${JSON.stringify(stats)})`)
    yield* assertMigrated(rows)
    assert.strictEqual((yield* assertInvariant).left, 0)
    assert.deepStrictEqual(yield* listOpenUploads(bucket.client, bucket.name), [], "no multipart upload left open")
    assert.deepStrictEqual(readdirSync(dir), [], "no file left in --temp-dir")
    const retries = [...run.stdout.matchAll(/Retries: (\d+)/g)].at(-1)?.[1] ?? "?"
    timings.push({ scenario: name, millis, retries, stats })
    return { run, millis }
  }).pipe(Effect.scoped, Effect.provide(Env))

const withFault = (fault: Fault) => (proxy: FaultProxy["Service"]) => proxy.setFault(fault)

afterAll(() => {
  const baseline = timings.find((t) => t.scenario === "no fault")?.millis
  const lines = timings.map((t) =>
    `| ${t.scenario} | ${(t.millis / 1000).toFixed(1)} s | ${
      baseline === undefined || t.scenario === "no fault" ? "-" : `${((t.millis - baseline) / 1000).toFixed(1)} s`
    } | ${t.retries} | ${t.stats.requests} requests, ${t.stats.answered} answered, ${t.stats.resets} reset, ` +
    `${t.stats.stalled} stalled, ${t.stats.flipped} flipped, ${t.stats.killed} cut, ${t.stats.multipartUploads} multipart |`
  )
  console.log(["fault suite timings:", "| scenario | first commit to exit | time lost | retries | proxy |", "| --- | --- | --- | --- | --- |", ...lines].join("\n"))
})

describe("fault suite: full migrations through a fault proxy in front of Ceph RGW (PostgreSQL + Ceph RGW)", () => {
  it.live("no fault (the baseline)", () =>
    Effect.gen(function*() {
      const { run } = yield* scenario("no fault", () => Effect.void, (s) => s.requests > 0)
      assert.match(run.stdout, /^Concurrency: store 3 of 3 at once \(\d+ running\)$/m)
      assert.notInclude(run.stdout, "by throttling")
    }), 120_000)

  it.live("20% of requests answered 503 SlowDown: the store's concurrency is lowered, and the monitor shows it", () =>
    Effect.gen(function*() {
      const { run } = yield* scenario("503 SlowDown 20%", withFault(httpError(503, 0.2)), (s) => s.answered > 0)
      // every status block has the line; once throttled, it says so and the limit is below --storer-threads 3
      const lines = run.stdout.split("\n").filter((l) => l.startsWith("Concurrency: store "))
      assert.isAbove(lines.length, 0, run.stdout)
      assert.match(lines.at(-1)!, /^Concurrency: store \d of 3 at once \(\d+ running\), lowered \d+ times? by throttling$/)
      assert.isTrue(lines.some((l) => /^Concurrency: store [12] of 3 at once/.test(l)), lines.join("\n"))
    }), 120_000)

  it.live("20% of requests answered 500 InternalError", () =>
    scenario("500 InternalError 20%", withFault(httpError(500, 0.2)), (s) => s.answered > 0), 120_000)

  it.live("10% of requests have their connection reset", () =>
    scenario("connection reset 10%", withFault(reset(0.1)), (s) => s.resets > 0), 120_000)

  it.live("50 ms latency each way on every chunk", () =>
    scenario("latency 50 ms", withFault(latency(50)), (s) => s.requests > 0), 120_000)

  it.live(`3 stalled requests, cut by --request-timeout ${requestTimeout}`, () =>
    scenario("3 stalled requests", withFault(stall(3)), (s) => s.stalled === 3), 120_000)

  // every 4th body, so a body is not hit again on its retry (3 corrupted attempts of one object skip its row, exit 1)
  it.live("a byte flipped in 3 request bodies (BadDigest / XAmzContentSHA256Mismatch)", () =>
    scenario("3 flipped bytes", withFault(flipByte(3, 4)), (s) => s.flipped === 3), 120_000)

  it.live("the S3 port closed for 15 s (connections cut, connects refused), then back", () =>
    Effect.gen(function*() {
      const { run, millis } = yield* scenario("S3 port closed 15 s", (proxy) => proxy.refuseFor("15 seconds"), (s) => s.killed >= 0)
      assert.isAtLeast(millis, 15_000)
      assert.match(run.stdout, /S3 unavailable for \d+ s, retrying/)
    }), 120_000)
})

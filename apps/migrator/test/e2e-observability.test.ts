/**
 * Observability of real runs (the CLI as a subprocess, against the real PostgreSQL and the real Ceph RGW).
 *
 * The status formats: `--log-format json` prints JSON records on stdout, the configuration, one status per interval
 * and the summary (and JSON logs on stderr), `--log-format line` one line of text per interval.
 *
 * The Prometheus endpoint during a real run (the CLI as a subprocess, against the real PostgreSQL and the real Ceph
 * RGW, with the fault proxy in front of the gateway so that some puts are retried): scraped with `fetch` while the
 * migration runs, and once more after it (`--metrics-linger`). Checks the names, types and units, that the counters
 * grow during the run, and that the last scrape's committed objects equal the rows the database has migrated.
 */
import { assert, describe, it } from "@effect/vitest"
import { FaultProxy, httpError } from "@lo-migrate/faults"
import { seedInvalidDataSet } from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { type AddressInfo, createServer, type Server } from "node:net"
import { assertInvariantExcept, committedCount, Env, runCli, seedMany, settings, setUpSchema, waitUntil } from "./cli.ts"

interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}
interface Scrape {
  readonly contentType: string
  readonly types: ReadonlyMap<string, string>
  readonly samples: ReadonlyArray<Sample>
}

/** Parses the Prometheus text format (the subset Effect writes: HELP, TYPE, `name{k="v",...} value`). */
const parse = (contentType: string, text: string): Scrape => {
  const types = new Map<string, string>()
  const samples: Array<Sample> = []
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ")) continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) {
      types.set(type[1]!, type[2]!)
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.isNotNull(m, `unparsable exposition line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m![2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!
    samples.push({ name: m![1]!, labels, value: Number(m![3]) })
  }
  return { contentType, types, samples }
}

const scrape = (url: string) =>
  Effect.tryPromise(async () => {
    const response = await fetch(url)
    assert.strictEqual(response.status, 200)
    return parse(response.headers.get("content-type") ?? "", await response.text())
  })

const value = (s: Scrape, name: string, labels: Record<string, string> = {}) =>
  s.samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))
    .reduce((n, x) => n + x.value, 0)

describe("Prometheus endpoint during a real run (PostgreSQL + Ceph RGW)", () => {
  it.live("scraped while migrating: lo_migrate_* names, types and units; counters grow; the final count is the rows migrated", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const good = yield* seedMany(240)
      const bad = yield* seedInvalidDataSet
      const { env } = yield* settings
      const bucket = yield* TestBucket
      const proxy = yield* FaultProxy.make({ targetPort: Number(new URL(bucket.config.endpoint!).port) })
      const scrapes: Array<Scrape> = []
      let final: Scrape | undefined
      const run = yield* runCli(
        [
          "--metrics-port", "0", "--metrics-linger", "60", "--storer-threads", "2", "--receiver-threads", "1",
          "--commit-chunk", "10", "-i", "1"
        ],
        { ...env, S3_URL: proxy.url },
        (child, output) =>
          Effect.gen(function*() {
            yield* waitUntil("the metrics URL", Effect.sync(() => /serving Prometheus metrics on (\S+)/.test(output.stderr)))
            const url = /serving Prometheus metrics on (\S+)/.exec(output.stderr)![1]!
            assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
            yield* waitUntil("the first commits", Effect.map(committedCount, (n) => n >= 1))
            // every 5th request answered 500 from now on: the run retries its puts
            yield* proxy.setFault(httpError(500, 0.2))
            while (!output.stdout.includes("failed and were skipped") && !output.stderr.includes("failed and were skipped")) {
              scrapes.push(yield* scrape(url))
              yield* Effect.sleep("150 millis")
            }
            final = yield* scrape(url)
            child.kill("SIGTERM") // ends the linger
          })
      )
      assert.strictEqual(run.code, 1, run.stderr) // the invalid rows are reported: exit 1
      const migrated = (yield* assertInvariantExcept([])).committed
      assert.strictEqual(migrated, good.length)

      // scraped during the run: some scrape saw part of the rows committed, and the counters never went down
      assert.isAtLeast(scrapes.length, 3)
      const commits = scrapes.map((s) => value(s, "lo_migrate_objects_total", { stage: "commit" }))
      assert.isTrue(commits.some((n) => n > 0 && n < good.length), `a scrape in the middle of the run: ${commits.join(",")}`)
      for (let i = 1; i < scrapes.length; i++) {
        for (const stage of ["source", "read", "store", "commit"]) {
          assert.isAtLeast(
            value(scrapes[i]!, "lo_migrate_objects_total", { stage }),
            value(scrapes[i - 1]!, "lo_migrate_objects_total", { stage })
          )
          assert.isAtLeast(
            value(scrapes[i]!, "lo_migrate_bytes_total", { stage }),
            value(scrapes[i - 1]!, "lo_migrate_bytes_total", { stage })
          )
        }
      }
      assert.isTrue(scrapes.some((s) => value(s, "lo_migrate_in_flight_bytes") > 0), "bytes in flight seen mid-run")

      // the last scrape: totals equal what the database says
      const last = final!
      assert.strictEqual(last.contentType, "text/plain; version=0.0.4; charset=utf-8")
      assert.strictEqual(value(last, "lo_migrate_objects_total", { stage: "commit" }), migrated)
      const goodBytes = good.reduce((n, r) => n + r.digests.size, 0)
      assert.strictEqual(value(last, "lo_migrate_bytes_total", { stage: "commit" }), goodBytes)
      assert.strictEqual(value(last, "lo_migrate_objects_total", { stage: "source" }), good.length + bad.all.length)
      assert.strictEqual(value(last, "lo_migrate_row_failures_total"), bad.all.length)
      assert.strictEqual(value(last, "lo_migrate_row_failures_total", { reason: "MalformedHash" }), 2)
      assert.strictEqual(value(last, "lo_migrate_row_failures_total", { reason: "NullOid" }), 1)
      assert.isAbove(value(last, "lo_migrate_retries_total", { operation: "put" }), 0, "puts were retried")
      assert.strictEqual(value(last, "lo_migrate_in_flight_bytes"), 0)
      assert.strictEqual(value(last, "lo_migrate_shard_info", { shard: "0/1" }), 1)
      assert.strictEqual(value(last, "lo_migrate_queue_capacity_objects", { queue: "store" }), 1024)
      assert.strictEqual(value(last, "lo_migrate_queue_used_objects", { queue: "commit" }), 0)
      assert.strictEqual(value(last, "lo_migrate_concurrency_max", { stage: "store" }), 2)
      assert.strictEqual(value(last, "lo_migrate_pending_at_start_objects"), good.length + bad.all.length)
      assert.isAbove(value(last, "lo_migrate_start_time_seconds"), 1.7e9)

      // Prometheus conventions: the prefix, counters end in _total, the unit is in the name
      const expected: Record<string, string> = {
        lo_migrate_objects_total: "counter",
        lo_migrate_bytes_total: "counter",
        lo_migrate_row_failures_total: "counter",
        lo_migrate_retries_total: "counter",
        lo_migrate_in_flight_bytes: "gauge",
        lo_migrate_queue_used_objects: "gauge",
        lo_migrate_queue_capacity_objects: "gauge",
        lo_migrate_concurrency_limit: "gauge",
        lo_migrate_shard_info: "gauge",
        lo_migrate_start_time_seconds: "gauge"
      }
      for (const [name, type] of Object.entries(expected)) assert.strictEqual(last.types.get(name), type, name)
      for (const [name, type] of last.types) {
        if (!name.startsWith("lo_migrate_")) continue
        assert.match(name, /^lo_migrate_[a-z_]+$/)
        if (type === "counter") assert.match(name, /_total$/, `counter ${name}`)
        else assert.notMatch(name, /_total$/, `gauge ${name}`)
      }
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("--log-format json: every stdout line a JSON record (configuration, a status per interval, summary), the last status with every row; --log-format line: one line each", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(60)
      const { env } = yield* settings
      const json = yield* runCli(["--log-format", "json", "-i", "1", "--storer-threads", "2"], env)
      assert.strictEqual(json.code, 0, json.stderr)
      // every line of stdout is a JSON record: the configuration, the statuses, the summary
      const records = json.stdout.trim().split("\n").map((l) => JSON.parse(l))
      assert.strictEqual(records[0].type, "configuration")
      assert.strictEqual(records.at(-1).type, "summary")
      assert.strictEqual(records.at(-1).migrated, rows.length)
      assert.isTrue(records.at(-1).completed)
      const statuses = records.filter((r) => r.type === "status")
      assert.strictEqual(statuses.length, records.length - 2)
      assert.isAtLeast(statuses.length, 2, json.stdout)
      const last = statuses.at(-1)
      assert.strictEqual(last.progress.migrated, rows.length)
      assert.strictEqual(last.progress.pending, rows.length)
      assert.strictEqual(last.progress.migratedBytes, rows.reduce((n: number, r) => n + r.digests.size, 0))
      assert.strictEqual(last.stages.commit.objects, rows.length)
      assert.deepStrictEqual(last.throttle, { objectsPerSecond: null, bytesPerSecond: null })
      assert.notInclude(json.stdout, "Progress Overview")
      // the log lines on stderr are JSON too
      const logs = json.stderr.split("\n").filter((l) => l.trim() !== "")
      assert.isAtLeast(logs.length, 1)
      for (const l of logs) assert.doesNotThrow(() => JSON.parse(l), l)

      // the same rows again (their objects are in the bucket already: found, not uploaded again)
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE _nice_binary SET sha2 = NULL`
      const again = rows
      const line = yield* runCli(["--log-format", "line", "-i", "1", "--storer-threads", "2"], env)
      assert.strictEqual(line.code, 0, line.stderr)
      const statusLines = line.stdout.split("\n").filter((l) => / UTC [\d.?]+% \d+\/[\d?]+ objects, /.test(l))
      assert.isAtLeast(statusLines.length, 2, line.stdout)
      assert.match(statusLines.at(-1)!, new RegExp(` 100\\.00% ${again.length}/${again.length} objects, .*ETA done`))
      assert.notInclude(line.stdout, "Progress Overview")
    }).pipe(Effect.provide(Env)), 180_000)

  it.live("--max-objects-per-second and --max-bandwidth hold the read stage at the limit, and the status shows it", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(60)
      const totalBytes = rows.reduce((n: number, r) => n + r.digests.size, 0)
      const { env } = yield* settings
      const sql = yield* SqlClient.SqlClient
      /** The JSON statuses of a run, and the read stage's objects and bytes per second between the first and last. */
      const throttledRun = (args: ReadonlyArray<string>) =>
        Effect.gen(function*() {
          yield* sql`UPDATE _nice_binary SET sha2 = NULL`
          const run = yield* runCli([...args, "--log-format", "json", "-i", "1"], env)
          assert.strictEqual(run.code, 0, run.stderr)
          const statuses = run.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.type === "status")
          assert.strictEqual(statuses.at(-1).progress.migrated, rows.length)
          return statuses
        })

      // 20 objects/s: 60 rows need at least (60 - 1) / 20 = 2.95 s in the read stage
      const byObjects = yield* throttledRun(["--max-objects-per-second", "20"])
      assert.deepStrictEqual(byObjects.at(-1).throttle, { objectsPerSecond: 20, bytesPerSecond: null })
      const lastRead = byObjects.find((s) => s.stages.read.objects === rows.length)
      assert.isAtLeast(
        Date.parse(lastRead.time) - Date.parse(byObjects[0].time),
        (rows.length - 1 - 20) / 20 * 1000,
        "no faster than the limit (one unit of credit, one burst of slack)"
      )
      // between two statuses, never more than the rate plus one burst (one second's worth)
      for (let i = 1; i < byObjects.length; i++) {
        const seconds = (Date.parse(byObjects[i].time) - Date.parse(byObjects[i - 1].time)) / 1000
        assert.isAtMost(byObjects[i].stages.read.objects - byObjects[i - 1].stages.read.objects, 20 * seconds + 20)
      }

      // 4 MiB/s over the rows' bytes
      const byBytes = yield* throttledRun(["--max-bandwidth", "4"])
      assert.deepStrictEqual(byBytes.at(-1).throttle, { objectsPerSecond: null, bytesPerSecond: 4 * 1024 * 1024 })
      const started = byBytes[0]
      const done = byBytes.find((s) => s.stages.read.bytes === totalBytes)
      const seconds = (Date.parse(done.time) - Date.parse(started.time)) / 1000
      assert.isAtLeast(seconds, (totalBytes / (4 * 1024 * 1024)) - 1 - 1, "no faster than 4 MiB/s (one burst and one status interval of slack)")

      // the text block shows the limit
      yield* sql`UPDATE _nice_binary SET sha2 = NULL`
      const text = yield* runCli(["--max-objects-per-second", "200", "--max-bandwidth", "100"], env)
      assert.strictEqual(text.code, 0, text.stderr)
      assert.include(text.stdout, "Throttle: at most 200 obj/s, 100.00 MiB/s into the read stage (this process)")
      assert.include(text.stdout, "throttle:            200 objects/s, 100 MiB/s (this process)")
    }).pipe(Effect.provide(Env)), 180_000)

  it.live("a metrics port that cannot be bound: exit 2 naming the option, before anything is written", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      yield* seedMany(3)
      const { env } = yield* settings
      const taken = yield* Effect.acquireRelease(
        Effect.callback<Server>((resume) => {
          const server = createServer()
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const port = (taken.address() as AddressInfo).port
      const run = yield* runCli(["--metrics-port", String(port)], env)
      assert.strictEqual(run.code, 2, run.stderr)
      assert.match(run.stderr, new RegExp(`--metrics-port/--metrics-host: cannot serve metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))
      assert.strictEqual(yield* committedCount, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)
})

/**
 * End-to-end: the CLI as a subprocess (exactly what operators run: `node --conditions=development src/main.ts`),
 * against a real PostgreSQL (a throwaway database per test) and the real Ceph RADOS Gateway (a throwaway bucket per
 * test; `npm test` starts Ceph and exports S3_ENDPOINT etc.).
 *
 * The invariant checked after every run, however it ended: every `sha2` recorded in the database has its object in
 * the bucket under that key, and the object's bytes hash to it (nothing committed without its object).
 */
import { assert, describe, it } from "@effect/vitest"
import { FaultProxy } from "@lo-migrate/faults"
import { PendingIndex, Sha2UniqueIndex } from "@lo-migrate/postgres"
import {
  insertBinary,
  type InsertedBinary,
  seedInvalidDataSet,
  seedOriginalDataSet,
  ThrowawayDatabase
} from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect, Fiber, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  assertInvariant,
  assertInvariantExcept,
  assertMigrated,
  assertNoSecrets,
  committedCount,
  dropSha2Column,
  Env,
  indexCount,
  listKeys,
  pgSecret,
  runCli,
  seedMany,
  settings,
  setUpSchema,
  sha256,
  waitUntil
} from "./cli.ts"

describe("lo-migrate CLI end to end (PostgreSQL + Ceph RGW)", () => {
  it.live("migrates the original data set: exit 0, every object in the bucket with the right bytes, no secret printed", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const data = yield* seedOriginalDataSet
      yield* dropSha2Column
      const all = [...data.pending, data.migrated]
      const { env, secret } = yield* settings
      const run = yield* runCli(["-i", "1", "--in-mem-max", "64", "--upload-chunk-size", "5120", "--max-in-flight", "4"], env)
      assert.strictEqual(run.code, 0, run.stderr)
      assert.include(run.stdout, "configuration")
      assert.include(run.stdout, "<redacted>")
      assert.include(run.stdout, "Progress Overview")
      assert.include(run.stdout, "migration completed")
      assert.include(run.stderr, "added column _nice_binary.sha2")
      yield* assertMigrated(all)
      const keys = yield* listKeys((yield* TestBucket).client, (yield* TestBucket).name)
      assert.strictEqual(keys.length, new Set(all.map((r) => r.digests.sha256)).size)
      assertNoSecrets(run, [pgSecret, secret])
      const inv = yield* assertInvariant
      assert.strictEqual(inv.left, 0)
    }).pipe(Effect.provide(Env)), 180_000)

  it.live("rows the application inserts during a run, behind the pass: exit 0 and a last line that counts them; the next run migrates them", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(60)
      const { env } = yield* settings
      const late: Array<InsertedBinary> = []
      // throttled, so that the application's inserts come while the run is under way, after its one page of rows
      const run = yield* runCli(["--max-objects-per-second", "20", "--report", "/dev/null"], env, () =>
        Effect.gen(function*() {
          yield* waitUntil("10 rows committed", Effect.map(committedCount, (n) => n >= 10))
          for (let i = 0; i < 3; i++) {
            late.push(yield* insertBinary({ bytes: { size: 3000 + i, seed: 77_000 + i }, mimeType: "text/plain" }))
          }
        }))
      assert.strictEqual(run.code, 0, run.stdout + run.stderr)
      assert.include(run.stdout, "60 objects migrated")
      assert.include(run.stdout, "migration completed")
      assert.include(
        run.stdout,
        "3 row(s) without sha2 are left: the application inserted them during the run, behind the pass (rows are " +
          "taken in hash order); the next run migrates them"
      )
      yield* assertMigrated(rows)
      assert.strictEqual((yield* assertInvariant).left, 3)
      const again = yield* runCli(["--report", "/dev/null", "--log-format", "json"], env)
      assert.strictEqual(again.code, 0, again.stdout + again.stderr)
      const summary = again.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
        .find((r) => r.type === "summary")
      assert.deepInclude(summary, { migrated: 3, completed: true, leftBehind: 0 })
      yield* assertMigrated([...rows, ...late])
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("the invalid data set: exit 1, every bad row in the report with its reason, the good rows migrated", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const good = yield* seedOriginalDataSet
      const bad = yield* seedInvalidDataSet
      const { env, secret } = yield* settings
      const dir = mkdtempSync(join(tmpdir(), "lo-migrate-e2e-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const report = join(dir, "failed.jsonl")
      const run = yield* runCli(["--report", report, "--log-format", "json", "-k", env.AWS_ACCESS_KEY_ID, "-s", secret], {
        ...env,
        AWS_ACCESS_KEY_ID: "",
        AWS_SECRET_ACCESS_KEY: ""
      })
      assert.strictEqual(run.code, 1, run.stderr)
      assert.include(run.stderr, "--secret-key on the command line")
      assertNoSecrets(run, [pgSecret, secret])
      // --log-format json: every line on stderr is a JSON object, the closing count of failed rows too
      const logLines = run.stderr.trim().split("\n")
      const logs = logLines.map((l) => {
        assert.doesNotThrow(() => JSON.parse(l), l)
        return JSON.parse(l) as { readonly message: string; readonly level: string }
      })
      assert.isAtLeast(logLines.filter((l) => l.includes("row failed")).length, bad.all.length)
      assert.deepStrictEqual(
        logs.filter((l) => l.message.includes("failed and were skipped")).map((l) => [l.level, l.message]),
        [["ERROR", `${bad.all.length} row(s) failed and were skipped (listed in ${report})`]]
      )
      const lines = readFileSync(report, "utf8").trim().split("\n").map((l) => JSON.parse(l))
      assert.strictEqual(lines.length, bad.all.length)
      for (const row of bad.all) {
        const line = lines.find((l) => l.hash === row.hash)
        assert.isDefined(line, `report line for ${row.hash}`)
        assert.strictEqual(line.reason, row.expected)
        assert.strictEqual(line.oid, row.oid)
        assert.isString(line.detail)
      }
      yield* assertMigrated(good.pending)
      // (the row seeded as "migrated by an earlier run" has no object in this fresh bucket: not this run's doing)
      const inv = yield* assertInvariantExcept([good.migrated.hash])
      assert.strictEqual(inv.left, bad.all.length)
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("--dry-run checks and counts, and writes nothing", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const data = yield* seedOriginalDataSet
      yield* dropSha2Column
      const { env } = yield* settings
      const run = yield* runCli(["--dry-run"], env)
      assert.strictEqual(run.code, 0, run.stderr)
      const all = [...data.pending, data.migrated]
      assert.match(run.stdout, new RegExp(`${all.length} of ${all.length} rows left`))
      assert.include(run.stdout, `largest object 10.00 MiB (${10 * 1024 * 1024} bytes)`)
      assert.include(run.stdout, "sha2 missing")
      const sql = yield* SqlClient.SqlClient
      const [col] = yield* sql<{ readonly n: number | bigint }>`
        SELECT count(*) AS n FROM information_schema.columns WHERE table_name = '_nice_binary' AND column_name = 'sha2'`
      assert.strictEqual(Number(col!.n), 0, "the dry run must not add the column")
      const bucket = yield* TestBucket
      assert.deepStrictEqual(yield* listKeys(bucket.client, bucket.name), [])
    }).pipe(Effect.provide(Env)), 120_000)

  it.live("bad options: exit 2 with the option named, before connecting anywhere", () =>
    Effect.gen(function*() {
      // nothing listens on port 1: had it tried to connect, the run would end with exit code 3, not 2
      const env = { PG_URL: "postgresql://nobody@127.0.0.1:1/none", S3_URL: "http://127.0.0.1:1", S3_BUCKET: "b" }
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
        [["--storer-threads", "0"], /--storer-threads/],
        [["--upload-chunk-size", "1024"], /--upload-chunk-size/],
        [["--in-mem-max", "-1"], /--in-mem-max/],
        [["-u", "not a url"], /--s3-url/],
        [["--receiver-queue", "lots"], /--receiver-queue/]
      ]
      for (const [args, message] of cases) {
        const run = yield* runCli(args, env)
        assert.strictEqual(run.code, 2, `${args.join(" ")}: ${run.stderr}`)
        assert.match(run.stderr, message)
      }
      // a refused port may be an outage: waited out within --retry-budget, then exit 3
      const unreachable = yield* runCli(["--retry-budget", "2"], env)
      assert.strictEqual(unreachable.code, 3, unreachable.stderr)
      assert.match(unreachable.stderr, /start-up: connect failed: .*ECONNREFUSED.*; retrying/)
      assert.match(unreachable.stderr, /fatal: .*\n.*PostgreSQL .*127\.0\.0\.1:1[\s\S]*resume/)
    }), 120_000)

  it.live("an outage at start-up (PostgreSQL refusing for 4 s, then S3 for 4 s more) is waited out: exit 0", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(20)
      const { env, bucket } = yield* settings
      const { forwarder, url } = yield* databaseForwarder(env.PG_URL)
      const s3 = yield* FaultProxy.make({ targetPort: Number(new URL(bucket.config.endpoint!).port) })
      yield* forwarder.down
      yield* s3.down
      const started = Date.now()
      const run = yield* runCli(["-i", "1"], { ...env, PG_URL: url, S3_URL: s3.url }, () =>
        Effect.sleep("4 seconds").pipe(
          Effect.andThen(forwarder.up),
          Effect.andThen(Effect.sleep("4 seconds")),
          Effect.andThen(s3.up)
        ))
      assert.strictEqual(run.code, 0, run.stderr)
      assert.isAtLeast(Date.now() - started, 8_000)
      assert.match(run.stderr, /WARN  start-up: connect failed: .*ECONNREFUSED.*; retrying/)
      assert.match(run.stderr, /WARN  start-up: bucket check failed: S3 HeadBucket .*; retrying/)
      yield* assertMigrated(rows)
      assert.strictEqual((yield* assertInvariant).left, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("a misconfiguration at start-up fails at once with exit 2: missing bucket, wrong secret key, missing database", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      yield* seedMany(3)
      const { env } = yield* settings
      const noDb = new URL(env.PG_URL)
      noDb.pathname = "/lo_migrate_no_such_database"
      const cases: ReadonlyArray<readonly [string, Record<string, string>, RegExp]> = [
        ["missing bucket", { ...env, S3_BUCKET: `${env.S3_BUCKET}-missing` }, /bucket check: .*does not exist/],
        ["wrong secret", { ...env, AWS_SECRET_ACCESS_KEY: "wrong-secret-0123456789abcdefghijklmnop" }, /bucket check: .*HTTP 403/],
        ["missing database", { ...env, PG_URL: noDb.toString() }, /connect: .*does not exist/]
      ]
      for (const [name, caseEnv, message] of cases) {
        const started = Date.now()
        const run = yield* runCli([], caseEnv)
        assert.strictEqual(run.code, 2, `${name}: ${run.stderr}`)
        assert.match(run.stderr, message, name)
        assert.include(run.stderr, "Refusing to start", name)
        assert.notInclude(run.stderr, "retrying", name)
        assert.isBelow(Date.now() - started, 30_000, `${name}: not retried`)
      }
      assert.strictEqual(yield* committedCount, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("finalize is refused while rows are left, accepted after the migration", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      yield* seedOriginalDataSet
      const { env } = yield* settings
      const refused = yield* runCli(["finalize"], { PG_URL: env.PG_URL })
      assert.strictEqual(refused.code, 1, refused.stderr)
      assert.match(refused.stderr, /finalize refused: \d+ row\(s\)/)
      const migrated = yield* runCli(["-f"], env)
      assert.strictEqual(migrated.code, 0, migrated.stderr)
      assert.include(migrated.stdout, "finalize: done")
      const again = yield* runCli(["finalize"], { PG_URL: env.PG_URL })
      assert.strictEqual(again.code, 0, again.stderr)
      assert.strictEqual(
        again.stdout,
        `finalize: ${env.PG_URL.replace(`:${pgSecret}@`, ":<redacted>@")}\n` +
          "adding NOT NULL constraint and UNIQUE INDEX on _nice_binary.sha2 ...\nfinalize: done\n"
      )
      const sql = yield* SqlClient.SqlClient
      const [col] = yield* sql<{ readonly nullable: string }>`
        SELECT is_nullable AS nullable FROM information_schema.columns
        WHERE table_name = '_nice_binary' AND column_name = 'sha2'`
      assert.strictEqual(col!.nullable, "NO")
      const [idx] = yield* sql<{ readonly n: number | bigint }>`
        SELECT count(*) AS n FROM pg_indexes WHERE indexname = ${Sha2UniqueIndex}`
      assert.strictEqual(Number(idx!.n), 1)
      // the run built the index of pending rows; finalize dropped it with the last pending row
      assert.strictEqual(yield* indexCount(PendingIndex), 0)
    }).pipe(Effect.provide(Env)), 180_000)

  it.live("finalize --log-format json: only JSON records on stdout, refused then done; the constraint is there", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      yield* Effect.forEach([1, 2, 3], (i) => insertBinary({ bytes: new TextEncoder().encode(`finalize ${i}`), mimeType: "text/plain" }))
      const { env } = yield* settings
      const records = (stdout: string) => stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
      const postgres = env.PG_URL.replace(`:${pgSecret}@`, ":<redacted>@")
      const refused = yield* runCli(["finalize", "--log-format", "json"], { PG_URL: env.PG_URL })
      assert.strictEqual(refused.code, 1, refused.stderr)
      assert.match(refused.stderr, /finalize refused: 3 row\(s\)/)
      assert.deepStrictEqual(records(refused.stdout), [{ type: "finalize", state: "started", postgres }])
      const migrated = yield* runCli([], env)
      assert.strictEqual(migrated.code, 0, migrated.stderr)
      const done = yield* runCli(["finalize"], { PG_URL: env.PG_URL, LO_MIGRATE_LOG_FORMAT: "json" })
      assert.strictEqual(done.code, 0, done.stderr)
      assert.deepStrictEqual(records(done.stdout), [
        { type: "finalize", state: "started", postgres },
        { type: "finalize", state: "done" }
      ])
      const sql = yield* SqlClient.SqlClient
      const [col] = yield* sql<{ readonly nullable: string }>`
        SELECT is_nullable AS nullable FROM information_schema.columns
        WHERE table_name = '_nice_binary' AND column_name = 'sha2'`
      assert.strictEqual(col!.nullable, "NO")
      assert.strictEqual(yield* indexCount(Sha2UniqueIndex), 1)
    }).pipe(Effect.provide(Env)), 180_000)

  it.live("Ctrl-C mid-run: stops gracefully (exit 130), nothing committed without its object; a rerun finishes", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(300)
      const { env } = yield* settings
      // throttled (6 s at least for the 300 rows): the signal arrives mid-run on a fast machine too
      const args = ["--storer-threads", "1", "--receiver-threads", "1", "--commit-chunk", "5", "-i", "1", "--max-objects-per-second", "50"]
      const first = yield* runCli(args, env, (child) =>
        waitUntil("the first commits", Effect.map(committedCount, (n) => n >= 10)).pipe(
          Effect.andThen(Effect.sync(() => child.kill("SIGINT")))
        ))
      assert.strictEqual(first.code, 130, first.stderr)
      assert.include(first.stderr, "interrupted; run again to resume")
      assert.include(first.stdout, "objects migrated")
      const after = yield* assertInvariant
      assert.isAbove(after.committed, 0)
      assert.isAbove(after.left, 0, "the run should have been stopped before the end")
      // the run built the partial index of pending rows, so the rerun finds its first row without a long scan
      assert.strictEqual(yield* indexCount(PendingIndex), 1)
      const second = yield* runCli(["--storer-threads", "4", "--commit-chunk", "50"], env)
      assert.strictEqual(second.code, 0, second.stderr)
      yield* assertMigrated(rows)
      assert.strictEqual((yield* assertInvariant).left, 0)
    }).pipe(Effect.provide(Env)), 240_000)

  it.live("a second SIGTERM exits at once (exit 130), nothing committed without its object; a rerun finishes", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(200)
      const { env } = yield* settings
      let secondAt = 0
      const first = yield* runCli(["--storer-threads", "1", "--receiver-threads", "1", "--commit-chunk", "5"], env, (child) =>
        waitUntil("the first commits", Effect.map(committedCount, (n) => n >= 5)).pipe(
          Effect.andThen(Effect.sync(() => child.kill("SIGTERM"))),
          Effect.andThen(Effect.sleep("100 millis")),
          Effect.andThen(Effect.sync(() => {
            secondAt = Date.now()
            child.kill("SIGTERM")
          }))
        ))
      const exitedAfter = Date.now() - secondAt
      assert.strictEqual(first.code, 130, first.stderr)
      assert.include(first.stderr, "SIGTERM again: exiting at once")
      assert.isBelow(exitedAfter, 6_000, "the second signal must end the process within its hard deadline")
      yield* assertInvariant
      const second = yield* runCli(["--storer-threads", "4"], env)
      assert.strictEqual(second.code, 0, second.stderr)
      yield* assertMigrated(rows)
      assert.strictEqual((yield* assertInvariant).left, 0)
    }).pipe(Effect.provide(Env)), 240_000)

  it.live("kill -9 mid-run: nothing committed without its object; a rerun finishes", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(300)
      const { env } = yield* settings
      const args = ["--storer-threads", "2", "--receiver-threads", "1", "--commit-chunk", "3", "--max-objects-per-second", "50"]
      const first = yield* runCli(args, env, (child) =>
        waitUntil("the first commits", Effect.map(committedCount, (n) => n >= 10)).pipe(
          Effect.andThen(Effect.sync(() => child.kill("SIGKILL")))
        ))
      assert.strictEqual(first.signal, "SIGKILL")
      const after = yield* assertInvariant
      assert.isAbove(after.left, 0, "the run should have been killed before the end")
      const second = yield* runCli(args, env)
      assert.strictEqual(second.code, 0, second.stderr)
      yield* assertMigrated(rows)
      assert.strictEqual((yield* assertInvariant).left, 0)
    }).pipe(Effect.provide(Env)), 240_000)
})

/** Terminates the migrator's backends (application_name lo-migrate) in this test's own database only. */
const terminateMigratorBackends = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly killed: boolean }>`
    SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'lo-migrate' AND pid <> pg_backend_pid()`
  return rows.filter((r) => r.killed).length
})

/**
 * The fault proxy forwarding bytes (tcp) in front of the throwaway database, and `pgUrl` pointed at it: `down` cuts
 * every connection and closes the port, `up` reopens it, `stallConnections` freezes the open connections.
 */
const databaseForwarder = (pgUrl: string, maxStallMillis?: number) =>
  Effect.gen(function*() {
    const db = yield* ThrowawayDatabase
    const target = new URL(Redacted.value(db.url))
    const forwarder = yield* FaultProxy.make({
      targetPort: Number(target.port || 5432),
      protocol: "tcp",
      ...(maxStallMillis === undefined ? {} : { maxStallMillis })
    })
    const url = new URL(pgUrl)
    url.host = `127.0.0.1:${forwarder.port}`
    return { forwarder, url: url.toString() }
  })

/** `n` rows seeded and migrated by a run that exits 0: the environment of the run, for the commands that follow. */
const migratedTable = (n: number) =>
  Effect.gen(function*() {
    yield* setUpSchema
    const rows = yield* seedMany(n)
    const { env } = yield* settings
    const first = yield* runCli(["-i", "1"], env)
    assert.strictEqual(first.code, 0, first.stderr)
    yield* assertMigrated(rows)
    return env
  })

/** Milliseconds from the run's first commits (`during` starts then) to its exit. */
const timedFromFirstCommits = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  during: Effect.Effect<unknown, unknown, SqlClient.SqlClient>
) =>
  Effect.gen(function*() {
    let started = Date.now()
    const run = yield* runCli(args, env, () =>
      waitUntil("the first commits", Effect.map(committedCount, (n) => n >= 10)).pipe(
        Effect.andThen(Effect.sync(() => void (started = Date.now()))),
        Effect.andThen(during)
      ))
    return { run, millis: Date.now() - started }
  })

describe("lo-migrate CLI end to end: dying database connections (PostgreSQL + Ceph RGW)", () => {
  it.live("backends terminated every 2 s during the run: exit 0, every row migrated with the right object", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(300)
      const { env } = yield* settings
      let kills = 0
      // Throttled to 25 rows/s, so the run lasts at least 12 s on any machine and meets several rounds of kills
      // (unthrottled, 300 small rows can be done before the first round).
      const args = [
        "--storer-threads", "4", "--in-mem-max", "64", "--commit-chunk", "5", "-i", "1",
        "--max-objects-per-second", "25"
      ]
      const run = yield* runCli(args, env, (child) =>
        Effect.gen(function*() {
          // Bounded: at most 60 rounds (2 min), and only while the migrator runs.
          for (let round = 0; round < 60 && child.exitCode === null && child.signalCode === null; round++) {
            yield* Effect.sleep("2 seconds")
            kills += yield* terminateMigratorBackends
          }
        }).pipe(Effect.forkScoped))
      assert.strictEqual(run.code, 0, run.stderr)
      assert.isAtLeast(kills, 2, "backends were terminated during the run")
      yield* assertMigrated(rows)
      assert.strictEqual((yield* assertInvariant).left, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("a failover: every connection cut and the server refusing for 20 s: the run waits, then ends with exit 0", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(300)
      const { env } = yield* settings
      const { forwarder, url } = yield* databaseForwarder(env.PG_URL)
      // throttled (6 s at least): the outage begins while the run still has rows to commit
      const args = ["--storer-threads", "2", "--receiver-threads", "1", "--commit-chunk", "3", "-i", "2", "--max-objects-per-second", "50"]
      const started = Date.now()
      const run = yield* runCli(args, { ...env, PG_URL: url }, () =>
        waitUntil("the first commits", Effect.map(committedCount, (n) => n >= 10)).pipe(
          Effect.andThen(forwarder.down),
          Effect.andThen(Effect.sleep("20 seconds")),
          Effect.andThen(forwarder.up)
        ))
      const took = Date.now() - started
      assert.strictEqual(run.code, 0, run.stderr)
      assert.isAtLeast(took, 20_000)
      assert.match(run.stdout, /PostgreSQL unavailable for \d+ s, retrying; \d+ min \d+ s left/)
      yield* assertMigrated(rows)
      assert.strictEqual((yield* assertInvariant).left, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("status, verify and finalize wait out a database that refuses connections at their start; verify's S3 listing keeps the same --retry-budget", () =>
    Effect.gen(function*() {
      const env = yield* migratedTable(20)
      const { forwarder, url } = yield* databaseForwarder(env.PG_URL)
      const through = { ...env, PG_URL: url }
      // with a budget of 1 s the refusal ends the command: exit 3 (what the budget carries below)
      yield* forwarder.down
      const short = yield* runCli(["status", "--retry-budget", "1"], through)
      assert.strictEqual(short.code, 3, short.stderr)
      assert.match(short.stderr, /status: connect failed: .*; retrying \(failing for \d+ s, gives up after 1 s: --retry-budget\)/)
      assert.include(short.stderr, "Retried for 1 s (--retry-budget); run again once the server answers.")
      for (const command of ["status", "verify", "finalize"]) {
        yield* forwarder.down
        const run = yield* runCli([command, "--retry-budget", "60"], through, () =>
          Effect.sleep("3 seconds").pipe(Effect.andThen(forwarder.up)))
        assert.strictEqual(run.code, 0, `${command}: ${run.stderr}`)
        assert.match(run.stderr, new RegExp(`${command}: connect failed: .*; retrying`), command)
      }
      assert.strictEqual(yield* indexCount(Sha2UniqueIndex), 1, "finalize did its work")
      // verify's listing keeps the same budget: S3 refusing, 2 s of budget (the default would wait 5 minutes): exit 3
      const { bucket } = yield* settings
      const s3 = yield* FaultProxy.make({ targetPort: Number(new URL(bucket.config.endpoint!).port) })
      yield* s3.down
      const started = Date.now()
      const listing = yield* runCli(["verify", "--retry-budget", "2"], { ...env, S3_URL: s3.url })
      assert.strictEqual(listing.code, 3, listing.stderr)
      assert.isBelow(Date.now() - started, 60_000)
      assert.match(listing.stderr, /fatal: .*\n\s+at S3 /)
      yield* s3.up
      const listed = yield* runCli(["verify", "--retry-budget", "2"], { ...env, S3_URL: s3.url })
      assert.strictEqual(listed.code, 0, listed.stderr)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("finalize whose connections are terminated while it waits for a lock: retried as a whole, exit 0, the index built", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const env = yield* migratedTable(20)
      // the application holds a lock on the table for 8 s: finalize's ALTER TABLE waits for it
      let holder: number | undefined
      const released = yield* Effect.forkScoped(sql.withTransaction(
        sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`.pipe(
          Effect.tap(([row]) => Effect.sync(() => void (holder = row!.pid))),
          Effect.andThen(sql`LOCK TABLE _nice_binary IN ACCESS SHARE MODE`),
          Effect.andThen(Effect.sleep("8 seconds"))
        )
      ))
      // finalize's sessions (this test's pool has lo-migrate's application_name too: not the holder's, not this one)
      const terminateFinalize = () => Effect.map(
        sql<{ readonly killed: boolean }>`
          SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'lo-migrate' AND pid <> pg_backend_pid()
            AND pid <> ${holder ?? 0}`,
        (rows) => rows.filter((r) => r.killed).length
      )
      let terminated = 0
      const run = yield* runCli(["finalize", "--retry-budget", "60"], env, () =>
        waitUntil("finalize waiting for the lock", Effect.map(sql<{ readonly n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'lo-migrate' AND wait_event_type = 'Lock'`,
          ([row]) => row!.n > 0)).pipe(
          Effect.andThen(Effect.suspend(terminateFinalize)),
          Effect.tap((n) => Effect.sync(() => void (terminated = n)))
        ))
      yield* Fiber.join(released)
      assert.isAtLeast(terminated, 1)
      assert.strictEqual(run.code, 0, run.stderr)
      assert.match(run.stderr, /finalize failed: .*; retrying/)
      assert.strictEqual(yield* indexCount(Sha2UniqueIndex), 1)
      const [column] = yield* sql<{ readonly nullable: string }>`
        SELECT is_nullable AS nullable FROM information_schema.columns WHERE table_name = '_nice_binary' AND column_name = 'sha2'`
      assert.strictEqual(column!.nullable, "NO")
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("stalled connections (no answer, socket open): cut by --pg-statement-timeout, retried on fresh ones, exit 0 in about the time of a run without", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* setUpSchema
      const rows = yield* seedMany(300)
      const { env } = yield* settings
      // a stall that only ends when the proxy gives up on it (100 s): without a statement timeout the run waits that long
      const { forwarder, url } = yield* databaseForwarder(env.PG_URL, 100_000)
      const args = ["--storer-threads", "2", "--receiver-threads", "2", "--commit-chunk", "3", "-i", "1", "--pg-statement-timeout", "3"]
      let frozen = 0
      const stalled = yield* timedFromFirstCommits(args, { ...env, PG_URL: url }, forwarder.stallConnections.pipe(
        Effect.tap((n) => Effect.sync(() => void (frozen = n)))
      ))
      assert.strictEqual(stalled.run.code, 0, stalled.run.stderr)
      assert.isAtLeast(frozen, 2, "open connections (statements in flight among them) were frozen")
      assert.match(stalled.run.stdout, /Retries: [1-9]/)
      yield* assertMigrated(rows)
      assert.strictEqual((yield* assertInvariant).left, 0)

      // the same rows again, into a fresh bucket, without a fault: the baseline
      yield* sql`UPDATE _nice_binary SET sha2 = NULL`
      const fresh = yield* TestBucket.make()
      const baseline = yield* timedFromFirstCommits(args, { ...env, PG_URL: url, S3_BUCKET: fresh.name }, Effect.void)
      assert.strictEqual(baseline.run.code, 0, baseline.run.stderr)
      yield* assertMigrated(rows).pipe(Effect.provideService(TestBucket, fresh))
      console.log(`stalled connections: ${stalled.millis} ms from the first commits to exit, baseline ${baseline.millis} ms`)
      // a few timeouts (3 s each, plus the driver's at most 5 s to give up on the stalled connection) more, far from
      // the 100 s the stall lasts
      assert.isBelow(stalled.millis - baseline.millis, 30_000)
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)
})

/**
 * A directory on a tmpfs of `size` (e.g. "2m"), unmounted and removed with the scope: a disk that really fills up.
 * Mounting needs root (CAP_SYS_ADMIN); without it the test fails and says so.
 */
const smallDisk = (size: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const dir = mkdtempSync(join(tmpdir(), "lo-migrate-disk-"))
        execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" })
        return dir
      },
      catch: (e) =>
        new Error(`this test mounts a ${size} tmpfs to fill a disk; run it as root with mount permission (${String(e)})`)
    }).pipe(Effect.orDie),
    (dir) =>
      Effect.sync(() => {
        execFileSync("umount", [dir], { stdio: "pipe" })
        rmSync(dir, { recursive: true, force: true })
      })
  )

describe("lo-migrate CLI end to end: a full or unusable --temp-dir (PostgreSQL + Ceph RGW)", () => {
  it.live("a --temp-dir too small for the spills in flight: spilling waits for them to drain, exit 0", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(60) // 16-400 KiB each, ~12 MiB in all, every one spilled (--in-mem-max 8)
      const disk = yield* smallDisk("1m")
      const { env } = yield* settings
      const run = yield* runCli(
        ["--in-mem-max", "8", "--storer-threads", "2", "--temp-dir", disk, "--retry-budget", "60", "-i", "1"],
        env
      )
      assert.strictEqual(run.code, 0, run.stderr)
      assert.match(run.stdout, /Retries: [1-9]/, "some spills found the disk full and were retried")
      yield* assertMigrated(rows)
      assert.strictEqual((yield* assertInvariant).left, 0)
      assert.deepStrictEqual(readdirSync(disk), [], "no spill file or directory left behind")
    }).pipe(Effect.scoped, Effect.provide(Env)), 240_000)

  it.live("an object larger than the --temp-dir disk: ENOSPC, exit 3 after the budget, named as a local disk error", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      yield* insertBinary({ bytes: { size: 3 * 1024 * 1024, seed: 7 }, mimeType: "image/png" })
      const disk = yield* smallDisk("1m")
      const { env } = yield* settings
      const run = yield* runCli(["--in-mem-max", "64", "--temp-dir", disk, "--retry-budget", "2"], env)
      assert.strictEqual(run.code, 3, run.stderr)
      assert.include(run.stderr, "no space left on the device [ENOSPC]")
      assert.include(run.stderr, `at --temp-dir ${disk}`)
      assert.notInclude(run.stderr, "at PostgreSQL")
      assert.notInclude(run.stderr, "database read large object failed")
      assert.strictEqual((yield* assertInvariant).committed, 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("a --temp-dir that cannot be used (under a file, read-only): exit 3 at once, the directory and errno named", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      yield* insertBinary({ bytes: { size: 512 * 1024, seed: 8 }, mimeType: "image/png" })
      const { env } = yield* settings
      const base = mkdtempSync(join(tmpdir(), "lo-migrate-notdir-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(base, { recursive: true, force: true })))
      writeFileSync(join(base, "file"), "x")
      const underFile = join(base, "file", "spill")
      const notDir = yield* runCli(["--in-mem-max", "64", "--temp-dir", underFile], env)
      assert.strictEqual(notDir.code, 3, notDir.stderr)
      assert.include(notDir.stderr, "[ENOTDIR]")
      assert.include(notDir.stderr, `at --temp-dir ${underFile}`)
      assert.notInclude(notDir.stderr, "at PostgreSQL")

      const readOnly = yield* smallDisk("1m")
      execFileSync("mount", ["-o", "remount,ro", readOnly], { stdio: "pipe" })
      const started = Date.now()
      const ro = yield* runCli(["--in-mem-max", "64", "--temp-dir", readOnly], env)
      assert.strictEqual(ro.code, 3, ro.stderr)
      assert.include(ro.stderr, "read-only file system [EROFS]")
      assert.include(ro.stderr, `at --temp-dir ${readOnly}`)
      assert.isBelow(Date.now() - started, 30_000, "not retried: a read-only disk does not heal by waiting")
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)
})

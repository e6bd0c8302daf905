/**
 * `lo-migrate verify` end to end, as operators run it (the CLI as a subprocess) against the real PostgreSQL and Ceph
 * RGW: the real migrator migrates, verify finds it clean (default and --deep); damaged objects and an orphan are
 * reported in the JSON-lines report with exit code 1; `verify --repair`, then `migrate`, then `verify --deep` is clean;
 * bad options exit 2, an unreachable server 3; no secret in any output (checked by `runCli`).
 */
import { DeleteObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { sha256Bits, shardOfKey } from "@lo-migrate/core"
import { insertBinary, throwawayRole } from "@lo-migrate/postgres/testing"
import { readOnlyTestKey, TestBucket } from "@lo-migrate/s3/testing"
import { Effect, Redacted } from "effect"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "effect/sql"
import {
  Env,
  listKeys,
  runCli as cli,
  settings as cliSettings,
  setUpSchema,
  sha256,
  withPassword
} from "./cli.ts"

const settings = Effect.map(cliSettings, (s) => s.env)

const lines = (path: string) =>
  readFileSync(path, "utf8").trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>)

/** Mostly plain mime types, and the kinds the migrator stores as octet-stream with the original in metadata. */
const mimeTypeOf = (i: number): string =>
  i === 5
    ? "text/x-ünïcode"
    : i === 7
    ? "text/plain\r\nX-Injected: 1"
    : i === 11
    ? "not a media type"
    : i === 13
    ? "\uFEFFtext/plain" // a leading byte-order mark, pasted in from a file
    : "image/png"

describe("lo-migrate verify end to end (PostgreSQL + Ceph RGW)", () => {
  it.live("migrate, verify clean; damage found and reported; --repair, migrate, verify clean again", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      yield* setUpSchema
      const rows = yield* Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) =>
        insertBinary({ bytes: new TextEncoder().encode(`content ${i} `.repeat(1 + i * 7)), mimeType: mimeTypeOf(i) }))
      const env = yield* settings
      const dir = mkdtempSync(join(tmpdir(), "lo-migrate-verify-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const report = join(dir, "verify.jsonl")

      const migrated = yield* cli([], env)
      assert.strictEqual(migrated.code, 0, migrated.stderr)
      const clean = yield* cli(["verify", "-i", "1"], env)
      assert.strictEqual(clean.code, 0, clean.stderr)
      assert.include(clean.stdout, "Verify status at")
      assert.include(clean.stdout, "30 rows checked")
      assert.include(clean.stdout, "30 objects listed in 1 ListObjectsV2 requests")
      assert.match(clean.stdout, /rows\/s/)
      assert.include(clean.stdout, "every row checked is good")
      const deep = yield* cli(["verify", "--deep", "--concurrency", "4"], env)
      assert.strictEqual(deep.code, 0, deep.stderr)
      assert.include(deep.stdout, "30 objects downloaded and hashed")
      // --content-type reads the migrator's rule back: plain types from Content-Type, the others from the metadata
      const typed = yield* cli(["verify", "--content-type"], env)
      assert.strictEqual(typed.code, 0, typed.stdout + typed.stderr)
      assert.include(typed.stdout, "every row checked is good")

      // damage: one object deleted, one overwritten with other bytes of the same size; one orphan
      const [gone, overwritten] = [rows[3]!, rows[9]!]
      yield* Effect.tryPromise(() => bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.name, Key: gone.digests.sha256 })))
      yield* Effect.tryPromise(() =>
        bucket.client.send(
          new PutObjectCommand({ Bucket: bucket.name, Key: overwritten.digests.sha256, Body: new Uint8Array(overwritten.size) })
        )
      )
      const orphan = new TextEncoder().encode("left by an interrupted run")
      yield* Effect.tryPromise(() => bucket.client.send(new PutObjectCommand({ Bucket: bucket.name, Key: sha256(orphan), Body: orphan })))

      const fast = yield* cli(["verify", "--orphans", "--report", report], env)
      assert.strictEqual(fast.code, 1, fast.stderr)
      const fastLines = lines(report)
      assert.deepStrictEqual(
        fastLines.filter((l) => l["problem"] !== undefined).map((l) => [l["problem"], l["hash"], l["sha2"], l["oid"]]),
        [["Missing", gone.hash, gone.digests.sha256, gone.oid]]
      )
      assert.deepStrictEqual(fastLines.filter((l) => l["orphan"] !== undefined), [{ orphan: sha256(orphan), size: orphan.byteLength }])

      const repair = yield* cli(["verify", "--deep", "--repair", "--report", report], env)
      assert.strictEqual(repair.code, 1, repair.stderr)
      const repairLines = lines(report)
      assert.sameMembers(
        repairLines.filter((l) => l["problem"] !== undefined).map((l) => `${l["problem"]} ${l["hash"]}`),
        [`Missing ${gone.hash}`, `WrongContent ${overwritten.hash}`]
      )
      assert.sameMembers(
        repairLines.filter((l) => l["repair"] !== undefined).map((l) => `${l["repair"]} ${l["hash"]} ${l["objectDeleted"]}`),
        [`sha2 set to NULL ${gone.hash} false`, `sha2 set to NULL ${overwritten.hash} true`]
      )
      const remigrated = yield* cli([], env)
      assert.strictEqual(remigrated.code, 0, remigrated.stderr)
      assert.include(remigrated.stdout, "2 objects migrated")
      const after = yield* cli(["verify", "--deep"], env)
      assert.strictEqual(after.code, 0, after.stdout + after.stderr)
      assert.include(after.stdout, "30 rows checked")
      assert.include(after.stdout, "1 orphans")
    }).pipe(Effect.scoped, Effect.provide(Env)), 300_000)

  it.live("verify --log-format json: only JSON records on stdout; counts equal the table's and the bucket's", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      yield* setUpSchema
      const rows = yield* Effect.forEach(Array.from({ length: 12 }, (_, i) => i), (i) =>
        insertBinary({ bytes: new TextEncoder().encode(`json ${i} `.repeat(1 + i * 5)), mimeType: "image/png" }))
      const env = yield* settings
      const migrated = yield* cli([], env)
      assert.strictEqual(migrated.code, 0, migrated.stderr)
      const gone = rows[4]!
      yield* Effect.tryPromise(() => bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.name, Key: gone.digests.sha256 })))
      const orphan = new TextEncoder().encode("an object no row references")
      yield* Effect.tryPromise(() => bucket.client.send(new PutObjectCommand({ Bucket: bucket.name, Key: sha256(orphan), Body: orphan })))

      const run = yield* cli(["verify", "--orphans", "-i", "1", "--log-format", "json"], env)
      assert.strictEqual(run.code, 1, run.stderr)
      assert.include(run.stderr, "1 bad row(s)")
      // parsed JSON, read field by field
      const records = run.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, any>)
      const of = (type: string) => records.filter((r) => r["type"] === type)
      assert.strictEqual(records[0]!["type"], "verify-configuration")
      assert.strictEqual(records.at(-1)!["type"], "verify-result")
      assert.sameMembers([...new Set(records.map((r) => r["type"]))], [
        "verify-configuration",
        "verify-progress",
        "verify-mismatch",
        "verify-orphan",
        "verify-result"
      ])
      const configuration = of("verify-configuration")[0]!
      assert.strictEqual(configuration["s3"]["bucket"], bucket.name)
      assert.strictEqual(configuration["s3"]["credentials"]["secretKey"], "<redacted>")
      assert.include(configuration["postgres"], ":<redacted>@")
      assert.deepStrictEqual(configuration["range"], { fromSha2: null, toSha2: null })
      assert.deepStrictEqual(configuration["throttle"], { objectsPerSecond: null, bytesPerSecond: null })

      // what the table and the bucket hold, counted here independently
      const sql = yield* SqlClient.SqlClient
      const table = yield* sql<{ readonly n: string; readonly bytes: string }>`
        SELECT count(*)::text AS n, sum(size)::text AS bytes FROM _nice_binary WHERE sha2 IS NOT NULL`
      const keys = (yield* listKeys(bucket.client, bucket.name)).filter((k) => /^[0-9a-f]{64}$/.test(k))
      const result = of("verify-result")[0]!
      assert.strictEqual(result["checked"], Number(table[0]!.n))
      assert.strictEqual(result["checked"], 12)
      assert.strictEqual(result["checkedBytes"], Number(table[0]!.bytes))
      assert.strictEqual(result["listed"], keys.length)
      assert.strictEqual(result["ok"], 11)
      assert.strictEqual(result["badRows"], 1)
      assert.strictEqual(result["bad"]["Missing"], 1)
      assert.strictEqual(result["orphans"], 1)
      assert.strictEqual(result["orphanBytes"], orphan.byteLength)
      assert.strictEqual(result["good"], false)
      assert.deepStrictEqual(of("verify-mismatch").map((r) => [r["problem"], r["hash"], r["sha2"], r["oid"], r["size"]]), [
        ["Missing", gone.hash, gone.digests.sha256, gone.oid, gone.size]
      ])
      assert.deepStrictEqual(of("verify-orphan"), [{ type: "verify-orphan", orphan: sha256(orphan), size: orphan.byteLength }])
      const last = of("verify-progress").at(-1)!
      assert.strictEqual(last["checked"], 12)
      assert.strictEqual(last["total"], 12)
      assert.strictEqual(last["percent"], 100)
      assert.isNumber(last["rowsPerSecond"]["average"])
    }).pipe(Effect.scoped, Effect.provide(Env)), 300_000)

  it.live("each bad row is reported once per --log-format (json: a record, not also a log line); line: one status line", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      yield* setUpSchema
      const rows = yield* Effect.forEach(Array.from({ length: 8 }, (_, i) => i), (i) =>
        insertBinary({ bytes: new TextEncoder().encode(`once ${i} `.repeat(1 + i * 3)), mimeType: "image/png" }))
      const env = yield* settings
      const dir = mkdtempSync(join(tmpdir(), "lo-migrate-verify-once-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const report = join(dir, "verify.jsonl")
      const migrated = yield* cli([], env)
      assert.strictEqual(migrated.code, 0, migrated.stderr)
      const gone = rows[2]!
      yield* Effect.tryPromise(() => bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.name, Key: gone.digests.sha256 })))
      /** The lines of `text` that name the bad row (its hash is in the warning, the record and the report line). */
      const naming = (text: string) => text.split("\n").filter((l) => l.includes(gone.hash))

      for (const format of ["text", "line"] as const) {
        const run = yield* cli(["verify", "-i", "1", "--log-format", format], env)
        assert.strictEqual(run.code, 1, run.stderr)
        assert.deepStrictEqual(naming(run.stdout), [], `${format}: stdout does not name the bad row`)
        assert.strictEqual(naming(run.stderr).length, 1, `${format}: one warning for the bad row: ${run.stderr}`)
        assert.include(naming(run.stderr)[0]!, "Missing")
        assert.include(run.stderr, "1 bad row(s) (logged above;")
      }

      // line: the status is one line per interval (at least the final one), never the block of `text`
      const line = yield* cli(["verify", "-i", "1", "--log-format", "line"], env)
      const statusLines = line.stdout.split("\n").filter((l) => / UTC [\d.?]+% \d+\/[\d?]+ rows checked, /.test(l))
      assert.isAtLeast(statusLines.length, 1, line.stdout)
      for (const status of statusLines) {
        assert.match(status, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC [\d.?]+% \d+\/[\d?]+ rows checked, [\d.]+ rows\/s, ETA .*, retries \d+$/)
      }
      assert.include(statusLines.at(-1)!, "100.00% 8/8 rows checked")
      assert.include(statusLines.at(-1)!, "ok 7, bad 1, listed 7 in 1 requests, orphans 0")
      for (const block of ["Verify status at", "Progress:", "Rows:", "Listing:", "Retries:", "*".repeat(67)]) {
        assert.notInclude(line.stdout, block, "line: no status block")
      }
      assert.include(line.stdout, "verify: 8 rows checked")

      // json: one verify-mismatch record on stdout and nothing about the row in the JSON log (the count is there)
      for (const args of [[], ["--report", report]]) {
        const run = yield* cli(["verify", "-i", "1", "--log-format", "json", ...args], env)
        assert.strictEqual(run.code, 1, run.stderr)
        const records = run.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
        assert.deepStrictEqual(
          records.filter((r) => JSON.stringify(r).includes(gone.hash)).map((r) => [r["type"], r["problem"], r["sha2"], r["oid"], r["size"]]),
          [["verify-mismatch", "Missing", gone.digests.sha256, gone.oid, gone.size]]
        )
        assert.deepStrictEqual(naming(run.stderr), [], `json ${args.join(" ")}: the log does not repeat the bad row`)
        // every stderr line a JSON log line, the closing count of bad rows too
        const logs = run.stderr.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
        assert.deepStrictEqual(
          logs.filter((l) => String(l["message"]).includes("bad row(s)")).map((l) => l["level"]),
          ["ERROR"]
        )
        assert.strictEqual(records.find((r) => r["type"] === "verify-result")!["badRows"], 1)
      }
      assert.deepStrictEqual(lines(report).map((l) => [l["problem"], l["hash"]]), [["Missing", gone.hash]])
      // with --shard the record carries the shard, as the other verify records do
      const shard = `${shardOfKey(gone.digests.sha256, 2, sha256Bits)}/2`
      const sharded = yield* cli(["verify", "--log-format", "json", "--shard", shard], env)
      assert.strictEqual(sharded.code, 1, sharded.stderr)
      assert.deepStrictEqual(
        sharded.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((r) => r["type"] === "verify-mismatch").map((r) => [r["shard"], r["hash"]]),
        [[shard, gone.hash]]
      )
    }).pipe(Effect.scoped, Effect.provide(Env)), 300_000)

  it.live("verify needs read rights only: SELECT on _nice_binary and a read-only S3 key suffice; --repair with them is refused", () =>
    Effect.gen(function*() {
      const bucket = yield* TestBucket
      yield* setUpSchema
      const rows = yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => i), (i) =>
        insertBinary({ bytes: new TextEncoder().encode(`read-only ${i} `.repeat(1 + i * 9)), mimeType: "image/png" }))
      const env = yield* settings
      const migrated = yield* cli([], env)
      assert.strictEqual(migrated.code, 0, migrated.stderr)

      // a role that owns nothing and may only read the table (no large objects, no UPDATE); the gateway's read key
      const role = yield* throwawayRole((name) => [`GRANT SELECT ON _nice_binary TO ${name}`])
      const key = yield* Effect.sync(() => readOnlyTestKey())
      const readOnly = {
        ...env,
        PG_URL: withPassword(Redacted.value(role.url)),
        AWS_ACCESS_KEY_ID: key.accessKeyId,
        AWS_SECRET_ACCESS_KEY: key.secretAccessKey
      }
      // the key really cannot write, so what follows proves what it says
      const readOnlyClient = new S3Client({
        endpoint: bucket.config.endpoint!,
        region: bucket.config.region,
        forcePathStyle: true,
        credentials: key
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => readOnlyClient.destroy()))
      const refused = yield* Effect.tryPromise(() =>
        readOnlyClient.send(new PutObjectCommand({ Bucket: bucket.name, Key: "probe", Body: new Uint8Array(1) }))
      ).pipe(Effect.flip)
      assert.strictEqual((refused.cause as { name?: string }).name, "AccessDenied")

      const clean = yield* cli(["verify", "--deep", "--content-type", "--orphans"], readOnly)
      assert.strictEqual(clean.code, 0, clean.stdout + clean.stderr)
      assert.include(clean.stdout, "10 rows checked")
      assert.include(clean.stdout, "10 objects downloaded and hashed")
      assert.include(clean.stdout, "every row checked is good")

      const gone = rows[6]!
      yield* Effect.tryPromise(() => bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.name, Key: gone.digests.sha256 })))
      const dir = mkdtempSync(join(tmpdir(), "lo-migrate-verify-ro-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const report = join(dir, "bad.jsonl")
      const damaged = yield* cli(["verify", "--deep", "--report", report], readOnly)
      assert.strictEqual(damaged.code, 1, damaged.stdout + damaged.stderr)
      assert.deepStrictEqual(lines(report).map((l) => [l["problem"], l["hash"]]), [["Missing", gone.hash]])

      // --repair writes (sha2 set back to NULL): refused before anything is checked, naming the GRANT (exit 2)
      const repair = yield* cli(["verify", "--deep", "--repair"], readOnly)
      assert.strictEqual(repair.code, 2, repair.stdout + repair.stderr)
      assert.include(repair.stderr, `role ${role.name} may not UPDATE _nice_binary.sha2`)
      assert.include(repair.stderr, `GRANT UPDATE (sha2) ON _nice_binary TO ${role.name};`)
      assert.include(repair.stderr, "Nothing was checked")
      assert.notInclude(repair.stdout, "rows checked")
      const sql = yield* SqlClient.SqlClient
      const [still] = yield* sql<{ readonly sha2: string | null }>`SELECT sha2 FROM _nice_binary WHERE hash = ${gone.hash}`
      assert.strictEqual(still!.sha2, gone.digests.sha256)

      // with the rights, a repair the server refuses mid-run (a trigger here) ends with exit 3 and a resume point at the
      // bad row not yet repaired, not after the last row checked
      yield* sql.unsafe(`CREATE FUNCTION lomt_refuse() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`)
      yield* sql.unsafe(`CREATE TRIGGER lomt_refuse BEFORE UPDATE ON _nice_binary FOR EACH ROW EXECUTE FUNCTION lomt_refuse()`)
      const refusedRepair = yield* cli(["verify", "--repair"], env)
      assert.strictEqual(refusedRepair.code, 3, refusedRepair.stdout + refusedRepair.stderr)
      const last = rows.map((r) => r.digests.sha256).sort().at(-1)!
      assert.include(
        refusedRepair.stderr,
        `Rows up to sha2 ${last} were checked; bad rows from sha2 ${gone.digests.sha256} on were not repaired yet; ` +
          `resume with --from-sha2 ${gone.digests.sha256}.`
      )
    }).pipe(Effect.scoped, Effect.provide(Env)), 300_000)

  it.live("bad verify options exit 2 naming the option; an unreachable database exits 3 with the resume hint", () =>
    Effect.gen(function*() {
      const env = { PG_URL: "postgresql://nobody@127.0.0.1:1/none", S3_URL: "http://127.0.0.1:1", S3_BUCKET: "b" }
      for (const [args, option] of [
        [["verify", "--sample", "2", "--deep"], "--sample"],
        [["verify", "--sample", "0.5"], "--sample"],
        [["verify", "--from-sha2", "XYZ"], "--from-sha2"],
        [["verify", "--from-sha2", "b", "--to-sha2", "a"], "--to-sha2"],
        [["verify", "--concurrency", "0", "--deep"], "--concurrency"]
      ] as const) {
        const run = yield* cli(args, env)
        assert.strictEqual(run.code, 2, `${args.join(" ")}: ${run.stderr}`)
        assert.include(run.stderr, option)
      }
      // refused connections are waited out for --retry-budget, each retry logged, then exit 3
      const down = yield* cli(["verify", "--retry-budget", "2"], env)
      assert.strictEqual(down.code, 3, down.stderr)
      assert.match(down.stderr, /verify: connect failed: .*; retrying \(failing for \d+ s, gives up after 2 s/)
      assert.match(down.stderr, /fatal: .*\n.*PostgreSQL .*127\.0\.0\.1:1[\s\S]*Nothing was checked yet/)
    }), 120_000)
})

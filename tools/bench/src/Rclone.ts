/**
 * The rclone peer: Debian's `rclone` uploading the same objects, exported once from the bench database to local files,
 * to the same gateway. rclone does less than the migrator (no PostgreSQL, no commit, no SHA-1/SHA-256 of the body),
 * so it is a fair "what an off-the-shelf uploader costs" row, not a limit. Configured by `RCLONE_CONFIG_*` variables
 * (no config file) with `AWS_CA_BUNDLE` unset; the secret goes by environment, never on the command line. The export
 * writes through effect's `FileSystem`, rclone runs through `Proc.measureChild` like every other child of the bench.
 */
import { Effect } from "effect"
import * as FileSystem from "effect/FileSystem"
import { SqlClient } from "effect/sql"
import { join } from "node:path"
import { cpuDelta, measureChild, sampleCpu } from "./Proc.ts"
import type { Measurement } from "./Measurement.ts"
import { bucketStats, createBucket, deleteBucket, makeClient, type S3Env } from "./S3.ts"

const SLICE = 16 * 1024 * 1024

/** The `rclone` on PATH, or `undefined` when it is not installed (`apt-get install rclone`). */
export const rcloneVersion = measureChild("rclone", ["version"]).pipe(
  Effect.map((r) => r.code === 0 ? r.stdout.split("\n")[0]?.trim() : undefined),
  Effect.catchTag("SpawnError", () => Effect.succeed(undefined))
)

/** Writes every large object of `_nice_binary` to `dir/<sha1>` (big ones in 16 MiB slices). Returns objects and bytes. */
export const exportObjects = Effect.fn("Rclone.exportObjects")(function*(dir: string) {
  const sql = yield* SqlClient.SqlClient
  const fs = yield* FileSystem.FileSystem
  yield* fs.makeDirectory(dir, { recursive: true })
  const rows = yield* sql<{ readonly hash: string; readonly oid: number; readonly size: number | string }>`
    SELECT hash, data AS oid, size FROM _nice_binary ORDER BY data`
  let bytes = 0
  for (const row of rows) {
    const path = join(dir, row.hash)
    const size = Number(row.size)
    yield* fs.writeFile(path, new Uint8Array(0))
    for (let offset = 0; offset < size || (offset === 0 && size === 0); offset += SLICE) {
      const [lo] = yield* sql<{ readonly b: Uint8Array }>`SELECT lo_get(${row.oid}, ${offset}, ${SLICE}) AS b`
      yield* fs.writeFile(path, lo!.b, { flag: "a" })
      bytes += lo!.b.byteLength
      if (size === 0) break
    }
  }
  return { objects: rows.length, bytes }
})

/** The environment of an rclone run: the remote `bench` on the S3 endpoint, no CA bundle override. */
export const rcloneEnv = (s3: S3Env, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
  const { AWS_CA_BUNDLE: _dropped, ...rest } = base
  return {
    ...rest,
    RCLONE_CONFIG_BENCH_TYPE: "s3",
    RCLONE_CONFIG_BENCH_PROVIDER: "Ceph",
    RCLONE_CONFIG_BENCH_ENDPOINT: s3.endpoint,
    RCLONE_CONFIG_BENCH_REGION: s3.region,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: s3.accessKeyId,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: s3.secretAccessKey
  }
}

/** `rclone copy` of the exported directory into an existing bucket with `transfers` uploads in flight. */
export const rcloneArgs = (dir: string, bucket: string, transfers: number): ReadonlyArray<string> => [
  "copy",
  dir,
  `bench:${bucket}`,
  "--transfers",
  String(transfers),
  "--s3-no-check-bucket",
  "-q"
]

/**
 * The peer rows: the objects exported once (`exportOnce`, not timed), then `rclone copy` with each of `transfers`
 * into a fresh bucket, measured as a child process (its own CPU and peak RSS) with the servers' CPU meanwhile, and
 * checked: the bucket must hold every object and byte. A missing `rclone` gives one failed row saying so. The exported
 * directory is removed afterwards, whatever happened.
 */
export const measureRclone = Effect.fn("Rclone.measure")(function*<E, R>(options: {
  readonly s3: S3Env
  readonly dir: string
  readonly bucketPrefix: string
  readonly transfers: ReadonlyArray<number>
  readonly exportOnce: Effect.Effect<{ readonly objects: number; readonly bytes: number }, E, R>
}) {
  const version = yield* rcloneVersion
  const fs = yield* FileSystem.FileSystem
  if (version === undefined) {
    const missing: ReadonlyArray<Measurement> = [{
      name: "peer: rclone",
      kind: "peer",
      objects: 0,
      bytes: 0,
      wallMs: 0,
      cpuMs: undefined,
      peakRssBytes: undefined,
      error: "rclone is not installed (apt-get install rclone)"
    }]
    return missing
  }
  return yield* Effect.gen(function*() {
    const exported = yield* options.exportOnce
    const client = yield* Effect.acquireRelease(Effect.sync(() => makeClient(options.s3, 4)), (c) => Effect.sync(() => c.destroy()))
    const rows: Array<Measurement> = []
    for (const transfers of options.transfers) {
      const bucket = `${options.bucketPrefix}-rclone${transfers}`
      yield* createBucket(client, bucket)
      const sys0 = sampleCpu()
      const child = yield* measureChild("rclone", rcloneArgs(options.dir, bucket, transfers), {
        env: rcloneEnv(options.s3, process.env)
      })
      const sys1 = sampleCpu()
      const stored = yield* bucketStats(client, bucket)
      yield* deleteBucket(client, bucket)
      const wrong = child.code !== 0
        ? `exit ${child.code}: ${child.stderr.trim().split("\n").slice(-2).join(" ")}`
        : stored.objects !== exported.objects || stored.bytes !== exported.bytes
        ? `bucket holds ${stored.objects} objects / ${stored.bytes} bytes, expected ${exported.objects} / ${exported.bytes}`
        : undefined
      rows.push({
        name: `peer: ${version}, local files → S3, --transfers ${transfers}`,
        kind: "peer",
        objects: exported.objects,
        bytes: exported.bytes,
        wallMs: child.wallMs,
        cpuMs: child.cpuMs,
        peakRssBytes: child.peakRssBytes,
        ...cpuDelta(sys0, sys1),
        ...(wrong === undefined ? {} : { error: wrong })
      })
    }
    return rows as ReadonlyArray<Measurement>
  }).pipe(
    Effect.scoped,
    Effect.ensuring(fs.remove(options.dir, { recursive: true, force: true }).pipe(Effect.ignore))
  )
})

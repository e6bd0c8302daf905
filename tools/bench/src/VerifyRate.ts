/**
 * `lo-migrate verify`'s rate against the bucket's own limits, on the same migrated data: the default mode (one listing
 * merged with the rows) next to a bare listing of the bucket (ListObjectsV2, 1000 keys per request, one page after the
 * other as a continuation token requires), and `--deep` (every object downloaded and hashed) next to a bare GET of
 * every object at verify's default concurrency (16) with the bodies drained and nothing else done.
 */
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import { sendS3 } from "@lo-migrate/s3"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { measureChild } from "./Proc.ts"
import { fmtNum } from "./Format.ts"
import { type Measurement, objPerSec } from "./Measurement.ts"
import { checkMigration, freshBucket, migratorArgv, migratorEnv, shippedNodeFlags } from "./Runs.ts"
import { addSection, note, paths, record, type Session } from "./Session.ts"
import { BenchS3Error, listObjects, makeClient } from "./S3.ts"

/** verify's default `--concurrency`. */
const getConcurrency = 16

const listAll = (client: S3Client, bucket: string) =>
  listObjects(client, bucket).pipe(
    Stream.runFold(() => ({ keys: [] as Array<string>, requests: 0 }), (acc, page) => {
      for (const o of page) if (o.Key !== undefined) acc.keys.push(o.Key)
      return { keys: acc.keys, requests: acc.requests + 1 }
    })
  )

const getAll = (client: S3Client, bucket: string, keys: ReadonlyArray<string>) =>
  Effect.forEach(
    keys,
    (key) =>
      Effect.tryPromise({
        try: (abortSignal) =>
          sendS3(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal })
            .then((out) => out.Body!.transformToByteArray()),
        catch: (cause) => new BenchS3Error({ operation: "GetObject", bucket, cause })
      }).pipe(Effect.map((body) => body.length)),
    { concurrency: getConcurrency }
  ).pipe(Effect.map((sizes) => sizes.reduce((a, b) => a + b, 0)))

const timed = Effect.fnUntraced(function*<A, E, R>(effect: Effect.Effect<A, E, R>) {
  const t0 = performance.now()
  const value = yield* effect
  return { value, wallMs: performance.now() - t0 }
})

export const measureVerify = Effect.fn("VerifyRate.measure")(function*(session: Session) {
  const { client, bucket } = yield* freshBucket(session)
  const env = migratorEnv(session, bucket)
  const migrated = yield* measureChild(paths.node, migratorArgv(session, []), { env, cwd: paths.root })
  const objects = session.objects.length
  const verify = Effect.fnUntraced(function*(label: string, extra: ReadonlyArray<string>) {
    const argv = [...shippedNodeFlags(session), paths.migratorMain, "verify", ...extra]
    const child = yield* measureChild(paths.node, argv, { env, cwd: paths.root })
    const m: Measurement = {
      name: label,
      kind: "diagnostic",
      objects,
      bytes: extra.includes("--deep") ? session.bytes : 0,
      wallMs: child.wallMs,
      cpuMs: child.cpuMs,
      peakRssBytes: child.peakRssBytes,
      note: extra.join(" "),
      ...(child.code === 0 ? {} : { error: `exit ${child.code ?? child.signal}: ${child.stderr.trim().split("\n").slice(-3).join(" / ")}` })
    }
    return m
  })
  const probe = yield* Effect.acquireRelease(
    Effect.sync(() => makeClient(session.s3!, getConcurrency * 2)),
    (c) => Effect.sync(() => c.destroy())
  )
  const listing = yield* timed(listAll(probe, bucket))
  const listLimit: Measurement = {
    name: `bucket listing limit: ListObjectsV2, ${listing.value.requests} request(s) of up to 1000 keys`,
    kind: "diagnostic",
    objects: listing.value.keys.length,
    bytes: 0,
    wallMs: listing.wallMs,
    cpuMs: undefined,
    peakRssBytes: undefined
  }
  const fast = yield* verify("verify (default: listing merged with the rows)", [])
  const gets = yield* timed(getAll(probe, bucket, listing.value.keys))
  const getLimit: Measurement = {
    name: `bucket GET limit: every object, ${getConcurrency} in flight, bodies drained`,
    kind: "diagnostic",
    objects: listing.value.keys.length,
    bytes: gets.value,
    wallMs: gets.wallMs,
    cpuMs: undefined,
    peakRssBytes: undefined
  }
  const deep = yield* verify("verify --deep (every object downloaded and hashed)", ["--deep"])
  const { problems } = yield* checkMigration(session, client, bucket, [migrated])
  if (problems.length > 0) yield* note(`verify: the migration before it: ${problems.join("; ")}`)
  yield* record(session, [listLimit, fast, getLimit, deep])
  const share = (a: Measurement, b: Measurement) => b.wallMs <= 0 || a.error !== undefined ? "–" : `${Math.round((objPerSec(a) / objPerSec(b)) * 100)}%`
  yield* addSection(
    session,
    `### verify's rate against the bucket's limits (${objects} objects, the same bucket)\n\n` +
      "| check | obj/s | its limit | limit obj/s | share of the limit |\n| --- | --- | --- | --- | --- |\n" +
      `| verify (default) | ${fmtNum(objPerSec(fast))} | listing, ${listing.value.requests} request(s) | ${fmtNum(objPerSec(listLimit))} | ${share(fast, listLimit)} |\n` +
      `| verify --deep | ${fmtNum(objPerSec(deep))} | GET, ${getConcurrency} in flight | ${fmtNum(objPerSec(getLimit))} | ${share(deep, getLimit)} |\n\n` +
      "verify's wall time includes its start-up (about 0.5 s, see \"migrator start-up only\") and the row query; the " +
      "limits are measured in the bench process with a warm connection."
  )
}, Effect.scoped)

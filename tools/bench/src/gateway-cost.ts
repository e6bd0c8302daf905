/**
 * What one PUT costs the gateway, by how it is sent (issue 16: on the bench machine the gateway's CPU is the limit):
 * N new small objects (the sizes and content types of `--mix N:1K-256K`, Content-MD5 and the signed payload SHA-256
 * given; `prepareBodies`, as the S3 write limit sends them) PUT with 32 in flight, plainly and with `If-None-Match: *` (and, with `head`, after a HEAD), each variant into
 * a fresh bucket, alternating, REPS times. Printed: the CPU of the Ceph daemons (`sampleCpu`, /proc) per PUT and the
 * wall time, each repetition and the medians.
 *
 *   set -a; . /tmp/ceph.env; set +a      # S3_ENDPOINT etc. of tools/s3/ceph-rgw.sh
 *   cd tools/bench && npx node --conditions=development src/gateway-cost.ts [OBJECTS=4000] [REPS=3] [head]
 */
import { HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import { sendS3 } from "@lo-migrate/s3"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { median } from "./CpuCompare.ts"
import { makeObjects, parseMix } from "./Mix.ts"
import { sampleCpu } from "./Proc.ts"
import { createBucket, deleteBucket, makeClient, s3EnvFrom } from "./S3.ts"
import { prepareBodies, type PutItem, putOne } from "./S3Put.ts"

const objects = Number(process.argv[2] ?? 4000)
const reps = Number(process.argv[3] ?? 3)
const withHead = process.argv[4] === "head"

type Variant = "plain" | "If-None-Match: *" | "HEAD + PUT"
const variants: ReadonlyArray<Variant> = withHead ? ["plain", "If-None-Match: *", "HEAD + PUT"] : ["plain", "If-None-Match: *"]

/** The bodies, PUT into a fresh bucket by every variant: the sizes and content types of `--mix OBJECTS:1K-256K`. */
const items = prepareBodies(makeObjects(parseMix(`${objects}:1K-256K`), 1), "gw/")

const send = (client: S3Client, bucket: string, item: PutItem, variant: Variant) => {
  switch (variant) {
    case "plain":
      return putOne(client, bucket, item)
    case "If-None-Match: *":
      return putOne(client, bucket, item, true)
    case "HEAD + PUT":
      return Effect.promise(() =>
        sendS3(client, new HeadObjectCommand({ Bucket: bucket, Key: item.key })).then(
          () => Promise.reject(new Error(`${item.key} exists`)),
          () => undefined
        )
      ).pipe(Effect.andThen(putOne(client, bucket, item)))
  }
}

const program = Effect.gen(function*() {
  const s3 = s3EnvFrom(process.env)
  if (s3 === undefined) {
    return yield* Effect.die(new Error("S3_ENDPOINT, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set (tools/s3/ceph-rgw.sh start)"))
  }
  const client = makeClient(s3, 64)
  const runId = `${process.pid}-${Math.floor(performance.timeOrigin)}`
  const results = new Map<Variant, Array<{ readonly usPerPut: number; readonly wallS: number }>>()
  yield* Console.log(`${objects} new objects of 1-256 KiB a bucket, 32 PUTs in flight, ${reps} repetitions`)
  let seq = 0
  for (let rep = 0; rep < reps; rep++) {
    for (const variant of variants) {
      const bucket = `lo-gwcost-${runId}-${++seq}`
      yield* createBucket(client, bucket)
      const cpu0 = sampleCpu()
      const t0 = performance.now()
      yield* Effect.forEach(items, (item) => send(client, bucket, item, variant), { concurrency: 32, discard: true })
      const wallS = (performance.now() - t0) / 1000
      const cpu1 = sampleCpu()
      yield* deleteBucket(client, bucket)
      if (cpu0 === undefined || cpu1 === undefined) return yield* Effect.die(new Error("no /proc: cannot read the gateway's CPU"))
      const usPerPut = ((cpu1.ceph - cpu0.ceph) * 1000) / objects
      const list = results.get(variant) ?? []
      list.push({ usPerPut, wallS })
      results.set(variant, list)
      yield* Console.log(`  ${variant.padEnd(18)} ${usPerPut.toFixed(0).padStart(6)} us gateway CPU per PUT, ${wallS.toFixed(1)} s`)
    }
  }
  yield* Console.log("medians:")
  for (const variant of variants) {
    const list = results.get(variant)!
    yield* Console.log(
      `  ${variant.padEnd(18)} ${median(list.map((r) => r.usPerPut)).toFixed(0).padStart(6)} us gateway CPU per PUT, ` +
        `${median(list.map((r) => r.wallS)).toFixed(1)} s`
    )
  }
})

Effect.runPromise(program).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})

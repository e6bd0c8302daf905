/**
 * What the SDK's middleware costs per PUT, on the real gateway: the same objects PUT from memory (Content-MD5 and
 * SHA-256 precomputed, as the store sends them) by a client with the SDK's full stack and by one trimmed like the
 * store's (`trimMiddleware` of @lo-migrate/s3, as `makeClient` does by default), alternating, in one process; the client's
 * CPU per PUT is printed.
 *
 *   cd tools/bench && npx node --conditions=development src/sdk-cost.ts [OBJECTS=4000] [PAIRS=3] [IN_FLIGHT=32]
 *
 * Needs S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY (`eval "$(bash tools/s3/ceph-rgw.sh start)"`).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect } from "effect"
import { createBucket, deleteBucket, makeClient, s3EnvFrom } from "./S3.ts"
import { prepareBodies, putAll } from "./S3Put.ts"

const [objects = 4000, pairs = 3, inFlight = 32] = process.argv.slice(2).map(Number)
const s3 = s3EnvFrom(process.env)
if (s3 === undefined) {
  console.error("S3_ENDPOINT, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set: eval \"$(bash tools/s3/ceph-rgw.sh start)\"")
  process.exit(2)
}

// 1-64 KiB, the small objects that make up most of a migration's requests
const sizes = Array.from({ length: objects }, (_, i) => ({ size: 1024 + ((i * 7919) % (63 * 1024)), mimeType: "image/png" }))

const run = Effect.fn("sdkCost.run")(function*(label: string, trimmed: boolean, round: number) {
  const client = yield* Effect.acquireRelease(Effect.sync(() => makeClient(s3, inFlight, trimmed)), (c) => Effect.sync(() => c.destroy()))
  const bucket = `lo-bench-sdk-cost-${process.pid}-${round}-${trimmed ? "t" : "f"}`
  yield* createBucket(client, bucket)
  const items = prepareBodies(sizes, `${label}/`)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  yield* putAll(client, bucket, items, inFlight)
  const wall = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  yield* deleteBucket(client, bucket)
  const us = (cpu.user + cpu.system) / objects
  yield* Console.log(`${label.padEnd(10)} round ${round}: ${us.toFixed(0)} us CPU per PUT, ${(objects / (wall / 1000)).toFixed(0)} PUT/s`)
  return us
}, Effect.scoped)

const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length

const program = Effect.gen(function*() {
  const full: Array<number> = []
  const trim: Array<number> = []
  for (let round = 1; round <= pairs; round++) {
    // alternate which goes first
    if (round % 2 === 1) {
      full.push(yield* run("full", false, round))
      trim.push(yield* run("trimmed", true, round))
    } else {
      trim.push(yield* run("trimmed", true, round))
      full.push(yield* run("full", false, round))
    }
  }
  yield* Console.log(
    `mean: full stack ${mean(full).toFixed(0)} us, trimmed ${mean(trim).toFixed(0)} us per PUT (${((mean(trim) / mean(full) - 1) * 100).toFixed(1)}%)`
  )
})

NodeRuntime.runMain(program)

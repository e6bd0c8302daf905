/**
 * What the SDK's middleware costs per PUT, on the real gateway: the same objects PUT from memory (Content-MD5 and
 * SHA-256 precomputed, as the store sends them) by a client with the SDK's full stack and by one trimmed like the
 * store's (`trimMiddleware` of @lo-migrate/s3, as `makeClient` does by default), alternating, in one process; the client's CPU per PUT is printed.
 *
 *   cd tools/bench && npx node --conditions=development src/sdk-cost.ts [OBJECTS=4000] [PAIRS=3] [IN_FLIGHT=32]
 *
 * Needs S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY (`eval "$(bash tools/s3/ceph-rgw.sh start)"`).
 */
import { Effect } from "effect"
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

const run = async (label: string, trimmed: boolean, round: number) => {
  const client = makeClient(s3, inFlight, trimmed)
  const bucket = `lo-bench-sdk-cost-${process.pid}-${round}-${trimmed ? "t" : "f"}`
  await createBucket(client, bucket)
  const items = prepareBodies(sizes, `${label}/`)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Effect.runPromise(putAll(client, bucket, items, inFlight))
  const wall = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  await deleteBucket(client, bucket)
  client.destroy()
  const us = (cpu.user + cpu.system) / objects
  console.log(`${label.padEnd(10)} round ${round}: ${us.toFixed(0)} us CPU per PUT, ${(objects / (wall / 1000)).toFixed(0)} PUT/s`)
  return us
}

const full: Array<number> = []
const trim: Array<number> = []
for (let round = 1; round <= pairs; round++) {
  // alternate which goes first
  if (round % 2 === 1) {
    full.push(await run("full", false, round))
    trim.push(await run("trimmed", true, round))
  } else {
    trim.push(await run("trimmed", true, round))
    full.push(await run("full", false, round))
  }
}
const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
console.log(`mean: full stack ${mean(full).toFixed(0)} us, trimmed ${mean(trim).toFixed(0)} us per PUT (${((mean(trim) / mean(full) - 1) * 100).toFixed(1)}%)`)

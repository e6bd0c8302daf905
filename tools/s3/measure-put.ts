/**
 * Measures on the live S3 server what detecting an existing object costs, to choose `headBeforePut`:
 *   plain PUT (no detection) vs conditional PUT (If-None-Match: *, the "never" mode) vs HEAD + PUT ("always"),
 * for new keys and for keys already present; plus multipart throughput.
 * Run: set -a; eval "$(bash tools/s3/ceph-rgw.sh start)"; set +a
 *      npx node --conditions=development tools/s3/measure-put.ts [objects=300] [concurrency=1,8]
 */
import { PutObjectCommand } from "@aws-sdk/client-s3"
import { type Body, ObjectStore, type PutRequest, type Sha256Hex } from "@lo-migrate/core"
import { S3ClientService, S3ObjectStore } from "@lo-migrate/s3"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect, Layer } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const objects = Number(process.argv[2] ?? 300)
const concurrencies = (process.argv[3] ?? "1,8").split(",").map(Number)
const sizes = [1024, 64 * 1024]

const request = (bytes: Uint8Array, body: Body = { _tag: "InMemory", bytes }): PutRequest => ({
  key: createHash("sha256").update(bytes).digest("hex") as Sha256Hex,
  contentType: "application/octet-stream",
  size: bytes.byteLength,
  md5Base64: createHash("md5").update(bytes).digest("base64"),
  body
})

const timed = <A, E, R>(label: string, n: number, bytes: number, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const t0 = performance.now()
    yield* effect
    const ms = performance.now() - t0
    const mib = (n * bytes) / (1024 * 1024)
    console.log(
      `${label.padEnd(58)} ${(ms / n).toFixed(2).padStart(7)} ms/obj  ${(n / (ms / 1000)).toFixed(0).padStart(5)} obj/s` +
        (bytes >= 1024 * 1024 ? `  ${(mib / (ms / 1000)).toFixed(1)} MiB/s` : "")
    )
  })

const modeStore = (mode: "always" | "never") =>
  Effect.gen(function*() {
    const bucket = yield* TestBucket
    return yield* Effect.provide(
      Effect.service(ObjectStore),
      S3ObjectStore.layer({ ...bucket.config, headBeforePut: mode, maxSockets: 16 })
    )
  })

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** Runs `effect` and returns its wall time in ms. */
const clock = <E, R>(effect: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    const t0 = performance.now()
    yield* effect
    return performance.now() - t0
  })

const program = Effect.gen(function*() {
  const bucket = yield* TestBucket
  const { client } = yield* S3ClientService
  const never = yield* modeStore("never")
  const always = yield* modeStore("always")
  const rounds = 5
  for (const size of sizes) {
    for (const c of concurrencies) {
      // The scenarios are interleaved round by round (the machine is shared): medians of per-round ms/object.
      const perRound = Math.max(1, Math.floor(objects / rounds))
      const samples: Record<string, Array<number>> = {}
      const note = (name: string, ms: number) => void (samples[name] ??= []).push(ms / perRound)
      for (let round = 0; round < rounds; round++) {
        const batch = () => Array.from({ length: perRound }, () => request(randomBytes(size)))
        const plain = batch()
        note("plain PUT, no detection (new key)", yield* clock(Effect.forEach(plain, (r) =>
          Effect.promise(() =>
            client.send(new PutObjectCommand({
              Bucket: bucket.name, Key: r.key, Body: (r.body as { bytes: Uint8Array }).bytes, ContentLength: r.size,
              ContentMD5: r.md5Base64, ContentType: "application/octet-stream"
            }))), { concurrency: c })))
        const a = batch()
        note("never: If-None-Match PUT (new key)", yield* clock(Effect.forEach(a, never.put, { concurrency: c })))
        const b = batch()
        note("always: HEAD + PUT (new key)", yield* clock(Effect.forEach(b, always.put, { concurrency: c })))
        note("always: HEAD only (key present)", yield* clock(Effect.forEach(b, always.put, { concurrency: c })))
        note("never: PUT 412 + HEAD (key present)", yield* clock(Effect.forEach(a, never.put, { concurrency: c })))
      }
      for (const [name, ms] of Object.entries(samples)) {
        const m = median(ms)
        console.log(
          `${String(size / 1024).padStart(3)} KiB c=${c} ${name.padEnd(40)} ${m.toFixed(2).padStart(6)} ms/obj ` +
            `${(1000 / m).toFixed(0).padStart(5)} obj/s   (rounds: ${ms.map((x) => x.toFixed(2)).join(" ")})`
        )
      }
    }
  }
  // multipart throughput from a spilled file
  const dir = mkdtempSync(join(tmpdir(), "lo-s3-measure-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  for (const [size, partSize, partConcurrency] of [[64, 20, 1], [64, 20, 2], [64, 20, 4], [64, 8, 4], [30, 20, 1]] as const) {
    const bytes = randomBytes(size * 1024 * 1024)
    const path = join(dir, `${size}.bin`)
    writeFileSync(path, bytes)
    const store = yield* Effect.provide(
      Effect.service(ObjectStore),
      S3ObjectStore.layer({ ...bucket.config, partSize: partSize * 1024 * 1024, partConcurrency })
    )
    yield* timed(`${size} MiB spilled, part ${partSize} MiB x${partConcurrency} in flight`, 1, bytes.byteLength,
      store.put(request(bytes, { _tag: "Spilled", path })))
  }
  // Memory stays bounded: parts are streamed from the file, never buffered whole.
  {
    const size = 256 * 1024 * 1024
    const path = join(dir, "big.bin")
    const hash = { sha256: createHash("sha256"), md5: createHash("md5") }
    const chunk = randomBytes(8 * 1024 * 1024)
    writeFileSync(path, "")
    for (let written = 0; written < size; written += chunk.length) {
      appendFileSync(path, chunk)
      hash.sha256.update(chunk)
      hash.md5.update(chunk)
    }
    const store = yield* Effect.provide(
      Effect.service(ObjectStore),
      S3ObjectStore.layer({ ...bucket.config, partSize: 20 * 1024 * 1024, partConcurrency: 2 })
    )
    const before = process.memoryUsage().rss
    let peak = before
    const sampler = setInterval(() => void (peak = Math.max(peak, process.memoryUsage().rss)), 5)
    yield* timed("256 MiB spilled, part 20 MiB x2 in flight", 1, size, store.put({
      key: hash.sha256.digest("hex") as Sha256Hex,
      contentType: null,
      size,
      md5Base64: hash.md5.digest("base64"),
      body: { _tag: "Spilled", path }
    }))
    clearInterval(sampler)
    console.log(`  RSS before ${(before / 2 ** 20).toFixed(0)} MiB, peak during the upload ${(peak / 2 ** 20).toFixed(0)} MiB`)
  }
  const single = randomBytes(16 * 1024 * 1024)
  const path = join(dir, "single.bin")
  writeFileSync(path, single)
  yield* timed("16 MiB spilled, single PUT", 1, single.byteLength, never.put(request(single, { _tag: "Spilled", path })))
  yield* timed("16 MiB in memory, single PUT", 1, single.byteLength, never.put(request(randomBytes(16 * 1024 * 1024))))
})

await Effect.runPromise(
  Effect.scoped(program).pipe(
    Effect.provide(Layer.unwrap(Effect.map(Effect.service(TestBucket), (b) => S3ClientService.layer(b.config))).pipe(
      Layer.provideMerge(TestBucket.layer)
    ))
  )
)

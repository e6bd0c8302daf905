/**
 * `--max-in-memory` against the memory the in-memory bodies really hold. The PostgreSQL reader copies a small body into
 * a slab of its pool (1/64 of the budget: 64 KiB here) and keeps a bigger one as a view into the driver's receive
 * buffer, so a live body keeps its whole slab or buffer alive. Here the real pipeline runs with the live adapters
 * (`portsLayer`, as the CLI wires them) against the real PostgreSQL and the real Ceph RGW behind the fault proxy, and
 * one upload after another is stalled (each for a few seconds) while the others flow: the stalled bodies are spread
 * over many receive buffers. A sampler sums the distinct backing `ArrayBuffer`s of the live in-memory bodies (the
 * memory they hold) next to their own bytes (what a body-sized charge would count) and checks the bound the pipeline
 * README states (max-in-memory + the overshoot of the reads running at once, each below its claim + 256 KiB for its
 * one statement); every object must still arrive with the right bytes.
 *
 * Measured before the budget charged buffers: 1552-2624 KiB held (up to 41 buffers for 219 bodies of 991 KiB) for a
 * 1024 KiB budget; after: 1024-1088 KiB; with the slabs, 1024 KiB in 16 slabs.
 */
import { assert, describe, it } from "@effect/vitest"
import { LoReader, type LoObject } from "@lo-migrate/core"
import { FaultProxy, passThrough, stall } from "@lo-migrate/faults"
import { runMigration } from "@lo-migrate/pipeline"
import { insertBinary, ThrowawayDatabase } from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect, Fiber, Layer, Option, Redacted, Result, Schedule } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { resolve } from "../src/Config.ts"
import { portsLayer } from "../src/Live.ts"
import { defaultRawOptions } from "../src/Options.ts"
import { pipelineConfigOf } from "../src/RunSettings.ts"
import { assertMigrated, Env, setUpSchema } from "./cli.ts"

const KiB = 1024
const MiB = 1024 * KiB

/** 1200 objects of 1-8 KiB: a 64 KiB receive buffer holds ~14 of them. */
const seed = Effect.forEach(
  Array.from({ length: 1200 }, (_, i) => i),
  (i) => insertBinary({ bytes: { size: KiB + ((i * 7919) % (7 * KiB)), seed: 9000 + i }, mimeType: "image/png" }),
  { concurrency: 4 }
)

/** Rows per `readBatch` (a read claims at most 16 × 8 KiB = 128 KiB). */
const readBatchRows = 16
const largestReadClaim = readBatchRows * 8 * KiB

interface Peaks {
  /** Distinct backing ArrayBuffers of the live in-memory bodies, in bytes. */
  held: number
  /** The bodies' own bytes at that moment (what the budget charges per object). */
  bodiesAtHeld: number
  /** Live bodies and distinct buffers at that moment. */
  liveAtHeld: number
  buffersAtHeld: number
  bodies: number
  arrayBuffers: number
}

describe("--max-in-memory bounds the memory in-memory bodies hold (PostgreSQL + Ceph RGW, stalled uploads)", () => {
  it.live("distinct receive buffers of live bodies stay within max-in-memory + one read's overshoot", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seed
      const db = yield* ThrowawayDatabase
      const bucket = yield* TestBucket
      const endpoint = new URL(bucket.config.endpoint!)
      const proxy = yield* FaultProxy.make({ targetPort: Number(endpoint.port), maxStallMillis: 4_000 })
      const dir = mkdtempSync(join(tmpdir(), "lo-migrate-pinned-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const maxInMemory = 1 // MiB, the smallest the CLI takes
      const receiverThreads = 1
      const config = yield* resolve({
        ...defaultRawOptions,
        pgUrl: Option.some(db.url),
        s3Url: Option.some(proxy.url),
        accessKey: Option.some(Redacted.value(bucket.config.accessKeyId!)),
        secretKey: Option.some(bucket.config.secretAccessKey!),
        bucket: Option.some(bucket.name),
        region: bucket.config.region!,
        pathStyle: true,
        receiverThreads,
        storerThreads: 64,
        commitChunk: 50,
        requestTimeout: 30,
        retryBudget: 120,
        maxInMemory,
        tempDir: Option.some(dir)
      })
      const budget = config.maxInMemoryBytes
      assert.strictEqual(budget, maxInMemory * MiB)

      // every object the reader hands out, until the pipeline releases it
      const live = new Set<LoObject>()
      let reads = 0
      const tracked = (o: LoObject): LoObject => {
        const t: LoObject = { ...o, release: Effect.andThen(o.release, Effect.sync(() => void live.delete(t))) }
        live.add(t)
        reads++
        return t
      }
      const trackingReader = Layer.effect(
        LoReader,
        Effect.map(Effect.service(LoReader), (r) =>
          LoReader.of({
            read: (row) => Effect.map(r.read(row), tracked),
            readBatch: (rows) =>
              Effect.map(r.readBatch(rows), (results) =>
                results.map((res) => Result.isSuccess(res) ? Result.succeed(tracked(res.success)) : res))
          }))
      )
      const ports = portsLayer(config)
      const services = Layer.merge(ports, trackingReader.pipe(Layer.provide(ports)))

      const peaks: Peaks = { held: 0, bodiesAtHeld: 0, liveAtHeld: 0, buffersAtHeld: 0, bodies: 0, arrayBuffers: 0 }
      const sample = Effect.sync(() => {
        const buffers = new Set<ArrayBufferLike>()
        let bodies = 0
        let held = 0
        for (const o of live) {
          if (o.body._tag !== "InMemory") continue
          bodies += o.body.bytes.byteLength
          const b = o.body.bytes.buffer
          if (!buffers.has(b)) {
            buffers.add(b)
            held += b.byteLength
          }
        }
        if (held > peaks.held) {
          Object.assign(peaks, { held, bodiesAtHeld: bodies, liveAtHeld: live.size, buffersAtHeld: buffers.size })
        }
        peaks.bodies = Math.max(peaks.bodies, bodies)
        peaks.arrayBuffers = Math.max(peaks.arrayBuffers, process.memoryUsage().arrayBuffers)
      })
      // one upload after another stalls (each for maxStallMillis, then the client sends it again), spread over the run
      const injector = Effect.gen(function*() {
        // not before the store's first requests are answered (the first put waits for a probe of the store)
        yield* proxy.stats.pipe(Effect.delay("20 millis"), Effect.repeat({ until: (st) => st.requests >= 50 }))
        for (let i = 0; i < 400 && (yield* proxy.stats).stalled < 30; i++) {
          yield* proxy.setFault(stall(1))
          yield* Effect.sleep("10 millis")
        }
        yield* proxy.setFault(passThrough)
      })

      const sampler = yield* Effect.forkChild(Effect.repeat(sample, Schedule.spaced("5 millis")))
      const stalls = yield* Effect.forkChild(injector)
      const started = Date.now()
      const summary = yield* runMigration({ ...pipelineConfigOf(config), readBatchRows }).pipe(Effect.provide(services))
      yield* Fiber.interrupt(stalls)
      yield* Fiber.interrupt(sampler)
      yield* proxy.setFault(passThrough)
      const stats = yield* proxy.stats

      const bound = budget + receiverThreads * (largestReadClaim + 256 * KiB)
      const k = (bytes: number) => `${Math.round(bytes / KiB)} KiB`
      console.log(
        `pinned memory: budget ${k(budget)}; peak held (distinct buffers of live bodies) ${k(peaks.held)} ` +
          `in ${peaks.buffersAtHeld} buffers for ${peaks.liveAtHeld} live bodies of ${k(peaks.bodiesAtHeld)}; ` +
          `peak body bytes ${k(peaks.bodies)}; peak process arrayBuffers ${k(peaks.arrayBuffers)}; ` +
          `${stats.stalled} uploads stalled; run ${Date.now() - started} ms; bound ${k(bound)}`
      )
      assert.strictEqual(summary.migrated, rows.length, "every row migrated")
      assert.isAtLeast(stats.stalled, 10, `uploads were stalled (proxy counters ${JSON.stringify(stats)})`)
      assert.isAtMost(
        peaks.held,
        bound,
        `peak memory held by live in-memory bodies (${peaks.held} bytes in ${peaks.buffersAtHeld} buffers for ` +
          `${peaks.liveAtHeld} bodies of ${peaks.bodiesAtHeld} bytes) within max-in-memory ${budget} + one read's overshoot`
      )
      yield* assertMigrated(rows)
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)
})

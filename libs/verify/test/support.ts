/**
 * Seeding for the verify tests: rows of `_nice_binary` with `sha2` set (and their large objects) plus their objects in
 * a real bucket, as a completed migration leaves them; and ways to damage an object.
 */
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import { Metrics } from "@lo-migrate/core"
import { createNiceBinaryTable, insertBinary, ThrowawayDatabase } from "@lo-migrate/postgres/testing"
import { S3ClientService } from "@lo-migrate/s3"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { createHash } from "node:crypto"
import { defaultVerifyOptions, Progress, runVerify, type VerifyOptions } from "../src/index.ts"
import type { BadRow, ListedObject, RepairOutcome } from "../src/index.ts"

export const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex")
export const sha1 = (bytes: Uint8Array | string) => createHash("sha1").update(bytes).digest("hex")

export const put = (client: S3Client, bucket: string, key: string, body: Uint8Array, contentType?: string) =>
  Effect.tryPromise(() =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...(contentType === undefined ? {} : { ContentType: contentType }) }))
  )

export const remove = (client: S3Client, bucket: string, key: string) =>
  Effect.tryPromise(() => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })))

export interface Seeded {
  readonly hash: string
  readonly sha2: string
  readonly bytes: Uint8Array
  readonly mimeType: string
}

/** `n` migrated rows (with large objects) and their objects, contents of 0 to ~2 KiB. */
export const seedMigrated = (n: number) =>
  Effect.gen(function*() {
    const bucket = yield* TestBucket
    yield* createNiceBinaryTable()
    return yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
      Effect.gen(function*() {
        const bytes = new TextEncoder().encode(`object ${i} `.repeat(i * 13 % 200))
        const mimeType = i % 3 === 0 ? "image/png" : "application/pdf"
        const sha2 = sha256(bytes)
        yield* insertBinary({ bytes, mimeType, sha2 })
        yield* put(bucket.client, bucket.name, sha2, bytes, mimeType)
        return { hash: sha1(bytes), sha2, bytes, mimeType } satisfies Seeded
      }), { concurrency: 8 })
  })

/** The S3 client for the test bucket and the metrics the verifier needs. */
export const VerifyEnv = Layer.unwrap(Effect.map(Effect.service(TestBucket), (b) => S3ClientService.layer(b.config))).pipe(
  Layer.provideMerge(Layer.mergeAll(TestBucket.layer, ThrowawayDatabase.layerWithClient(4), Metrics.layer))
)

export interface Outcome {
  readonly progress: Progress
  readonly bad: ReadonlyArray<BadRow>
  readonly orphans: ReadonlyArray<ListedObject>
  readonly repaired: ReadonlyArray<RepairOutcome>
  readonly maxHeld: number
}

/** Runs a verify with the given options and collects what it reported. */
export const verify = (options: Partial<VerifyOptions> = {}) =>
  Effect.gen(function*() {
    const progress = new Progress()
    const bad: Array<BadRow> = []
    const orphans: Array<ListedObject> = []
    const repaired: Array<RepairOutcome> = []
    const stats = yield* runVerify({ ...defaultVerifyOptions, ...options }, progress, {
      onBad: (b) => Effect.sync(() => void bad.push(b)),
      onOrphan: (o) => Effect.sync(() => void orphans.push(o)),
      onRepaired: (r) => Effect.sync(() => void repaired.push(r))
    })
    return { progress, bad, orphans, repaired, maxHeld: stats.maxHeld } satisfies Outcome
  })

export const sha2Of = (hash: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [r] = yield* sql<{ readonly sha2: string | null }>`SELECT sha2 FROM _nice_binary WHERE hash = ${hash}`
    return r?.sha2 ?? null
  })

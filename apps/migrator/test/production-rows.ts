/**
 * The rows and checks of the production-like end-to-end tests, shared by e2e-production, e2e-mimetypes and e2e-crash:
 * large objects at ids above 2^31 in every read path, mime types that are no plain header value, objects big enough
 * for multipart uploads, a failure report file, and what a killed run leaves in the bucket and in --temp-dir.
 */
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3"
import { digestBytes } from "@lo-migrate/core"
import { generateBytes, type InsertedBinary, insertBinary, unusedOidAt } from "@lo-migrate/postgres/testing"
import type { TestBucket } from "@lo-migrate/s3/testing"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const KiB = 1024
const MiB = 1024 * KiB

/** Mime types an application stores without complaint that are no plain header value (non-ASCII, control, long). */
export const oddMimeTypes = [
  "text/x-ünïcode",
  "image/\u20ac \u{1F600}",
  "\uFEFFtext/plain",
  "text/plain\r\nX-Injected: 1",
  "text/plain\n",
  "text/\u0001plain",
  "text/plain;\tq=1",
  "unused",
  " text/plain ",
  "x/" + "y".repeat(9_998),
  "ü".repeat(10_000)
]

/** Plain ones, the empty string among them. */
export const plainMimeTypes = ["text/plain", "application/pdf; charset=\"utf-8\"", ""]

/** A report file in a temp directory removed with the scope; `lines` reads it as JSON lines. */
export const reportFile = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "lo-migrate-e2e-prod-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const path = join(dir, "failed.jsonl")
  const lines = () => {
    const text = readFileSync(path, "utf8").trim()
    return text.length === 0 ? [] : text.split("\n").map((l) => JSON.parse(l) as { hash: string; oid: number; reason: string; detail: string })
  }
  return { path, lines }
})

export const occurrences = (text: string, part: string) => text.split(part).length - 1

/** Small (batched), in-memory single, spilled and multipart objects at ids above 2^31, mixed with server-picked ones. */
export const seedHighOids = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows: Array<InsertedBinary> = []
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 100, seed: 1 }), mimeType: "text/plain", createAt: 3000000000 }))
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 2000, seed: 2 }), mimeType: "text/plain" }))
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 3000, seed: 3 }), mimeType: "image/png", createAt: 2147483648 }))
  rows.push(yield* insertBinary({ bytes: generateBytes({ size: 50, seed: 4 }), mimeType: "image/png", createAt: 2147483647 }))
  const fromBytea = generateBytes({ size: 700, seed: 5 })
  yield* sql`SELECT lo_from_bytea(3500000000::oid, ${fromBytea})`
  rows.push(yield* insertBinary({ bytes: fromBytea, mimeType: "a/b", oid: 3500000000 }))
  // above --in-mem-max 64 KiB: spilled; above --upload-chunk-size 5 MiB: multipart
  rows.push(yield* insertBinary({ bytes: { size: 300 * KiB, seed: 6 }, mimeType: "application/pdf", createAt: 4000000000 }))
  rows.push(yield* insertBinary({ bytes: { size: 6 * MiB + 123, seed: 7 }, mimeType: "video/mp4", createAt: 4294967295 }))
  rows.push(yield* insertBinary({ bytes: { size: 40 * KiB, seed: 8 }, mimeType: "a/b", createAt: 3999999999 }))
  // an upper-case hash (40 hex digits): valid, committed under its stored spelling
  const upperBytes = generateBytes({ size: 900, seed: 9 })
  rows.push(yield* insertBinary({ bytes: upperBytes, mimeType: "text/plain", hash: digestBytes(upperBytes).sha1.toUpperCase(), createAt: 3300000000 }))
  const missing = yield* insertBinary({
    bytes: generateBytes({ size: 10, seed: 10 }),
    mimeType: "a/b",
    oid: yield* unusedOidAt(3900000000)
  })
  return { good: rows, missing }
})

export const deleteRow = (hash: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`DELETE FROM _nice_binary WHERE hash = ${hash}`
  })

export const uploads = (client: S3Client, bucket: string) =>
  Effect.promise(() => client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).pipe(
    Effect.map((out) => (out.Uploads ?? []).map((u) => u.UploadId!))
  )

export const stateKeys = (client: S3Client, bucket: string) =>
  Effect.promise(() => client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "lo-migrate/" }))).pipe(
    Effect.map((out) => (out.Contents ?? []).map((o) => o.Key!))
  )

/** The upload id in a ledger marker (`null` while pending, or when it is already gone). */
export const markerUploadId = (client: S3Client, bucket: string, Key: string) =>
  Effect.promise(() =>
    client.send(new GetObjectCommand({ Bucket: bucket, Key })).then(
      async (out) => (JSON.parse(await out.Body!.transformToString()) as { uploadId: string | null }).uploadId,
      () => null
    )
  )

/** Files in the spill directories of `dir` (lo-migrate-spill-*), and how many such directories there are. */
export const spills = (dir: string) => {
  const dirs = readdirSync(dir).filter((n) => n.startsWith("lo-migrate-spill-"))
  return { dirs: dirs.length, files: dirs.flatMap((d) => readdirSync(join(dir, d))).length }
}

/**
 * `n` objects of 11 MiB: spilled, and three 5 MiB parts each with `--upload-chunk-size 5120`; `createAt` picks the
 * large-object id of each (default: the server's).
 */
export const seedMultipart = (n: number, seed: number, createAt?: (i: number) => number | undefined) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => i),
    (i) => {
      const at = createAt?.(i)
      return insertBinary({
        bytes: { size: 11 * MiB + i, seed: seed + i },
        mimeType: "video/mp4",
        ...(at === undefined ? {} : { createAt: at })
      })
    }
  )

/** A multipart upload in flight whose id a ledger marker records, and spill files on disk: the moment to kill -9. */
export const recordedUploadInFlight = (bucket: TestBucket["Service"], temp: string) =>
  Effect.gen(function*() {
    const open = yield* uploads(bucket.client, bucket.name)
    if (open.length === 0 || spills(temp).files === 0) return false
    const recorded = yield* Effect.forEach(
      (yield* stateKeys(bucket.client, bucket.name)).filter((k) => k.startsWith("lo-migrate/uploads/")),
      (k) => markerUploadId(bucket.client, bucket.name, k)
    )
    return recorded.some((id) => id !== null && open.includes(id))
  })

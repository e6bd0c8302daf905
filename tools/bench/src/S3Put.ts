/**
 * The S3 write limit: objects of the same sizes and content types as the table's, PUT from memory (Content-MD5
 * computed beforehand, as the migrator sends it) with `concurrency` requests in flight on keep-alive sockets. The
 * body's SHA-256, also computed beforehand, goes in `x-amz-content-sha256` as the migrator's store sends it, so the SDK
 * does not hash the body to sign the request (the server still verifies it).
 */
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import { sendS3 } from "@lo-migrate/s3"
import { Effect } from "effect"
import { createHash, randomFillSync } from "node:crypto"

export interface PutItem {
  readonly key: string
  readonly body: Uint8Array
  readonly md5Base64: string
  readonly sha256Hex: string
  readonly contentType: string | null
}

/**
 * Bodies for objects of the given sizes, sliced without copying from one random pool as big as the largest object.
 * Keys are distinct per object; the MD5 of each body is computed here, outside the timed part.
 */
export const prepareBodies = (
  objects: ReadonlyArray<{ readonly size: number; readonly mimeType: string | null }>,
  prefix: string
): ReadonlyArray<PutItem> => {
  const largest = objects.reduce((m, o) => Math.max(m, o.size), 0)
  const pool = Buffer.allocUnsafe(Math.max(largest, 1))
  randomFillSync(pool)
  return objects.map((o, i) => {
    const start = (i * 7919) % Math.max(1, largest - o.size + 1)
    const body = pool.subarray(start, start + o.size)
    return {
      key: `${prefix}${i.toString().padStart(8, "0")}`,
      body,
      md5Base64: createHash("md5").update(body).digest("base64"),
      sha256Hex: createHash("sha256").update(body).digest("hex"),
      contentType: o.mimeType
    }
  })
}

const putCommand = (bucket: string, item: PutItem, ifNoneMatch: boolean): PutObjectCommand =>
  new PutObjectCommand({
    Bucket: bucket,
    Key: item.key,
    Body: item.body,
    ContentLength: item.body.byteLength,
    ContentMD5: item.md5Base64,
    ...(item.contentType === null ? {} : { ContentType: item.contentType }),
    ...(ifNoneMatch ? { IfNoneMatch: "*" } : {})
  })

/** One PUT of `item`; with `ifNoneMatch`, conditional (`If-None-Match: *`) as the store sends it. */
export const putOne = (client: S3Client, bucket: string, item: PutItem, ifNoneMatch = false) =>
  Effect.tryPromise({
    // the signer signs the given SHA-256 instead of hashing the body
    try: (signal) =>
      sendS3(client, putCommand(bucket, item, ifNoneMatch), { abortSignal: signal, payloadSha256: item.sha256Hex }),
    catch: (cause) => new Error(`PUT ${item.key} failed: ${String(cause)}`)
  })

export const putAll = (client: S3Client, bucket: string, items: ReadonlyArray<PutItem>, concurrency: number) =>
  Effect.forEach(items, (item) => putOne(client, bucket, item), { concurrency, discard: true })

/**
 * Mime types against the real S3 server (Ceph RGW): every class of `storedContentType` (core ContentType.ts) goes up
 * in a single PUT, a spilled PUT and a multipart upload, and a plain GetObject / HeadObject returns a Content-Type the
 * rule predicts and metadata that decodes back to the exact original (or its digest, when too long for a header).
 */
import { HeadObjectCommand } from "@aws-sdk/client-s3"
import { assert, layer } from "@effect/vitest"
import {
  matchesMimeType,
  MimeTypeMetadata,
  originalMimeType,
  replacementContentType,
  storedContentType
} from "@lo-migrate/core"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { MiB } from "../src/index.ts"
import { TestBucket } from "../src/testing.ts"
import { getObject, requestOf, spill, storeOn, tempDir } from "./support.ts"

/** One value of each class, and plain ones that must come back byte for byte. */
const classes: ReadonlyArray<readonly [string, string]> = [
  ["plain", "text/plain"],
  ["plain with parameters", "application/pdf; charset=\"utf-8\"; name=\"a;b\""],
  ["plain, mixed case", "Application/Vnd.Example+JSON"],
  ["non-ASCII", "text/x-ünïcode"],
  ["non-Latin-1", "image/\u20ac \u{1F600}"],
  ["leading byte-order mark", "\uFEFFtext/plain"],
  ["line break", "text/plain\r\nX-Injected: 1"],
  ["bare line feed", "text/plain\n"],
  ["NUL", "text/\u0000plain"],
  ["tab", "text/plain;\tq=1"],
  ["DEL", "text/\u007f"],
  ["not a media type", "unused"],
  ["surrounding spaces", " text/plain "],
  ["255 characters (the longest plain one)", "a/" + "b".repeat(253)],
  ["256 characters", "a/" + "b".repeat(254)],
  ["10,000 characters", "x/" + "y".repeat(9_998)],
  ["10,000 non-ASCII characters", "ü".repeat(10_000)]
]

layer(TestBucket.layer, { excludeTestServices: true })("mime types on a real S3 server", (it) => {
  it.effect("every class is stored, and a plain GetObject / HeadObject gives back the exact original", () =>
    Effect.gen(function*() {
      const { store, client, bucket } = yield* storeOn({ partSize: 5 * MiB, headBeforePut: "never" })
      const dir = yield* tempDir
      for (const [label, mimeType] of classes) {
        const stored = storedContentType(mimeType)
        for (const shape of ["in memory", "spilled", "multipart"] as const) {
          const bytes = randomBytes(shape === "multipart" ? 5 * MiB + 1000 : 1000)
          const request = requestOf(bytes, {
            contentType: mimeType,
            ...(shape === "in memory" ? {} : { body: spill(dir, bytes) })
          })
          const what = `${label} (${shape})`
          assert.strictEqual(yield* store.put(request), "Uploaded", what)
          const got = yield* getObject(client, bucket, request.key)
          assert.isTrue(Buffer.from(got.bytes).equals(bytes), what)
          const head = yield* Effect.promise(() => client.send(new HeadObjectCommand({ Bucket: bucket, Key: request.key })))
          for (const [from, contentType, metadata] of [["GET", got.contentType, got.metadata], ["HEAD", head.ContentType, head.Metadata ?? {}]] as const) {
            if (stored._tag === "Plain") {
              assert.strictEqual(contentType, mimeType, `${what} ${from}`)
              assert.deepStrictEqual(metadata, {}, `${what} ${from}`)
            } else {
              assert.strictEqual(contentType, replacementContentType, `${what} ${from}`)
            }
            const recovered = originalMimeType(contentType, metadata)
            assert.isDefined(recovered, `${what} ${from}`)
            assert.isTrue(matchesMimeType(recovered!, mimeType), `${what} ${from}: ${JSON.stringify(recovered)}`)
            if (stored._tag === "Replaced" && stored.whole) {
              assert.deepStrictEqual(recovered, { _tag: "Exact", mimeType }, `${what} ${from}`)
              assert.strictEqual(metadata[MimeTypeMetadata.original], stored.metadata[MimeTypeMetadata.original])
            }
            if (stored._tag === "Replaced" && !stored.whole) {
              assert.strictEqual(recovered!._tag, "Digest", `${what} ${from}`)
              assert.isFalse(matchesMimeType(recovered!, mimeType.slice(1)))
            }
          }
          // the store's own HEAD agrees
          const own = yield* store.head(request.key)
          assert.strictEqual(own._tag === "Some" ? own.value.contentType : "none", head.ContentType)
        }
      }
    }), 240_000)

  it.effect("NULL and empty send no Content-Type: the server's default, read back as no mime type", () =>
    Effect.gen(function*() {
      const { store, client, bucket } = yield* storeOn()
      for (const mimeType of [null, ""]) {
        const bytes = randomBytes(100)
        yield* store.put(requestOf(bytes, { contentType: mimeType }))
        const got = yield* getObject(client, bucket, requestOf(bytes).key)
        assert.strictEqual(got.contentType, "binary/octet-stream")
        assert.deepStrictEqual(got.metadata, {})
        assert.isTrue(matchesMimeType(originalMimeType(got.contentType, got.metadata)!, mimeType))
      }
    }))
})

/**
 * End-to-end: rows whose mime type is no plain header value (non-ASCII, control characters, line breaks, a tab,
 * 10,000 characters) are migrated like any other (exit 0): each object gets a Content-Type S3 accepts, the exact
 * original (or, when too long for a header, its digest) is in its metadata, and a warning names every such row.
 * The CLI runs as a child process against a real PostgreSQL and the real Ceph RADOS Gateway.
 */
import { HeadObjectCommand } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { MimeTypeMetadata, originalMimeType, replacementContentType, storedContentType } from "@lo-migrate/core"
import { insertBinary } from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { assertInvariant, assertMigrated, Env, runCli, settings, setUpSchema } from "./cli.ts"
import { oddMimeTypes, plainMimeTypes } from "./production-rows.ts"

describe("mime types end to end (PostgreSQL + Ceph RGW)", () => {
  it.live("rows with odd mime types are migrated: exit 0, the original recoverable from each object, a warning per row", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const sql = yield* SqlClient.SqlClient
      // the application's column may be longer than the test table's varchar(255)
      yield* sql`ALTER TABLE _nice_binary ALTER COLUMN mime_type TYPE varchar`
      const rows = yield* Effect.forEach([...oddMimeTypes, ...plainMimeTypes], (mimeType, i) =>
        insertBinary({ bytes: { size: 100 + i, seed: 500 + i }, mimeType }))
      // a spilled object that goes up in parts (CreateMultipartUpload carries the headers)
      const big = yield* insertBinary({ bytes: { size: 6 * 1024 * 1024, seed: 77 }, mimeType: "application/x-ünïcode\r\n" })
      const { env } = yield* settings
      const run = yield* runCli(["--in-mem-max", "64", "--upload-chunk-size", "5120"], env)
      assert.strictEqual(run.code, 0, run.stderr)
      assert.include(run.stdout, "migration completed")
      assert.notInclude(run.stderr, "SignatureDoesNotMatch")
      const all = [...rows, big]
      yield* assertMigrated(all)
      assert.strictEqual((yield* assertInvariant).left, 0)
      for (const row of all) {
        const replaced = storedContentType(row.mimeType)._tag === "Replaced"
        const warned = run.stderr.split("\n").some((l) => l.includes(row.hash) && l.includes("is not a plain Content-Type"))
        assert.strictEqual(warned, replaced, `warning for row ${row.hash} (${JSON.stringify((row.mimeType ?? "").slice(0, 30))})`)
      }
      // what a plain HeadObject gives a reader of the bucket
      const bucket = yield* TestBucket
      const head = (key: string) =>
        Effect.promise(() => bucket.client.send(new HeadObjectCommand({ Bucket: bucket.name, Key: key })))
      const unicode = yield* head(rows[0]!.digests.sha256)
      assert.strictEqual(unicode.ContentType, replacementContentType)
      assert.strictEqual(unicode.Metadata?.[MimeTypeMetadata.original], "text%2Fx-%C3%BCn%C3%AFcode")
      assert.deepStrictEqual(originalMimeType(unicode.ContentType, unicode.Metadata), { _tag: "Exact", mimeType: "text/x-ünïcode" })
      const long = yield* head(rows[oddMimeTypes.length - 1]!.digests.sha256)
      assert.strictEqual(originalMimeType(long.ContentType, long.Metadata)?._tag, "Digest")
    }).pipe(Effect.provide(Env)), 180_000)
})

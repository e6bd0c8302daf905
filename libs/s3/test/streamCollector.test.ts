/**
 * `collectStream` (S3StreamCollector.ts), the store client's `streamCollector`: every byte of a response body in order,
 * an error for a body that fails or stops before its end, and the SDK's own collector for what is not a Node stream.
 * End to end: the same outputs and parsed errors as a client with the SDK's default collector.
 */
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { PassThrough, Readable } from "node:stream"
import { makeTrimmedClient, sendS3 } from "../src/index.ts"
import { collectStream } from "../src/S3StreamCollector.ts"
import { localClientOptions, localHttpServer } from "./support.ts"

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

describe("collectStream", () => {
  it.effect("joins the chunks of a stream in order; an empty one is empty; one chunk is handed back as it is", () =>
    Effect.gen(function*() {
      assert.strictEqual(text(yield* Effect.promise(() => collectStream(Readable.from([Buffer.from("ab"), Buffer.from("cd"), Buffer.from("e")])))), "abcde")
      assert.strictEqual((yield* Effect.promise(() => collectStream(Readable.from([])))).byteLength, 0)
      const only = Buffer.from("only")
      assert.strictEqual(yield* Effect.promise(() => collectStream(Readable.from([only]))), only)
      // chunks that arrive later, after the collector waits
      const later = new PassThrough()
      const collected = collectStream(later)
      setTimeout(() => {
        later.write("x".repeat(70_000))
        later.end("y")
      }, 10)
      const bytes = yield* Effect.promise(() => collected)
      assert.strictEqual(bytes.byteLength, 70_001)
      assert.strictEqual(bytes[70_000], "y".charCodeAt(0))
    }))

  it.effect("fails with the stream's error, and when the stream closes before its end", () =>
    Effect.gen(function*() {
      const failing = new PassThrough()
      const failed = collectStream(failing).then(() => "resolved", (e: Error) => e.message)
      failing.write("partial")
      failing.destroy(new Error("socket hang up"))
      assert.strictEqual(yield* Effect.promise(() => failed), "socket hang up")
      const closing = new PassThrough()
      const closed = collectStream(closing).then(() => "resolved", (e: Error) => e.message)
      closing.write("12345")
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
      closing.destroy()
      assert.strictEqual(yield* Effect.promise(() => closed), "the response body closed after 5 bytes, before its end")
      const gone = new PassThrough()
      gone.destroy()
      assert.strictEqual(
        yield* Effect.promise(() => collectStream(gone).then(() => "resolved", (e: Error) => e.message)),
        "the response body was closed before it was read"
      )
    }))

  it.effect("hands what is not a Node stream to the SDK's collector", () =>
    Effect.gen(function*() {
      const blob = new Blob([new TextEncoder().encode("from a blob")])
      assert.strictEqual(text(yield* Effect.promise(() => collectStream(blob))), "from a blob")
    }))

  it.effect("a client with it gets the outputs and errors of a client with the SDK's default collector", () =>
    Effect.scoped(Effect.gen(function*() {
      const { port } = yield* localHttpServer((req, res) => {
        req.resume()
        req.on("end", () => {
          if (req.method === "PUT") {
            res.writeHead(200, { etag: "\"e\"", "content-length": "0" })
            res.end()
          } else if (req.method === "HEAD") {
            res.writeHead(404, { "x-amz-request-id": "r1" })
            res.end()
          } else {
            const body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>"
            res.writeHead(403, { "content-type": "application/xml", "x-amz-request-id": "r2" })
            // in two writes, so the body arrives in more than one chunk
            res.write(body.slice(0, 20))
            setTimeout(() => res.end(body.slice(20)), 5)
          }
        })
      })
      const options = localClientOptions(port)
      assert.strictEqual(options.streamCollector, collectStream)
      const { streamCollector: _, ...sdkDefault } = options
      const ours = makeTrimmedClient(options)
      const theirs = makeTrimmedClient(sdkDefault)
      const settle = (p: Promise<unknown>) =>
        p.then(
          (out) => ({ ok: { ...(out as object), $metadata: undefined } }),
          (e: Error & { $metadata?: object }) => ({ error: e.name, message: e.message, metadata: e.$metadata })
        )
      const body = new TextEncoder().encode("hello")
      const sends = [
        (c: S3Client) => sendS3(c, new PutObjectCommand({ Bucket: "b", Key: "k", Body: body, ContentLength: 5 })),
        (c: S3Client) => sendS3(c, new HeadObjectCommand({ Bucket: "b", Key: "k" })),
        (c: S3Client) => sendS3(c, new ListObjectsV2Command({ Bucket: "b" }))
      ]
      const outcomes: Array<object> = []
      for (const command of sends) {
        const a = yield* Effect.promise(() => settle(command(ours)))
        const b = yield* Effect.promise(() => settle(command(theirs)))
        assert.deepStrictEqual(a, b)
        outcomes.push(a)
      }
      assert.deepStrictEqual(outcomes[0], { ok: { ETag: "\"e\"", $metadata: undefined } })
      assert.deepInclude(outcomes[1], { error: "NotFound" })
      assert.deepInclude(outcomes[2], { error: "AccessDenied", message: "no" })
      ours.destroy()
      theirs.destroy()
    })))
})

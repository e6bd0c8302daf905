/**
 * `lightSerde` (S3SerdeContext.ts): the store's client serializes requests and parses responses with a serde context
 * that inherits the client config instead of copying it, and gets the same requests, outputs and errors as the SDK's
 * own middleware: the same client built without it (`makeTrimmedClient(options, { light: false })`) is the reference,
 * against a local HTTP server that answers by path and records what arrives.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeTrimmedClient, sendS3 } from "../src/index.ts"
import { serdeContextOf } from "../src/S3SerdeContext.ts"
import { localClientOptions, localHttpServer } from "./support.ts"

interface Arrived {
  readonly method: string
  readonly url: string
  readonly headers: Record<string, unknown>
}

const requestIds = { "x-amz-request-id": "tx0001", "x-amz-id-2": "host-id-2" }

/** Answers by path: an object, an S3 error document, a 500 that is not XML, a listing; PUTs succeed. */
const server = Effect.suspend(() => {
  const arrived: Array<Arrived> = []
  return localHttpServer((req, res) => {
    arrived.push({ method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } })
    req.resume()
    req.on("end", () => {
      const path = (req.url ?? "").split("?")[0]
      if (req.method === "PUT") {
        res.writeHead(200, { etag: "\"put-etag\"", "content-length": "0", ...requestIds })
        res.end()
      } else if (path === "/b/present") {
        const body = "hello"
        res.writeHead(200, {
          etag: "\"abc\"",
          "content-type": "image/png",
          "content-length": String(body.length),
          "x-amz-meta-lo-migrate-mime-type": "text/plain",
          ...requestIds
        })
        res.end(req.method === "HEAD" ? undefined : body)
      } else if (path === "/b/missing") {
        const body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code>" +
          "<Message>The specified key does not exist.</Message><Key>missing</Key><RequestId>tx0001</RequestId></Error>"
        res.writeHead(404, { "content-type": "application/xml", ...requestIds })
        res.end(req.method === "HEAD" ? undefined : body)
      } else if (path === "/b/broken") {
        res.writeHead(500, { "content-type": "text/html", ...requestIds })
        res.end("<html>gateway trouble</html>")
      } else if (path === "/b" || path === "/b/") {
        const body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name><Prefix>p</Prefix>" +
          "<KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>p1</Key>" +
          "<Size>5</Size><ETag>\"abc\"</ETag></Contents></ListBucketResult>"
        res.writeHead(200, { "content-type": "application/xml", ...requestIds })
        res.end(body)
      } else if (path === "/garbled" || path === "/garbled/") {
        // a listing that is not XML: the parser's error, which has no $metadata of its own
        res.writeHead(200, { "content-type": "application/xml", ...requestIds })
        res.end("<ListBucketResult><Name>garbled</Nam")
      } else {
        res.writeHead(400, requestIds)
        res.end()
      }
    })
  }).pipe(Effect.map(({ port }) => ({ port, arrived })))
})

const clientPair = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const options = localClientOptions(port)
      return { light: makeTrimmedClient(options), reference: makeTrimmedClient(options, { light: false }) }
    }),
    ({ light, reference }) =>
      Effect.sync(() => {
        light.destroy()
        reference.destroy()
      })
  )

/** What a send ended with, comparable between two clients: the output without its timing, or the error's fields. */
const outcome = (client: S3Client, send: (client: S3Client) => Promise<object>) =>
  Effect.promise(() =>
    send(client).then(
      (output) => ({ output: { ...output, Body: undefined } as unknown }),
      (e: Record<string, unknown> & Error) => ({
        error: {
          name: e.name,
          message: e.message,
          code: e["Code"],
          metadata: e["$metadata"],
          fault: e["$fault"],
          status: (e["$response"] as { statusCode?: number } | undefined)?.statusCode,
          responseEnumerable: Object.keys(e).includes("$response")
        }
      })
    )
  )

const unsigned = (a: Arrived) => {
  const { authorization: _a, "x-amz-date": _d, "amz-sdk-invocation-id": _i, ...headers } = a.headers
  return { method: a.method, url: a.url, headers }
}

describe("lightSerde", () => {
  it("serdeContextOf reads the request context's properties over the config's, without copying the config", () => {
    const config = { protocol: "p", endpoint: "config's", region: "r" }
    const context = { endpoint: "context's", commandName: "c" }
    const serde = serdeContextOf(config, context)
    assert.strictEqual(serde["endpoint"], "context's")
    assert.strictEqual(serde["protocol"], "p")
    assert.strictEqual(serde["region"], "r")
    assert.deepStrictEqual(Object.keys(serde).sort(), ["commandName", "endpoint"])
  })

  it.effect("the same requests, outputs and errors as the SDK's middleware", () =>
    Effect.scoped(Effect.gen(function*() {
      const { arrived, port } = yield* server
      const { light, reference } = yield* clientPair(port)
      const body = new TextEncoder().encode("hello")
      const commands: ReadonlyArray<[string, (client: S3Client) => Promise<object>]> = [
        ["PUT", (c) => sendS3(c, new PutObjectCommand({ Bucket: "b", Key: "k", Body: body, ContentLength: 5, ContentType: "image/png", IfNoneMatch: "*" }))],
        ["HEAD present", (c) => sendS3(c, new HeadObjectCommand({ Bucket: "b", Key: "present" }))],
        ["GET present", (c) => sendS3(c, new GetObjectCommand({ Bucket: "b", Key: "present" }))],
        ["HEAD missing", (c) => sendS3(c, new HeadObjectCommand({ Bucket: "b", Key: "missing" }))],
        ["GET missing", (c) => sendS3(c, new GetObjectCommand({ Bucket: "b", Key: "missing" }))],
        ["GET broken", (c) => sendS3(c, new GetObjectCommand({ Bucket: "b", Key: "broken" }))],
        ["LIST", (c) => sendS3(c, new ListObjectsV2Command({ Bucket: "b", Prefix: "p" }))],
        ["LIST garbled", (c) => sendS3(c, new ListObjectsV2Command({ Bucket: "garbled" }))]
      ]
      for (const [what, command] of commands) {
        // twice each: the first request of a command class resolves its chain, the second runs on the cached one
        for (const round of [1, 2]) {
          const before = arrived.length
          const fromReference = yield* outcome(reference, command)
          const fromLight = yield* outcome(light, command)
          assert.deepStrictEqual(fromLight, fromReference, `${what}, round ${round}`)
          assert.strictEqual(arrived.length, before + 2)
          assert.deepStrictEqual(unsigned(arrived[before + 1]!), unsigned(arrived[before]!), `${what}: the request sent`)
        }
      }
      // the outcomes are what they should be, not merely alike
      const head = yield* outcome(light, (c) => sendS3(c, new HeadObjectCommand({ Bucket: "b", Key: "present" })))
      assert.deepInclude((head as { output: object }).output, { ETag: "\"abc\"", ContentType: "image/png", ContentLength: 5 })
      const missing = yield* outcome(light, (c) => sendS3(c, new GetObjectCommand({ Bucket: "b", Key: "missing" })))
      assert.deepInclude((missing as { error: object }).error, { name: "NoSuchKey", status: 404, responseEnumerable: false })
      assert.deepInclude((missing as { error: { metadata: object } }).error.metadata, {
        httpStatusCode: 404,
        requestId: "tx0001",
        extendedRequestId: "host-id-2"
      })
      const broken = yield* outcome(light, (c) => sendS3(c, new GetObjectCommand({ Bucket: "b", Key: "broken" })))
      assert.deepInclude((broken as { error: { metadata: object } }).error.metadata, { httpStatusCode: 500, requestId: "tx0001" })
      const garbled = yield* outcome(light, (c) => sendS3(c, new ListObjectsV2Command({ Bucket: "garbled" })))
      const parseError = (garbled as { error: { message: string; metadata: object } }).error
      assert.include(parseError.message, "Deserialization error")
      assert.deepStrictEqual(parseError.metadata, {
        httpStatusCode: 200,
        requestId: "tx0001",
        extendedRequestId: "host-id-2",
        cfId: undefined
      })
    })))
})

/** Helpers for the live tests: requests, spilled files, request recording and fault injection on the SDK client. */
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, type S3Client } from "@aws-sdk/client-s3"
import type { Body, PutRequest, Sha256Hex } from "@lo-migrate/core"
import { Effect, Redacted } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import {
  defaultS3StoreConfig,
  makeUploadLedger,
  s3ClientOptions,
  S3ClientService,
  S3ObjectStore,
  type S3StoreConfig,
  S3UploadLedger
} from "../src/index.ts"
import { TestBucket } from "../src/testing.ts"

export const md5Base64 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("base64")
export const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex") as Sha256Hex

export const requestOf = (
  bytes: Uint8Array,
  options: { readonly contentType?: string | null; readonly body?: Body; readonly md5Base64?: string } = {}
): PutRequest => ({
  key: sha256Hex(bytes),
  contentType: options.contentType === undefined ? "application/octet-stream" : options.contentType,
  size: bytes.byteLength,
  md5Base64: options.md5Base64 ?? md5Base64(bytes),
  body: options.body ?? { _tag: "InMemory", bytes }
})

/** A temp directory removed when the scope closes; `spill` writes bytes into it as a Spilled body. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "lo-migrate-s3-test-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

export const spill = (dir: string, bytes: Uint8Array): Extract<Body, { readonly _tag: "Spilled" }> => {
  const path = join(dir, `${sha256Hex(bytes)}-${randomBytes(4).toString("hex")}.bin`)
  writeFileSync(path, bytes)
  return { _tag: "Spilled", path }
}

export interface Recorded {
  readonly command: string
  readonly input: Record<string, unknown>
  readonly headers: Record<string, string>
  /** The HTTP status of the response, or of the error response; `undefined` when no response came. */
  status: number | undefined
}

type Middleware = (
  next: (args: { request: unknown; input: unknown }) => Promise<{ response: unknown }>,
  context: { commandName?: string }
) => (args: { request: unknown; input: unknown }) => Promise<{ response: unknown }>

const statusOf = (u: unknown): number | undefined => {
  const s = (u as { statusCode?: unknown; $metadata?: { httpStatusCode?: unknown } } | undefined)
  const v = s?.statusCode ?? s?.$metadata?.httpStatusCode
  return typeof v === "number" ? v : undefined
}

/**
 * Records every request the client sends (command, input, signed headers, response status); those of the upload
 * ledger's own objects (lo-migrate/...) only with `ledger: true` (ledger.test.ts counts them).
 */
export const recordRequests = (client: S3Client, options: { readonly ledger?: boolean } = {}): Array<Recorded> => {
  const log: Array<Recorded> = []
  const middleware: Middleware = (next, context) => (args) => {
    const request = args.request as { headers: Record<string, string> }
    const key = (args.input as { Key?: unknown; Prefix?: unknown })
    if (options.ledger !== true && String(key.Key ?? key.Prefix ?? "").startsWith("lo-migrate/")) return next(args)
    const entry: Recorded = {
      command: context.commandName ?? "?",
      input: args.input as Record<string, unknown>,
      headers: { ...request.headers },
      status: undefined
    }
    log.push(entry)
    return next(args).then(
      (out) => {
        entry.status = statusOf(out.response)
        return out
      },
      (error: unknown) => {
        entry.status = statusOf(error)
        throw error
      }
    )
  }
  client.middlewareStack.add(middleware as never, { step: "finalizeRequest", priority: "low", name: `record-${randomBytes(4).toString("hex")}` })
  return log
}

/**
 * Makes chosen requests fail before they are sent: `decide` gets the command name and input and returns an error to
 * throw, a promise to wait for first, or `undefined` to let the request through.
 */
export const injectFaults = (
  client: S3Client,
  decide: (command: string, input: Record<string, unknown>) => Error | Promise<void> | undefined
) => {
  const middleware: Middleware = (next, context) => (args) => {
    const decision = decide(context.commandName ?? "?", args.input as Record<string, unknown>)
    if (decision instanceof Error) return Promise.reject(decision)
    if (decision !== undefined) return decision.then(() => next(args))
    return next(args)
  }
  client.middlewareStack.add(middleware as never, { step: "initialize", name: `fault-${randomBytes(4).toString("hex")}` })
}

/** Rewrites a header of chosen requests after the SDK built them, before signing (to corrupt a Content-MD5). */
export const rewriteHeader = (
  client: S3Client,
  header: string,
  rewrite: (command: string, input: Record<string, unknown>, value: string | undefined) => string | undefined
) => {
  const middleware: Middleware = (next, context) => (args) => {
    const request = args.request as { headers: Record<string, string> }
    const value = rewrite(context.commandName ?? "?", args.input as Record<string, unknown>, request.headers[header])
    if (value !== undefined) request.headers[header] = value
    return next(args)
  }
  client.middlewareStack.add(middleware as never, { step: "build", name: `rewrite-${randomBytes(4).toString("hex")}` })
}

/** An SDK-shaped service error. */
export const serviceError = (name: string, status: number) =>
  Object.assign(new Error("injected"), { name, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status } })

/** A store with its own client over the file's test bucket; requests are recorded. Closed with the test's scope. */
export const storeOn = (overrides: Partial<Omit<S3StoreConfig, "bucket">> = {}) =>
  Effect.gen(function*() {
    const bucket = yield* TestBucket
    const config: S3StoreConfig = { ...bucket.config, ...overrides }
    const service = yield* S3ClientService.make(config)
    const log = recordRequests(service.client)
    const ledger = yield* makeUploadLedger(service.client, config)
    const store = yield* S3ObjectStore.make.pipe(
      Effect.provideService(S3ClientService, service),
      Effect.provideService(S3UploadLedger, ledger)
    )
    return { store, ledger, client: service.client, log, bucket: bucket.name, config }
  })

export const getObject = (client: S3Client, bucket: string, key: string) =>
  Effect.promise(() => client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).pipe(
    Effect.flatMap((out) =>
      Effect.promise(() => out.Body!.transformToByteArray()).pipe(
        Effect.map((bytes) => ({ bytes, contentType: out.ContentType, metadata: out.Metadata ?? {} }))
      )
    )
  )

export const exists = (client: S3Client, bucket: string, key: string) =>
  Effect.promise(() =>
    client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(() => true, (e: unknown) => {
      if (statusOf(e) === 404) return false
      throw e
    })
  )

/** Incomplete multipart uploads left in the bucket (for `key`, when given). */
export const openUploads = (client: S3Client, bucket: string, key?: string) =>
  Effect.promise(() => client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).pipe(
    Effect.map((out) => (out.Uploads ?? []).filter((u) => key === undefined || u.Key === key))
  )

export const count = (log: ReadonlyArray<Recorded>, command: string) => log.filter((r) => r.command === command).length

/**
 * A local HTTP server on a free loopback port, closed (connections too) when the scope closes; `handle` answers each
 * request. For the tests that check what the client sends and how it reads answers, without the real gateway.
 */
export const localHttpServer = (handle: (req: IncomingMessage, res: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.callback<Server>((resume) => {
      const server = createServer(handle)
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => ({ port: (server.address() as AddressInfo).port })))

/** The store client's options (`s3ClientOptions`) for a `localHttpServer` on `port`, with made-up credentials. */
export const localClientOptions = (port: number) =>
  s3ClientOptions({
    ...defaultS3StoreConfig,
    bucket: "b",
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: Redacted.make("FAKEACCESSKEY"),
    secretAccessKey: Redacted.make("fake-secret-key-0123456789")
  })

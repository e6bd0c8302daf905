/**
 * The AWS SDK client, configured for S3-compatible servers (Ceph RGW first) and owned by a scope: created when the
 * layer is built, destroyed (sockets closed) when it is released.
 */
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { Agent as HttpAgent } from "node:http"
import { Agent as HttpsAgent } from "node:https"
import { memoizePerBucket } from "./S3BucketMemo.ts"
import { cachedChainOptions, prepareClient } from "./S3Send.ts"
import { lightSerde } from "./S3SerdeContext.ts"
import { collectStream } from "./S3StreamCollector.ts"
import { SigningSha256 } from "./SigningHash.ts"
import { defaultS3StoreConfig, type S3StoreConfig } from "./S3StoreConfig.ts"

/**
 * The SDK's own log lines. Debug, info and error are dropped: the SDK logs every failed command at error level with its
 * whole input (bodies included), and each failure reaches the caller anyway as a classified `StorageError`. Warnings go
 * to stderr, except the SDK's note that a streaming request is not retried, which is by design here.
 */
const sdkLogger = {
  debug: () => {},
  info: () => {},
  trace: () => {},
  warn: (...args: Array<unknown>) => {
    if (args[0] !== "An error was encountered in a non-retryable streaming request.") console.warn("[aws-sdk]", ...args)
  },
  error: () => {}
}

/** The keep-alive agents behind the client (one per protocol), `maxSockets` each. */
export interface S3Agents {
  readonly http: HttpAgent
  readonly https: HttpsAgent
}

export const makeAgents = (config: S3StoreConfig): S3Agents => {
  const options = { keepAlive: true, maxSockets: Math.max(1, config.maxSockets) }
  return { http: new HttpAgent(options), https: new HttpsAgent(options) }
}

/**
 * SDK client options derived from the store config:
 * - `maxAttempts: 1`: the SDK never retries on its own (neither its "standard" nor its "adaptive" retry mode runs).
 *   Retries come from one policy, core's `retrySchedule`: the pipeline's `retryInfrastructure` and the store's few
 *   retries of a part, an abort, a corrupted body. Two retry layers would multiply the attempts and blur the budget.
 * - `socketTimeout` (`socketTimeoutMs`): a request without progress for that long (no answer yet, or a stalled body) is
 *   aborted and its socket destroyed, so the retry goes out on a fresh connection. `connectionTimeout` bounds the TCP
 *   connect. There is deliberately no total request timeout: a big part takes as long as it takes while it moves.
 * - `requestChecksumCalculation`/`responseChecksumValidation: "WHEN_REQUIRED"`: the SDK's default CRC32 trailers
 *   (aws-chunked bodies) break Ceph RGW (411 MissingContentLength); integrity comes from Content-MD5 instead.
 * - keep-alive agents passed as instances (the SDK then keeps them for large bodies too) with `maxSockets`;
 *   `expectContinueHeader: false` because with an external agent the SDK sends the body without waiting anyway.
 * - `cacheMiddleware: true` and a `SignalRoutingHttpHandler`: every request of a command class runs through one cached
 *   middleware chain, its abort signal and payload hash carried on its input (S3Send.ts, `prepareClient`).
 * - `sha256: SigningSha256`: the SDK's SHA-256, with the SigV4 signing key imported once (SigningHash.ts).
 * - `streamCollector: collectStream`: response bodies read without a pipe into a new `Writable` (S3StreamCollector.ts).
 * - credentials from the config, or the AWS default chain when both are `undefined`.
 */
export const s3ClientOptions = (config: S3StoreConfig, agents: S3Agents = makeAgents(config)): S3ClientConfig => {
  const credentials = config.accessKeyId !== undefined && config.secretAccessKey !== undefined
    ? {
      credentials: {
        accessKeyId: Redacted.value(config.accessKeyId),
        secretAccessKey: Redacted.value(config.secretAccessKey)
      }
    }
    : {}
  return {
    region: config.region,
    ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
    forcePathStyle: config.forcePathStyle,
    ...credentials,
    maxAttempts: 1,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    expectContinueHeader: false,
    logger: sdkLogger,
    sha256: SigningSha256,
    streamCollector: collectStream,
    ...cachedChainOptions({
      httpAgent: agents.http,
      httpsAgent: agents.https,
      connectionTimeout: config.connectionTimeoutMs ?? defaultS3StoreConfig.connectionTimeoutMs ?? 5_000,
      socketTimeout: config.socketTimeoutMs ?? defaultS3StoreConfig.socketTimeoutMs ?? 20_000
    })
  }
}

/** The SDK middleware `trimMiddleware` removes (besides replacing `retryMiddleware` by a pass-through). */
export const droppedMiddleware: ReadonlyArray<string> = [
  "loggerMiddleware",
  "getUserAgentMiddleware",
  "regionRedirectMiddleware",
  "regionRedirectEndpointMiddleware",
  "s3ExpressMiddleware",
  "recursionDetectionMiddleware",
  "addExpectContinueMiddleware",
  "validateBucketNameMiddleware"
]

/**
 * Client middleware that does nothing for this store but costs CPU on every request, removed from the client's stack:
 * - `loggerMiddleware`: a redacted copy of every input and output for `logger.info`, which `sdkLogger` drops;
 * - `getUserAgentMiddleware`: builds and escapes the `User-Agent` / `x-amz-user-agent` strings (not signed, not
 *   needed by S3);
 * - `retryMiddleware`: with `maxAttempts: 1` it only makes an invocation id (a UUID) and a retry token per request;
 *   it is replaced by a pass-through of the same name because the signing middleware is placed relative to it;
 * - `regionRedirectMiddleware` (acts only with `followRegionRedirects`, off) and `regionRedirectEndpointMiddleware`
 *   (acts only on the redirect the former records; otherwise two awaits per request), `s3ExpressMiddleware` (S3 Express
 *   directory buckets only), `recursionDetectionMiddleware` (AWS Lambda trace header), `addExpectContinueMiddleware`
 *   (`expectContinueHeader: false`), `validateBucketNameMiddleware` (the bucket is a plain name from the config).
 * What stays: serialization, endpoint, Content-Length, SigV4 signing, deserialization, and the command's own
 * middleware (Content-MD5 is the caller's, checked by the server). Measured against a local HTTP server that answers
 * at once (so only the client's CPU counts), 16 KiB PUTs, 32 in flight, 3 alternating pairs of 10,000 PUTs on the
 * loaded 2-core bench VM: 592 / 451 / 448 us CPU per PUT with the full stack, 392 / 376 / 389 trimmed (-15%).
 */
export const trimMiddleware = (client: S3Client): void => {
  const stack = client.middlewareStack
  for (const name of droppedMiddleware) stack.remove(name)
  if (stack.remove("retryMiddleware")) {
    stack.add((next) => (args) => next(args), { step: "finalizeRequest", name: "retryMiddleware", priority: "high" })
  }
}

/**
 * Has V8 keep `object`'s properties in fast mode (named in a map, copied by offset) instead of a hash table, and
 * returns it. The SDK's resolved client config (67 properties, each config resolver adding its own) ends up in V8's
 * dictionary mode, and the SDK's middleware spread it (`{ ...config }` in the endpoint middleware and the signer,
 * `{ ...config, ...context }` in schema serialization and deserialization): 10 us a spread here, 1.6 us once fast.
 * On the store's client those spreads are left for the first request of a bucket (`memoizePerBucket`, `lightSerde`);
 * the config's properties are still read on every request.
 * V8 turns a dictionary-mode object fast when it serves as the prototype of objects whose property loads its inline
 * caches have learned (`JSObject::MakePrototypesFast`), which the loads below do; nothing about the object changes
 * but its layout. Should a V8 stop doing this, the step only costs the loads (`test/fastConfig.test.ts` checks it).
 */
export const withFastProperties = <A extends object>(object: A): A => {
  const key = Object.keys(object)[0]
  if (key === undefined) return object
  const inheriting: Record<string, unknown> = Object.create(object)
  for (let i = 0; i < 256; i++) void inheriting[key]
  return object
}

/**
 * A client on the store's request path, from `options` made like `s3ClientOptions`' (with `cachedChainOptions`): its
 * stack trimmed (`trimMiddleware`), endpoints and signers worked out once per bucket (`memoizePerBucket`), requests
 * (de)serialized without a copy of the config (`lightSerde`), its resolved config in fast mode (`withFastProperties`)
 * and prepared for `sendS3` (`prepareClient`). `perBucket: false` and `light: false` leave out the two steps (the
 * bench's `adapter-cost.ts` measures them; the tests compare against them).
 */
export const makeTrimmedClient = (
  options: S3ClientConfig,
  { light = true, perBucket = true }: { readonly perBucket?: boolean; readonly light?: boolean } = {}
): S3Client => {
  const client = new S3Client(options)
  trimMiddleware(client)
  if (perBucket) memoizePerBucket(client)
  if (light) lightSerde(client)
  withFastProperties(client.config)
  return prepareClient(client)
}

/** The configured SDK client, the config it was made from, and its agents. */
export class S3ClientService extends Context.Service<S3ClientService, {
  readonly client: S3Client
  readonly config: S3StoreConfig
  readonly agents: S3Agents
}>()("lo-migrate/S3ClientService") {
  /** Creates the client in the current scope; closing the scope destroys it and its agents (keep-alive sockets). */
  static readonly make = (config: S3StoreConfig) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const agents = makeAgents(config)
        const client = makeTrimmedClient(s3ClientOptions(config, agents))
        return S3ClientService.of({ client, config, agents })
      }),
      ({ agents, client }) =>
        Effect.sync(() => {
          client.destroy()
          agents.http.destroy()
          agents.https.destroy()
        })
    )

  static readonly layer = (config: S3StoreConfig): Layer.Layer<S3ClientService> =>
    Layer.effect(S3ClientService, S3ClientService.make(config))
}

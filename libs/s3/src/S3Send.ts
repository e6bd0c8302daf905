/**
 * How the store sends a request: through the SDK's cached middleware chain (`cacheMiddleware: true`), with what is
 * particular to one request carried on the command's input instead of per-request options or per-command middleware.
 *
 * Why: `client.send(command, { abortSignal })` makes the SDK resolve a fresh middleware chain for every request (its
 * handler cache is used only for a `send` without options), and so does middleware added to one command's own stack.
 * Resolving the chain (cloning and sorting both stacks, building the closures) cost ~70 us of client CPU per PutObject,
 * 15% of what the SDK spends on one (measured with `tools/bench/src/adapter-cost.ts`, see tools/bench/README.md).
 *
 * So a prepared client (`prepareClient`) has, once for all requests:
 * - `loMigrateRequestExtras` (build step): sets `x-amz-content-sha256` to the given payload SHA-256 (the SigV4 signer
 *   then signs that value instead of hashing the body, and the server checks the body against it), and removes the
 *   SDK's default Content-Type where the object must get the server's own;
 * - `loMigrateAbortSignal` (deserialize step, innermost, after signing has cloned the request): hands the request's
 *   abort signal to the request handler, a `NodeHttpHandler` that reads it from there (`SignalRoutingHttpHandler`);
 * - a middleware stack that drops the cached chains whenever it is changed (the SDK's cache would otherwise keep
 *   serving chains without middleware added later, as tests add it to count or break requests).
 * `sendS3` on a client that was not prepared falls back to per-request options and command middleware: slower, same
 * requests.
 *
 * What the SDK's cache costs in memory: each cached chain keeps the context it was resolved with, which names the first
 * command of its class (`commandInstance`), so that command's input stays reachable for the client's life: for
 * PutObject one body, a view that keeps its receive buffer (at most a few MiB) alive, outside `--max-in-memory`.
 */
import type {
  $Command,
  S3Client,
  S3ClientResolvedConfig,
  ServiceInputTypes,
  ServiceOutputTypes
} from "@aws-sdk/client-s3"
import { NodeHttpHandler } from "@smithy/node-http-handler"

/** What is particular to one request besides the command's input. */
export interface RequestExtras {
  /** Aborts the request (its socket is destroyed). */
  readonly abortSignal?: AbortSignal | undefined
  /** Sent as `x-amz-content-sha256` and signed instead of a hash of the body. */
  readonly payloadSha256?: string | undefined
  /** Keep the SDK's default `Content-Type: application/octet-stream` off a PutObject without a ContentType. */
  readonly noDefaultContentType?: boolean | undefined
}

/** The input property the extras travel in (a symbol: the SDK's serializers read only the operation's members). */
const extrasKey: unique symbol = Symbol.for("lo-migrate/s3-request-extras")

type WithExtras = { [extrasKey]?: RequestExtras }

type HandleArgs = Parameters<NodeHttpHandler["handle"]>

/** Abort signals of requests in flight, by the request object the handler receives. */
const signals = new WeakMap<object, AbortSignal>()

/**
 * A `NodeHttpHandler` that takes a request's abort signal from `loMigrateAbortSignal` when the `send` gave none (a
 * cached middleware chain passes the same empty options to every request).
 */
export class SignalRoutingHttpHandler extends NodeHttpHandler {
  override handle(request: HandleArgs[0], options?: HandleArgs[1]): ReturnType<NodeHttpHandler["handle"]> {
    const signal = signals.get(request)
    if (signal === undefined || options?.abortSignal !== undefined) return super.handle(request, options)
    return super.handle(request, { ...options, abortSignal: signal })
  }
}

type Next = (args: { readonly input: unknown; readonly request: unknown }) => Promise<unknown>

const extrasOf = (input: unknown): RequestExtras | undefined =>
  typeof input === "object" && input !== null ? (input as WithExtras)[extrasKey] : undefined

const applyExtras = (request: unknown, extras: RequestExtras | undefined): void => {
  const headers = (request as { headers?: Record<string, string> }).headers
  if (extras === undefined || headers === undefined) return
  if (extras.payloadSha256 !== undefined) headers["x-amz-content-sha256"] = extras.payloadSha256
  if (extras.noDefaultContentType === true) delete headers["content-type"]
}

const requestExtrasMiddleware = (next: Next) => (args: { readonly input: unknown; readonly request: unknown }) => {
  applyExtras(args.request, extrasOf(args.input))
  return next(args)
}

const abortSignalMiddleware = (next: Next) => (args: { readonly input: unknown; readonly request: unknown }) => {
  const signal = extrasOf(args.input)?.abortSignal
  if (signal !== undefined && typeof args.request === "object" && args.request !== null) signals.set(args.request, signal)
  return next(args)
}

const prepared = new WeakSet<S3Client>()

/** The stack operations that change which middleware runs. */
const stackMutators = ["add", "addRelativeTo", "remove", "removeByTag", "use"] as const

/**
 * Installs the middleware `sendS3` relies on. The client must have been made with `cacheMiddleware: true` and a
 * `SignalRoutingHttpHandler` (as `S3ClientService` makes it); otherwise it is left as it is and `sendS3` uses the
 * per-request path.
 */
export const prepareClient = (client: S3Client): S3Client => {
  if (prepared.has(client)) return client
  if (client.config.cacheMiddleware !== true || !(client.config.requestHandler instanceof SignalRoutingHttpHandler)) {
    return client
  }
  const stack = client.middlewareStack
  stack.add(requestExtrasMiddleware as never, { step: "build", name: "loMigrateRequestExtras" })
  stack.add(abortSignalMiddleware as never, { step: "deserialize", priority: "low", name: "loMigrateAbortSignal" })
  // The SDK caches the chain per command class and never looks at the stack again: drop the cache on every change.
  const mutable = stack as unknown as Record<string, (...args: Array<unknown>) => unknown>
  for (const name of stackMutators) {
    const original = mutable[name]
    if (typeof original !== "function") continue
    mutable[name] = function(this: unknown, ...args: Array<unknown>) {
      ;(client as unknown as { handlers?: unknown }).handlers = undefined
      return original.apply(this, args)
    }
  }
  prepared.add(client)
  return client
}

/** The stack operations `editResolvedChains`' edits use: a client's middleware merged with a command's. */
export interface ResolvedChainStack {
  remove: (name: string) => boolean
  add: (middleware: unknown, options: unknown) => void
  addRelativeTo: (middleware: unknown, options: unknown) => void
}

/**
 * Has `edit` applied to every middleware stack `client` resolves a chain from (its own middleware merged with a
 * command's, which is where the SDK's per-command middleware such as endpoint resolution and serialization live), from
 * now on: the SDK merges the two stacks with the client stack's `concat`, so that is where the edit goes in.
 */
export const editResolvedChains = (client: S3Client, edit: (stack: ResolvedChainStack) => void): void => {
  const stack = client.middlewareStack as unknown as { concat: (from: unknown) => ResolvedChainStack }
  const concat = stack.concat
  stack.concat = function(this: unknown, from: unknown) {
    const resolved = concat.call(this, from)
    edit(resolved)
    return resolved
  }
}

/**
 * The client options `prepareClient` relies on: the SDK's cached middleware chain, and a `SignalRoutingHttpHandler`
 * over `handler` (agents, timeouts) that takes each request's abort signal from it.
 */
export const cachedChainOptions = (handler: ConstructorParameters<typeof NodeHttpHandler>[0]) => ({
  cacheMiddleware: true,
  requestHandler: new SignalRoutingHttpHandler(handler)
})

/** Whether `sendS3` sends over `client`'s cached middleware chain. */
export const isPrepared = (client: S3Client): boolean => prepared.has(client)

/**
 * Sends `command` with `extras`. On a prepared client the extras go on the command's input and the request runs through
 * the cached chain; on any other client they become the send's options and middleware of the command's own.
 */
export const sendS3 = <Input extends ServiceInputTypes, Output extends ServiceOutputTypes>(
  client: S3Client,
  command: $Command<Input, Output, S3ClientResolvedConfig, ServiceInputTypes, ServiceOutputTypes>,
  extras: RequestExtras = {}
): Promise<Output> => {
  if (prepared.has(client)) {
    ;(command.input as WithExtras)[extrasKey] = extras
    return client.send(command)
  }
  if (extras.payloadSha256 !== undefined || extras.noDefaultContentType === true) {
    command.middlewareStack.add(
      ((next: Next) => (args: { readonly input: unknown; readonly request: unknown }) => {
        applyExtras(args.request, extras)
        return next(args)
      }) as never,
      { step: "build", name: "loMigrateRequestExtras" }
    )
  }
  return client.send(command, extras.abortSignal === undefined ? undefined : { abortSignal: extras.abortSignal })
}

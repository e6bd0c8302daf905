/**
 * What the SDK works out anew for every request although, for the store, it depends only on the bucket: the request's
 * endpoint and its SigV4 signer. `memoizePerBucket(client)` has the client work each out once per bucket.
 *
 * - The endpoint. The SDK's `endpointV2Middleware` gathers ~20 endpoint parameters from the client's config through as
 *   many awaited providers (`resolveParams`), copies the whole resolved config (`{ ...config }`) and runs the S3 rule
 *   set, for every request. The S3 client's own `EndpointCache` keys the rule set's answers on the bucket and the
 *   client's settings, not on the object key: the SDK itself holds that an S3 endpoint does not depend on the key. In
 *   every middleware chain the client resolves, that middleware is replaced by one that asks the SDK's own
 *   `getEndpointFromInstructions` the first time a chain (a command class: some commands add static parameters) sees a
 *   bucket, reuses the answer afterwards, and sets on the request's context what the SDK's middleware sets (the
 *   endpoint, its auth schemes, the signing region and service; not the endpoint-override flag the SDK records for its
 *   user-agent middleware, which `trimMiddleware` drops). A command whose endpoint parameters read more of its
 *   input than `Bucket` and `Key` (`ListObjectsV2`'s `Prefix`) is resolved every time, as the SDK does.
 * - The signer. The SigV4 auth scheme calls the config's `signer(authScheme)` for every request, and the SDK's builds
 *   a new `SignatureV4` from another copy of the whole config each time. What it builds depends only on the auth
 *   scheme (the endpoint's, the same object for a memoized endpoint) and the client's config, and it reads the
 *   credentials from the config's provider at each signature, so the same auth scheme now gets the same signer.
 *
 * Measured in tools/bench/README.md ("Issue 16, session 13"): a sixth of the migrator's JavaScript allocation.
 */
import type { S3Client } from "@aws-sdk/client-s3"
import { endpointMiddlewareOptions, getEndpointFromInstructions } from "@smithy/core/endpoints"
import { editResolvedChains } from "./S3Send.ts"

/** The input members an endpoint may be memoized over: the bucket decides it, the key does not (see above). */
const memoizableContextParams = new Set(["Bucket", "Key"])

interface Instruction {
  readonly type: string
  readonly name?: string
}
interface InstructionsSupplier {
  readonly getEndpointParameterInstructions: () => Record<string, Instruction>
}

/** Whether the endpoint of a command with these instructions depends on its input through `Bucket` only. */
export const memoizableInstructions = (instructions: Record<string, Instruction>): boolean =>
  Object.values(instructions).every((i) =>
    i.type === "clientContextParams" || i.type === "builtInParams" || i.type === "staticContextParams" ||
    (i.type === "contextParams" && i.name !== undefined && memoizableContextParams.has(i.name))
  )

interface AuthScheme {
  readonly signingRegion?: string
  readonly signingName?: string
  readonly signingRegionSet?: ReadonlyArray<string>
  readonly properties?: Record<string, unknown>
}
type Endpoint = Awaited<ReturnType<typeof getEndpointFromInstructions>>
type Context = Record<string, unknown> & {
  endpointV2?: Endpoint
  authSchemes?: ReadonlyArray<AuthScheme> | undefined
  __smithy_context?: { commandInstance?: { constructor: unknown }; selectedHttpAuthScheme?: { httpAuthOption?: { signingProperties?: Record<string, unknown> } } }
}
type Args = { readonly input: Record<string, unknown> }
type Next = (args: Args) => Promise<unknown>

/** What the SDK's endpoint middleware sets on the context once it has the endpoint. */
const applyEndpoint = (context: Context, endpoint: Endpoint): void => {
  context.endpointV2 = endpoint
  const authSchemes = (endpoint.properties as Record<string, unknown> | undefined)?.["authSchemes"] as
    | ReadonlyArray<AuthScheme>
    | undefined
  context.authSchemes = authSchemes
  const authScheme = authSchemes?.[0]
  if (authScheme === undefined) return
  context["signing_region"] = authScheme.signingRegion
  context["signing_service"] = authScheme.signingName
  const httpAuthOption = context.__smithy_context?.selectedHttpAuthScheme?.httpAuthOption
  if (httpAuthOption !== undefined) {
    httpAuthOption.signingProperties = Object.assign(httpAuthOption.signingProperties ?? {}, {
      signing_region: authScheme.signingRegion,
      signingRegion: authScheme.signingRegion,
      signing_service: authScheme.signingName,
      signingName: authScheme.signingName,
      signingRegionSet: authScheme.signingRegionSet
    }, authScheme.properties)
  }
}

/** A map of promises: a `Map`, or a `WeakMap` for object keys. */
interface PromiseMemo<K, V> {
  get(key: K): Promise<V> | undefined
  set(key: K, value: Promise<V>): unknown
  delete(key: K): boolean
}

/**
 * The promise `memo` holds for `key`, else `make()`'s, held from now on (callers that come while it runs share it);
 * once it fails it is forgotten, so the next caller tries again.
 */
const memoPromise = <K, V>(memo: PromiseMemo<K, V>, key: K, make: () => Promise<V>): Promise<V> => {
  const known = memo.get(key)
  if (known !== undefined) return known
  const made = make()
  memo.set(key, made)
  made.catch(() => memo.get(key) === made && memo.delete(key))
  return made
}

/** The replacement middleware of one resolved chain (one command class on a cached chain). */
const memoEndpointMiddleware = (config: S3Client["config"]) => (next: Next, context: Context) => {
  // by bucket: the resolution under way or done (requests sent together wait for the first one's); a failed one is
  // forgotten, so the next request tries again
  const memo = new Map<string, Promise<Endpoint>>()
  const resolve = (input: Args["input"], instructions: Record<string, Instruction>) =>
    getEndpointFromInstructions(
      input,
      { getEndpointParameterInstructions: () => instructions } as never,
      { ...config } as never,
      context as never
    )
  // the chain's command class, and so its instructions, are known at its first request
  let instructions: Record<string, Instruction> | undefined
  let memoizable = false
  return async (args: Args): Promise<unknown> => {
    if (instructions === undefined) {
      const supplier = context.__smithy_context?.commandInstance?.constructor as InstructionsSupplier | undefined
      instructions = supplier?.getEndpointParameterInstructions() ?? {}
      memoizable = memoizableInstructions(instructions)
    }
    const bucket = args.input["Bucket"]
    const chainInstructions = instructions
    const endpoint = typeof bucket === "string" && memoizable
      ? memoPromise(memo, bucket, () => resolve(args.input, chainInstructions))
      : resolve(args.input, instructions)
    applyEndpoint(context, await endpoint)
    return next(args)
  }
}

type SignerFunction = (authScheme?: object) => Promise<unknown>

/** `signer` answering the same auth scheme object with the same signer (see above); a failed one is forgotten. */
const memoizeSigner = (signer: SignerFunction): SignerFunction => {
  const bySchemes = new WeakMap<object, Promise<unknown>>()
  const noScheme = {}
  return (authScheme) => memoPromise(bySchemes, authScheme ?? noScheme, () => signer(authScheme))
}

const memoized = new WeakSet<S3Client>()

/** Has `client` resolve endpoints and build signers once per bucket from now on (see above); idempotent. */
export const memoizePerBucket = (client: S3Client): S3Client => {
  if (memoized.has(client)) return client
  editResolvedChains(client, (stack) => {
    if (stack.remove(endpointMiddlewareOptions.name!)) {
      stack.addRelativeTo(memoEndpointMiddleware(client.config), endpointMiddlewareOptions)
    }
  })
  const config = client.config as unknown as { signer?: unknown }
  if (typeof config.signer === "function") config.signer = memoizeSigner(config.signer as SignerFunction)
  memoized.add(client)
  return client
}

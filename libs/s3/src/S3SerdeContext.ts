/**
 * The request serializer and response deserializer of the store's client, without a copy of the whole client config per
 * request.
 *
 * The SDK's schema serialization and deserialization middleware hand the protocol a serde context made by spreading the
 * resolved client config (67 properties) and the request's context into a new object, twice per request: ~9 KiB of
 * garbage each (V8 keeps the copy as a hash table), an eighth of the migrator's JavaScript allocation. The protocol
 * only reads that context's properties. `lightSerde(client)` replaces both middleware, in every chain the client
 * resolves, by ones that do what the SDK's do with a context that inherits the config instead of copying it (the
 * request context's own properties and the endpoint on top, as in the spread: the request's win over the config's).
 * A failed deserialization is decorated as the SDK does (the raw response on `$response`, `$metadata` from its status
 * and request-id headers), so errors are classified as before (S3Errors.ts).
 */
import type { S3Client } from "@aws-sdk/client-s3"
import { deserializerMiddlewareOption, operation, serializerMiddlewareOption } from "@smithy/core/schema"
import { getSmithyContext, HttpResponse, toEndpointV1 } from "@smithy/core/transport"
import { editResolvedChains } from "./S3Send.ts"

type Config = S3Client["config"] & { readonly protocol: Protocol }
interface Protocol {
  serializeRequest(schema: unknown, input: unknown, context: object): Promise<unknown>
  deserializeResponse(schema: unknown, context: object, response: unknown): Promise<unknown>
}
type Context = Record<string, unknown> & { endpointV2?: Parameters<typeof toEndpointV1>[0] }
type Args = Record<string, unknown> & { readonly input: unknown }
type Next = (args: Args) => Promise<{ readonly response: unknown }>

/** The serde context: the request context's own properties over the config, as `{ ...config, ...context }` reads. */
export const serdeContextOf = (config: object, context: object): Record<string, unknown> =>
  Object.assign(Object.create(config) as Record<string, unknown>, context)

const operationOf = (context: Context) => {
  const [, ns, n, t, i, o] = (getSmithyContext(context as never)["operationSchema"] as ReadonlyArray<unknown> | undefined) ?? []
  return operation(ns as never, n as never, t as never, i as never, o as never)
}

const serialize = (config: Config) => (next: Next, context: Context) => async (args: Args) => {
  const endpointV2 = context.endpointV2
  const endpoint = endpointV2 !== undefined ? async () => toEndpointV1(endpointV2) : config.endpoint
  const serdeContext = serdeContextOf(config, context)
  serdeContext["endpoint"] = endpoint
  const request = await config.protocol.serializeRequest(operationOf(context), args.input, serdeContext)
  return next({ ...args, request })
}

const requestIdHeader = /^x-[\w-]+-request-?id$/
const extendedRequestIdHeader = /^x-[\w-]+-id-2$/
const cfIdHeader = /^x-[\w-]+-cf-id$/
const headerMatching = (pattern: RegExp, headers: Record<string, string>): string | undefined => {
  for (const name of Object.keys(headers)) if (pattern.test(name)) return headers[name]
  return undefined
}

/** What the SDK's deserialization middleware adds to an error thrown while a response is parsed. */
const decorate = (error: unknown, response: unknown): unknown => {
  if (typeof error !== "object" || error === null) return error
  const e = error as Record<string, unknown> & { message?: string }
  Object.defineProperty(e, "$response", { value: response, enumerable: false, writable: false, configurable: false })
  if (!("$metadata" in e)) {
    try {
      e.message += "\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object."
    } catch {
      // a read-only message stays as it is
    }
    if (e["$responseBodyText"] !== undefined) (response as { body?: unknown }).body = e["$responseBodyText"]
    if (HttpResponse.isInstance(response)) {
      const { headers = {}, statusCode } = response
      e["$metadata"] = {
        httpStatusCode: statusCode,
        requestId: headerMatching(requestIdHeader, headers),
        extendedRequestId: headerMatching(extendedRequestIdHeader, headers),
        cfId: headerMatching(cfIdHeader, headers)
      }
    }
  }
  return e
}

const deserialize = (config: Config) => (next: Next, context: Context) => async (args: Args) => {
  const { response } = await next(args)
  let output: unknown
  try {
    output = await config.protocol.deserializeResponse(operationOf(context), serdeContextOf(config, context), response)
  } catch (error) {
    throw decorate(error, response)
  }
  return { response, output }
}

const lightened = new WeakSet<S3Client>()

/** Has every middleware chain `client` resolves from now on serialize and deserialize without a config copy. */
export const lightSerde = (client: S3Client): S3Client => {
  if (lightened.has(client)) return client
  const config = client.config as Config
  editResolvedChains(client, (stack) => {
    if (stack.remove(serializerMiddlewareOption.name!)) stack.add(serialize(config), serializerMiddlewareOption)
    if (stack.remove(deserializerMiddlewareOption.name!)) stack.add(deserialize(config), deserializerMiddlewareOption)
  })
  lightened.add(client)
  return client
}

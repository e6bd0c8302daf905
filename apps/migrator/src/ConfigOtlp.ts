/**
 * OTLP metrics export, configured as any OpenTelemetry SDK is: by the standard environment variables, no flag of
 * its own. An endpoint turns it on (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` as is, or `OTEL_EXPORTER_OTLP_ENDPOINT` with
 * `/v1/metrics` appended; with only `OTEL_METRICS_EXPORTER=otlp`, the collector's default `http://localhost:4318`).
 * `OTEL_SDK_DISABLED=true` or `OTEL_METRICS_EXPORTER=none` turn it off. Read as the specification says:
 * `..._PROTOCOL` (`http/protobuf` by default, or `http/json`; `grpc` is refused: this exporter speaks OTLP/HTTP),
 * `..._HEADERS` (`key=value,...`, values percent-decoded; they may carry a token, so they stay `Redacted` and are
 * never printed), `..._COMPRESSION` (`gzip`, `none`), `..._TIMEOUT` (ms: how long the last export may take when the
 * run ends), `OTEL_METRIC_EXPORT_INTERVAL` (ms, default 60000), `OTEL_SERVICE_NAME` (default `lo-migrate`) and
 * `OTEL_RESOURCE_ATTRIBUTES` (read by Effect's exporter). The signal-specific variable wins over the general one.
 * Every bad value is a usage error naming the variable, before anything connects.
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { parseUrl, redactUrl, UsageError } from "./ConfigValues.ts"

export type OtlpProtocol = "http/protobuf" | "http/json"

export interface OtlpConfig {
  /** The metrics endpoint, the path included. */
  readonly url: URL
  readonly protocol: OtlpProtocol
  readonly headers: Redacted.Redacted<Record<string, string>>
  readonly compression: "gzip" | "none"
  readonly intervalMillis: number
  readonly timeoutMillis: number
  readonly serviceName: string
}

/** The collector's OTLP/HTTP port on this host, as the specification's default. */
export const defaultOtlpEndpoint = "http://localhost:4318"

const optionalString = (name: string) =>
  Config.String(name).pipe(
    Config.option,
    Effect.map(Option.filter((v) => v.trim() !== "")),
    Effect.map(Option.getOrUndefined),
    Effect.mapError((e) => new UsageError({ option: name, detail: e.message }))
  )

/** The signal-specific variable if set, else the general one: `[name, value]`. */
const specificOrGeneral = Effect.fnUntraced(function*(suffix: string) {
  const specific = `OTEL_EXPORTER_OTLP_METRICS_${suffix}`
  const general = `OTEL_EXPORTER_OTLP_${suffix}`
  const s = yield* optionalString(specific)
  if (s !== undefined) return [specific, s] as const
  const g = yield* optionalString(general)
  return g === undefined ? undefined : ([general, g] as const)
})

/** The endpoint of `name` (checked as every URL option is, `parseUrl`), with `/v1/metrics` appended for a base URL. */
const endpointUrl = (name: string, raw: string, appendPath: boolean): Effect.Effect<URL, UsageError> =>
  Effect.map(parseUrl(name, raw, ["http:", "https:"], redactUrl(raw)), (url) => {
    if (appendPath) url.pathname = `${url.pathname.replace(/\/$/, "")}/v1/metrics`
    return url
  })

const milliseconds = (name: string, raw: string): Effect.Effect<number, UsageError> => {
  const n = Number(raw)
  return Number.isSafeInteger(n) && n > 0 && n <= 86_400_000
    ? Effect.succeed(n)
    : Effect.fail(new UsageError({ option: name, detail: `must be a whole number of milliseconds from 1 to 86400000, got ${JSON.stringify(raw)}` }))
}

/** The setting `suffix` (specific or general variable): one of `allowed`, else a usage error; absent: `fallback`. */
const oneOf = Effect.fnUntraced(function*<A extends string>(
  suffix: string,
  allowed: ReadonlyArray<A>,
  fallback: A,
  hint: string
) {
  const setting = yield* specificOrGeneral(suffix)
  if (setting === undefined) return fallback
  const [name, value] = setting
  if (!(allowed as ReadonlyArray<string>).includes(value)) {
    return yield* new UsageError({ option: name, detail: `must be ${allowed.join(" or ")}${hint}, got ${JSON.stringify(value)}` })
  }
  return value as A
})

/** `key=value,key2=value2`, values percent-decoded. A malformed entry is named by its position, not shown. */
const parseHeaders = (name: string, raw: string): Effect.Effect<Record<string, string>, UsageError> => {
  const headers: Record<string, string> = {}
  const entries = raw.split(",").map((e) => e.trim()).filter((e) => e !== "")
  for (const [i, entry] of entries.entries()) {
    const eq = entry.indexOf("=")
    const key = eq > 0 ? entry.slice(0, eq).trim() : ""
    let value: string | undefined
    if (eq > 0) {
      const encoded = entry.slice(eq + 1).trim()
      value = /%(?![0-9A-Fa-f]{2})/.test(encoded) ? undefined : decodeURIComponent(encoded)
    }
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(key) || value === undefined) {
      return Effect.fail(
        new UsageError({
          option: name,
          detail: `entry ${i + 1} is not key=value with a valid header name and percent-encoded value (value not shown)`
        })
      )
    }
    headers[key.toLowerCase()] = value
  }
  return Effect.succeed(headers)
}

/** The OTLP metrics export the environment asks for; `undefined`: none. */
export const resolveOtlp: Effect.Effect<OtlpConfig | undefined, UsageError> = Effect.gen(function*() {
  const disabled = yield* optionalString("OTEL_SDK_DISABLED")
  if (disabled?.trim().toLowerCase() === "true") return undefined
  const exporters = yield* optionalString("OTEL_METRICS_EXPORTER")
  const listed = exporters?.split(",").map((e) => e.trim().toLowerCase()).filter((e) => e !== "") ?? []
  const unsupported = listed.filter((e) => e !== "otlp" && e !== "none")
  if (unsupported.length > 0) {
    return yield* new UsageError({
      option: "OTEL_METRICS_EXPORTER",
      detail: `only otlp or none, got ${unsupported.join(", ")} (for Prometheus, serve /metrics with --metrics-port)`
    })
  }
  if (listed.includes("none") && !listed.includes("otlp")) return undefined

  const specific = yield* optionalString("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
  const general = yield* optionalString("OTEL_EXPORTER_OTLP_ENDPOINT")
  if (specific === undefined && general === undefined && !listed.includes("otlp")) return undefined
  const url = specific !== undefined
    ? yield* endpointUrl("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", specific, false)
    : yield* endpointUrl(general === undefined ? "OTEL_METRICS_EXPORTER" : "OTEL_EXPORTER_OTLP_ENDPOINT", general ?? defaultOtlpEndpoint, true)

  const protocol = yield* oneOf<OtlpProtocol>(
    "PROTOCOL",
    ["http/protobuf", "http/json"],
    "http/protobuf",
    " (OTLP over HTTP, the collector's port 4318)"
  )
  const compression = yield* oneOf<"gzip" | "none">("COMPRESSION", ["gzip", "none"], "none", "")
  const timeout = yield* specificOrGeneral("TIMEOUT")
  const interval = yield* optionalString("OTEL_METRIC_EXPORT_INTERVAL")
  const generalHeaders = yield* optionalString("OTEL_EXPORTER_OTLP_HEADERS")
  const specificHeaders = yield* optionalString("OTEL_EXPORTER_OTLP_METRICS_HEADERS")
  const headers = {
    ...(generalHeaders === undefined ? {} : yield* parseHeaders("OTEL_EXPORTER_OTLP_HEADERS", generalHeaders)),
    ...(specificHeaders === undefined ? {} : yield* parseHeaders("OTEL_EXPORTER_OTLP_METRICS_HEADERS", specificHeaders))
  }
  return {
    url,
    protocol,
    headers: Redacted.make(headers),
    compression,
    intervalMillis: interval === undefined ? 60_000 : yield* milliseconds("OTEL_METRIC_EXPORT_INTERVAL", interval),
    timeoutMillis: timeout === undefined ? 10_000 : yield* milliseconds(timeout[0], timeout[1]),
    serviceName: (yield* optionalString("OTEL_SERVICE_NAME")) ?? "lo-migrate"
  } satisfies OtlpConfig
})

/**
 * OTLP metrics export (configured by the `OTEL_*` environment, ConfigOtlp.ts): Effect's exporter
 * (`OtlpMetrics` of `effect/observability`) sends every metric of the registry, the same `lo_migrate_*` series the
 * Prometheus endpoint shows, as cumulative sums and gauges over OTLP/HTTP (protobuf or JSON) every interval and once
 * more when the run ends. The state gauges are copied from the run's `Metrics` every second and right before that last
 * export (ScrapeGauges.ts), so each export carries the state as of its send.
 *
 * A collector that is down or refuses costs the run nothing: the exporter retries a request three times, then drops
 * that batch and pauses for 60 s; a failed export is logged as a warning (at most one a minute, `warningClient`); the
 * last export is bounded by `OTEL_EXPORTER_OTLP_TIMEOUT`.
 */
import { Metrics } from "@lo-migrate/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as HttpClient from "effect/http/HttpClient"
import * as OtlpMetrics from "effect/observability/OtlpMetrics"
import * as OtlpSerialization from "effect/observability/OtlpSerialization"
import type * as Scope from "effect/Scope"
import type { OtlpConfig } from "./ConfigOtlp.ts"
import { redactUrl } from "./ConfigValues.ts"
import { sampleGauges, setShard } from "./ScrapeGauges.ts"

/** An error code (`ECONNREFUSED`, ...) in the cause chain, never a message (a message may quote the URL). */
const errorCode = (cause: unknown): string | undefined => {
  for (let c = cause, depth = 0; c !== null && typeof c === "object" && depth < 5; depth++) {
    const code = (c as { readonly code?: unknown }).code
    if (typeof code === "string" && /^[A-Z][A-Z0-9_]*$/.test(code)) return code
    c = (c as { readonly cause?: unknown }).cause
  }
  return undefined
}

/**
 * The exporter's HTTP client: `fetch`, and a warning when an export fails (the collector answers an error status or
 * cannot be reached), at most one a minute. Effect's exporter logs its failures at debug level only, so a wrong token
 * or address would otherwise go unseen; the run goes on either way.
 */
const warningClient = (url: string): Layer.Layer<HttpClient.HttpClient> =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      let lastWarned: number | undefined
      const warn = (what: string) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (lastWarned !== undefined && now - lastWarned < 60_000) return Effect.void
          lastWarned = now
          return Effect.logWarning(
            `OTLP metrics export to ${url} failed: ${what}; the run goes on (no further warning for a minute)`
          )
        })
      return client.pipe(
        HttpClient.tap((response) =>
          response.status >= 300 ? warn(`the collector answered HTTP ${response.status}`) : Effect.void
        ),
        HttpClient.tapError((error) => {
          const code = errorCode(error.reason.cause)
          return warn(`${error.reason._tag}${code === undefined ? "" : ` (${code})`}`)
        })
      )
    })
  ).pipe(Layer.provide(FetchHttpClient.layer))

/** The exporter's layer: an HTTP client (fetch, warning on failures) and the serialization of `config.protocol`. */
export const otlpMetricsLayer = (config: OtlpConfig, serviceVersion: string) =>
  OtlpMetrics.layer({
    url: config.url.toString(),
    resource: { serviceName: config.serviceName, serviceVersion },
    headers: Redacted.value(config.headers),
    compression: config.compression,
    exportInterval: Duration.millis(config.intervalMillis),
    shutdownTimeout: Duration.millis(config.timeoutMillis),
    temporality: "cumulative"
  }).pipe(
    Layer.provide(config.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf),
    Layer.provide(warningClient(redactUrl(config.url.toString())))
  )

/**
 * Starts the export in the current scope: the exporter, then the gauge sampler, whose finalizer (one last sample) runs
 * before the exporter's last export, finalizers running in reverse.
 */
export const startOtlpExport = Effect.fnUntraced(function*(
  config: OtlpConfig,
  shard: string,
  serviceVersion: string
): Effect.fn.Return<void, never, Metrics | Scope.Scope> {
  yield* Layer.build(otlpMetricsLayer(config, serviceVersion))
  const metrics = yield* Metrics
  const sample = Effect.flatMap(metrics.snapshot, sampleGauges)
  yield* setShard(shard)
  yield* sample
  yield* Effect.addFinalizer(() => sample)
  yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced(Duration.seconds(1))))
  yield* Effect.logInfo(
    `exporting metrics over OTLP (${config.protocol}) to ${redactUrl(config.url.toString())} every ` +
      `${config.intervalMillis / 1000} s`
  )
})

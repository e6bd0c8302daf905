/**
 * OTLP metrics export (configured by the `OTEL_*` environment, ConfigOtlp.ts): Effect's exporter
 * (`OtlpMetrics` of `effect/observability`) sends every metric of the registry, the same `lo_migrate_*` series the
 * Prometheus endpoint shows, as cumulative sums and gauges over OTLP/HTTP (protobuf or JSON) every interval and once
 * more when the run ends. The state gauges are copied from the run's `Metrics` every second and right before that last
 * export (ScrapeGauges.ts), so each export carries the state as of its send.
 *
 * A collector that is down or refuses costs the run nothing: the exporter retries a request three times, then drops
 * that batch and pauses for 60 s (logged at debug level); the last export is bounded by `OTEL_EXPORTER_OTLP_TIMEOUT`.
 */
import { Metrics } from "@lo-migrate/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as OtlpMetrics from "effect/observability/OtlpMetrics"
import * as OtlpSerialization from "effect/observability/OtlpSerialization"
import type * as Scope from "effect/Scope"
import type { OtlpConfig } from "./ConfigOtlp.ts"
import { redactUrl } from "./ConfigValues.ts"
import { sampleGauges, setShard } from "./ScrapeGauges.ts"

/** The exporter's layer: an HTTP client (fetch) and the serialization of `config.protocol`. */
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
    Layer.provide(FetchHttpClient.layer)
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

/**
 * The Prometheus endpoint (`--metrics-port`, `--metrics-host`): `GET /metrics` answers with every `lo_migrate_*`
 * metric of Effect's metric registry in the Prometheus text format (`PrometheusMetrics.format` of
 * `effect/observability`), after copying the run's state gauges from a fresh `Metrics` snapshot (ScrapeGauges.ts).
 * Served by Effect's HTTP router on Node's `http` server; the layer is scoped: the socket closes with it.
 */
import { Metrics } from "@lo-migrate/core"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"
import { MetricsServerError, type MetricsServerOptions } from "./MetricsServerError.ts"
import { sampleGauges, setShard } from "./ScrapeGauges.ts"

/** The Prometheus text format's content type, version 0.0.4. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const scrapeRoute = HttpRouter.use((router) =>
  Effect.gen(function*() {
    const metrics = yield* Metrics
    yield* router.add(
      "GET",
      "/metrics",
      Effect.gen(function*() {
        yield* Effect.flatMap(metrics.snapshot, sampleGauges)
        return HttpServerResponse.text(yield* PrometheusMetrics.format(), { contentType })
      })
    )
  })
)

export class MetricsServer extends Context.Service<MetricsServer, {
  /** `http://HOST:PORT/metrics`, with the port actually bound. */
  readonly url: string
}>()("lo-migrate/MetricsServer") {
  static readonly layer = (options: MetricsServerOptions): Layer.Layer<MetricsServer, MetricsServerError, Metrics> => {
    const address = `${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`
    const http = NodeHttpServer.layer(() => createServer(), { host: options.host, port: options.port }).pipe(
      Layer.catchTag("ServeError", (e) =>
        Layer.effect(
          HttpServer.HttpServer,
          Effect.fail(
            new MetricsServerError({ address, detail: e.cause instanceof Error ? e.cause.message : String(e.cause) })
          )
        ))
    )
    const served = HttpRouter.serve(scrapeRoute, { disableLogger: true, disableListenLog: true })
    return Layer.effect(
      MetricsServer,
      Effect.gen(function*() {
        yield* setShard(options.shard)
        const url = yield* HttpServer.addressFormattedWith((at) => Effect.succeed(`${at}/metrics`))
        return MetricsServer.of({ url })
      })
    ).pipe(Layer.provide(served), Layer.provide(http))
  }
}

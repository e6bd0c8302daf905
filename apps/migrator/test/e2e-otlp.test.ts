/**
 * OTLP metrics export during real runs (the CLI as a subprocess, against the real PostgreSQL and the real Ceph RGW),
 * configured by the standard `OTEL_*` environment, into a collector of the test's own: a loopback HTTP server that
 * records every request. Checks what a collector receives (path, content type, headers, the resource, the
 * `lo_migrate_*` series with the run's final counts), that exports come during the run and not only at its end, that
 * the header's token is never printed, and that a collector that is not there costs the run nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { createServer, type IncomingHttpHeaders, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { assertInvariant, Env, runCli, seedMany, settings, setUpSchema } from "./cli.ts"

interface Received {
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

interface Collector {
  readonly url: string
  readonly received: Array<Received>
  readonly server: Server
}

/** A collector on loopback that answers `status` (200) to every request and keeps them; closed with the scope. */
const collectorAnswering = (status: number) => Effect.acquireRelease(
  Effect.callback<Collector>((resume) => {
    const received: Array<Received> = []
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        received.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) })
        res.writeHead(status, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, received, server }))
    })
  }),
  (c) => Effect.callback<void>((resume) => void c.server.close(() => resume(Effect.void)))
)
const collector = collectorAnswering(200)

interface OtlpValue {
  readonly stringValue?: string
}
interface DataPoint {
  readonly attributes?: ReadonlyArray<{ readonly key: string; readonly value: OtlpValue }>
  readonly asInt?: string | number
  readonly asDouble?: number
}
interface OtlpMetric {
  readonly name: string
  readonly sum?: { readonly dataPoints: ReadonlyArray<DataPoint>; readonly isMonotonic?: boolean }
  readonly gauge?: { readonly dataPoints: ReadonlyArray<DataPoint> }
}
interface Export {
  readonly resourceMetrics: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: OtlpValue }> }
    readonly scopeMetrics: ReadonlyArray<{ readonly metrics: ReadonlyArray<OtlpMetric> }>
  }>
}

const metricsOf = (e: Export) => e.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics))

/** The sum of the data points of `name` whose attributes include `labels` (as the Prometheus test's `value`). */
const value = (e: Export, name: string, labels: Record<string, string> = {}) =>
  metricsOf(e).filter((m) => m.name === name)
    .flatMap((m) => [...(m.sum?.dataPoints ?? []), ...(m.gauge?.dataPoints ?? [])])
    .filter((p) =>
      Object.entries(labels).every(([k, v]) => p.attributes?.some((a) => a.key === k && a.value.stringValue === v))
    )
    .reduce((n, p) => n + Number(p.asInt ?? p.asDouble ?? 0), 0)

describe("OTLP metrics export during a real run (PostgreSQL + Ceph RGW)", () => {
  it.live("http/json: exports during the run and a last one with the final counts; headers sent, never printed", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      const rows = yield* seedMany(60)
      const { env } = yield* settings
      const otlp = yield* collector
      const token = "otlp-Token-0815"
      const run = yield* runCli(["--storer-threads", "2", "--commit-chunk", "10", "--max-objects-per-second", "30", "-i", "1"], {
        ...env,
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${token},x-tenant=migrations`,
        OTEL_METRIC_EXPORT_INTERVAL: "300"
      })
      assert.strictEqual(run.code, 0, run.stderr)
      yield* assertInvariant
      for (const out of [run.stdout, run.stderr]) assert.notInclude(out, token)
      assert.include(run.stdout, `OTLP metrics:        ${otlp.url}/v1/metrics (http/json, every 0.3 s)`)
      assert.include(run.stderr, `exporting metrics over OTLP (http/json) to ${otlp.url}/v1/metrics every 0.3 s`)

      const received = otlp.received
      assert.isAtLeast(received.length, 3, "exports every 0.3 s during a 2-s run, and the last one")
      for (const r of received) {
        assert.strictEqual(r.path, "/v1/metrics")
        assert.match(String(r.headers["content-type"]), /^application\/json/)
        assert.strictEqual(r.headers["authorization"], `Bearer ${token}`)
        assert.strictEqual(r.headers["x-tenant"], "migrations")
      }
      const exports = received.map((r) => JSON.parse(r.body.toString("utf8")) as Export)
      const commits = exports.map((e) => value(e, "lo_migrate_objects_total", { stage: "commit" }))
      assert.isTrue(commits.some((n) => n > 0 && n < rows.length), `an export in the middle of the run: ${commits.join(",")}`)
      for (let i = 1; i < commits.length; i++) assert.isAtLeast(commits[i]!, commits[i - 1]!, "cumulative")

      const last = exports.at(-1)!
      const resource = Object.fromEntries(
        last.resourceMetrics[0]!.resource.attributes.map((a) => [a.key, a.value.stringValue])
      )
      assert.strictEqual(resource["service.name"], "lo-migrate")
      assert.strictEqual(resource["service.version"], "0.1.0")
      assert.strictEqual(value(last, "lo_migrate_objects_total", { stage: "commit" }), rows.length)
      assert.strictEqual(
        value(last, "lo_migrate_bytes_total", { stage: "commit" }),
        rows.reduce((n, r) => n + r.digests.size, 0)
      )
      assert.strictEqual(value(last, "lo_migrate_objects_total", { stage: "source" }), rows.length)
      const objectsTotal = metricsOf(last).find((m) => m.name === "lo_migrate_objects_total")!
      assert.isTrue(objectsTotal.sum?.isMonotonic === true, JSON.stringify(objectsTotal).slice(0, 600))
      // the state gauges, sampled from the run: the shard, a queue's size, the throttle, nothing left in flight
      assert.strictEqual(value(last, "lo_migrate_shard_info", { shard: "0/1" }), 1)
      assert.strictEqual(value(last, "lo_migrate_queue_capacity_objects", { queue: "store" }), 1024)
      assert.strictEqual(value(last, "lo_migrate_throttle_limit_objects_per_second"), 30)
      assert.strictEqual(value(last, "lo_migrate_in_flight_bytes"), 0)
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("http/protobuf by default, to OTEL_EXPORTER_OTLP_METRICS_ENDPOINT as given, with OTEL_SERVICE_NAME", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      yield* seedMany(10)
      const { env } = yield* settings
      const otlp = yield* collector
      const run = yield* runCli([], {
        ...env,
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${otlp.url}/custom/path`,
        OTEL_SERVICE_NAME: "lo-migrate-shard-7"
      })
      assert.strictEqual(run.code, 0, run.stderr)
      yield* assertInvariant
      // the interval is 60 s by default: the one export is the last, when the run ends
      assert.strictEqual(otlp.received.length, 1)
      const [r] = otlp.received
      assert.strictEqual(r!.path, "/custom/path")
      assert.strictEqual(r!.headers["content-type"], "application/x-protobuf")
      // protobuf keeps strings as they are: a metric's name, a label value and the service name are in the body
      for (const s of ["lo_migrate_objects_total", "commit", "lo-migrate-shard-7"]) {
        assert.isTrue(r!.body.includes(Buffer.from(s)), `${s} in the protobuf body`)
      }
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)

  it.live("a collector that is not there: the run migrates everything, exit 0, not held up by the export", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      yield* seedMany(20)
      const { env } = yield* settings
      // a port nobody listens on any more: bound, then closed
      const { url } = yield* Effect.scoped(collector)
      const run = yield* runCli(["-i", "1"], {
        ...env,
        OTEL_EXPORTER_OTLP_ENDPOINT: url,
        OTEL_METRIC_EXPORT_INTERVAL: "200",
        OTEL_EXPORTER_OTLP_TIMEOUT: "2000"
      })
      assert.strictEqual(run.code, 0, run.stderr)
      yield* assertInvariant
      // said once, as a warning with what failed, not every attempt
      const warning = `OTLP metrics export to ${url}/v1/metrics failed: TransportError (ECONNREFUSED)`
      assert.strictEqual(run.stderr.split(warning).length - 1, 1, run.stderr)
    }).pipe(Effect.provide(Env)), 180_000)

  it.live("a collector that refuses the export (HTTP 401, say a wrong token): a warning naming the status, exit 0", () =>
    Effect.gen(function*() {
      yield* setUpSchema
      yield* seedMany(10)
      const { env } = yield* settings
      const otlp = yield* collectorAnswering(401)
      const run = yield* runCli(["-i", "1"], {
        ...env,
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20wrong-Token-42",
        OTEL_EXPORTER_OTLP_TIMEOUT: "2000"
      })
      assert.strictEqual(run.code, 0, run.stderr)
      yield* assertInvariant
      assert.isAtLeast(otlp.received.length, 1)
      assert.include(run.stderr, `OTLP metrics export to ${otlp.url}/v1/metrics failed: the collector answered HTTP 401`)
      assert.notInclude(run.stderr + run.stdout, "wrong-Token-42")
    }).pipe(Effect.scoped, Effect.provide(Env)), 180_000)
})

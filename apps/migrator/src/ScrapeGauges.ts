/**
 * The gauges that describe the run's state rather than count events: queue fill, the adaptive concurrency of a stage,
 * operations waiting for a dependency, the rows pending when the run started, the process's shard. `Metrics` keeps
 * these as readings taken on demand (its snapshot); `sampleGauges` copies one snapshot into Effect's metric registry,
 * so an exporter (the Prometheus endpoint, MetricsServer.ts) shows them as of the scrape.
 *
 * The counters (`lo_migrate_objects_total`, `..._bytes_total`, failures, retries) are updated as events happen by
 * `Metrics` itself (libs/core/src/Metrics.ts); `lo_migrate_in_flight_bytes` by the pipeline (InFlightBytes.ts).
 */
import { type MetricsSnapshot } from "@lo-migrate/core"
import { concurrencyLimitGauge } from "@lo-migrate/pipeline"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"

const queueUsed = Metric.gauge("lo_migrate_queue_used_objects", { description: "elements waiting in a queue" })
const queueCapacity = Metric.gauge("lo_migrate_queue_capacity_objects", { description: "capacity of a queue" })
const concurrencyMax = Metric.gauge("lo_migrate_concurrency_max", {
  description: "configured maximum of operations at once (e.g. --storer-threads)"
})
const concurrencyInFlight = Metric.gauge("lo_migrate_concurrency_in_flight", { description: "operations running" })
const waitingOperations = Metric.gauge("lo_migrate_waiting_operations", {
  description: "operations being retried because a dependency is unavailable"
})
const pendingAtStart = Metric.gauge("lo_migrate_pending_at_start_objects", {
  description: "rows whose sha2 was NULL when the run started (the whole table, not only this shard)"
})
const pendingAtStartBytes = Metric.gauge("lo_migrate_pending_at_start_bytes", {
  description: "bytes of the rows whose sha2 was NULL when the run started"
})
const startTime = Metric.gauge("lo_migrate_start_time_seconds", { description: "when the run started, Unix time" })
const shardInfo = Metric.gauge("lo_migrate_shard_info", { description: "the shard this process migrates (always 1)" })

const dependencies = ["PostgreSQL", "S3", "temp dir"] as const

/** `read queue` -> `read`: the label value names the stage the queue feeds. */
export const queueLabel = (name: string): string => name.replace(/ queue$/, "")

/** Sets the shard info series (`lo_migrate_shard_info{shard="I/N"} 1`). */
export const setShard = (shard: string): Effect.Effect<void> =>
  Metric.update(Metric.withAttributes(shardInfo, { shard }), 1)

/** Copies the state gauges of one `Metrics` snapshot into the metric registry. */
export const sampleGauges = Effect.fn("ScrapeGauges.sampleGauges")(function*(
  snapshot: MetricsSnapshot
): Effect.fn.Return<void> {
  yield* Metric.update(startTime, snapshot.startedAt / 1000)
  for (const q of snapshot.queues) {
    const queue = queueLabel(q.name)
    yield* Metric.update(Metric.withAttributes(queueUsed, { queue }), q.used)
    yield* Metric.update(Metric.withAttributes(queueCapacity, { queue }), q.capacity)
  }
  for (const c of snapshot.concurrency) {
    const stage = c.name
    yield* Metric.update(Metric.withAttributes(concurrencyLimitGauge, { stage }), c.limit)
    yield* Metric.update(Metric.withAttributes(concurrencyMax, { stage }), c.max)
    yield* Metric.update(Metric.withAttributes(concurrencyInFlight, { stage }), c.inFlight)
  }
  for (const dependency of dependencies) {
    const u = snapshot.unavailable.find((w) => w.dependency === dependency)
    yield* Metric.update(Metric.withAttributes(waitingOperations, { dependency }), u?.operations ?? 0)
  }
  if (snapshot.counts !== undefined) {
    yield* Metric.update(pendingAtStart, snapshot.counts.remaining)
    yield* Metric.update(pendingAtStartBytes, snapshot.counts.remainingBytes)
  }
})

/**
 * The `Metrics` service: counters per stage (objects, bytes), queue fill, adaptive concurrency, failures by reason,
 * retries and dependencies being retried, as one snapshot the monitor and the run's summary read; the counters also go
 * to Effect's metric registry as they change (the Prometheus endpoint exports them).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import type { RowCounts } from "./Domain.ts"
import type { Dependency, RowFailed } from "./Errors.ts"

/** The stages of the pipeline, in order. `source` counts rows emitted by `LoSource`. */
export const Stages = ["source", "read", "store", "commit"] as const
export type Stage = (typeof Stages)[number]

export interface StageCounters {
  readonly objects: number
  readonly bytes: number
}

export interface QueueFill {
  readonly name: string
  readonly used: number
  readonly capacity: number
}

/** A stage whose concurrency adapts (the store stage under throttling): its limit now, of at most `max`. */
export interface ConcurrencyReading {
  readonly name: string
  /** Operations allowed at once right now. */
  readonly limit: number
  /** The configured maximum (e.g. --storer-threads). */
  readonly max: number
  /** Operations running right now. */
  readonly inFlight: number
  /** Throttling responses that lowered the limit so far. */
  readonly decreases: number
}

/** One operation that is being retried: its dependency has failed it since `since`, it gives up at `giveUpAt`. */
export interface Waiting {
  /** Identifies the operation (one retry series); the same token replaces its earlier record. */
  readonly token: object
  readonly dependency: Dependency
  /** Epoch millis of the operation's first failure. */
  readonly since: number
  /** Epoch millis of this failure. */
  readonly at: number
  /** Epoch millis when its retry budget runs out. */
  readonly giveUpAt: number
  /** The last error's message. */
  readonly detail: string
}

/** A dependency some operations are waiting for: since the earliest first failure, until the earliest give-up. */
export interface Unavailable {
  readonly dependency: Dependency
  readonly since: number
  readonly giveUpAt: number
  /** Operations currently being retried for it. */
  readonly operations: number
  /** The most recent error's message. */
  readonly detail: string
}

/** A consistent reading of every counter, taken at `at` (epoch millis from `Clock`). */
export interface MetricsSnapshot {
  readonly startedAt: number
  readonly at: number
  readonly counts: RowCounts | undefined
  readonly stages: { readonly [S in Stage]: StageCounters }
  readonly failed: number
  readonly failuresByReason: Readonly<Record<string, number>>
  /** Rows the application deleted while they were in flight (not failures). */
  readonly vanished: number
  /** Objects found already in the store (uploaded by an earlier, interrupted run). */
  readonly alreadyPresent: number
  readonly retries: number
  /** Dependencies operations are being retried for right now (none when everything answers). */
  readonly unavailable: ReadonlyArray<Unavailable>
  readonly queues: ReadonlyArray<QueueFill>
  /** Stages with an adaptive concurrency limit (none registered: empty). */
  readonly concurrency: ReadonlyArray<ConcurrencyReading>
}

// Counters are `incremental` (they only go up): OTLP exports them as monotonic sums, which a backend may rate().
const objectsTotal = Metric.counter("lo_migrate_objects_total", { description: "objects through a stage", incremental: true })
const bytesTotal = Metric.counter("lo_migrate_bytes_total", { description: "bytes through a stage", incremental: true })
const failuresTotal = Metric.counter("lo_migrate_row_failures_total", {
  description: "rows reported and skipped",
  incremental: true
})
const vanishedTotal = Metric.counter("lo_migrate_rows_vanished_total", {
  description: "rows deleted by the application while they were migrated",
  incremental: true
})
const alreadyPresentTotal = Metric.counter("lo_migrate_objects_already_present_total", {
  description: "puts that found the object already in the store (uploaded by an earlier run or another process)",
  incremental: true
})
const retriesTotal = Metric.counter("lo_migrate_retries_total", {
  description: "retried infrastructure operations",
  incremental: true
})

// The per-stage series, built once: `Metric.withAttributes` is not free and `processed` runs several times per row.
const stageSeries = Object.fromEntries(Stages.map((stage) => [stage, {
  objects: Metric.withAttributes(objectsTotal, { stage }),
  bytes: Metric.withAttributes(bytesTotal, { stage })
}])) as Record<Stage, { readonly objects: typeof objectsTotal; readonly bytes: typeof bytesTotal }>

/** Groups the waiting operations by dependency, in a fixed order. */
const summarizeWaiting = (all: Iterable<Waiting>): ReadonlyArray<Unavailable> => {
  const by = new Map<Dependency, { since: number; giveUpAt: number; operations: number; detail: string; last: number }>()
  for (const w of all) {
    const u = by.get(w.dependency)
    if (u === undefined) {
      by.set(w.dependency, { since: w.since, giveUpAt: w.giveUpAt, operations: 1, detail: w.detail, last: w.at })
    } else {
      u.since = Math.min(u.since, w.since)
      u.giveUpAt = Math.min(u.giveUpAt, w.giveUpAt)
      u.operations += 1
      if (w.at >= u.last) {
        u.last = w.at
        u.detail = w.detail
      }
    }
  }
  const order: ReadonlyArray<Dependency> = ["PostgreSQL", "S3", "temp dir"]
  return order.flatMap((dependency) => {
    const u = by.get(dependency)
    return u === undefined
      ? []
      : [{ dependency, since: u.since, giveUpAt: u.giveUpAt, operations: u.operations, detail: u.detail }]
  })
}

/**
 * Progress counters of one run. The live layer keeps them in process (for the monitor) and mirrors them into Effect's
 * `Metric` registry (`lo_migrate_*`), so an exporter added by the host application sees them too.
 */
export class Metrics extends Context.Service<Metrics, {
  readonly setCounts: (counts: RowCounts) => Effect.Effect<void>
  readonly processed: (stage: Stage, objects: number, bytes: number) => Effect.Effect<void>
  readonly failed: (failure: RowFailed) => Effect.Effect<void>
  /** A row that vanished (deleted during the run); not a failure. */
  readonly vanished: Effect.Effect<void>
  readonly alreadyPresent: Effect.Effect<void>
  /**
   * A retry is about to happen (count it). With `waiting`, also records that the operation waits for its dependency
   * until `recovered(waiting.token)`.
   */
  readonly retried: (operation: string, waiting?: Waiting) => Effect.Effect<void>
  /** The operation behind `token` ended (succeeded, or gave up): it no longer waits. */
  readonly recovered: (token: object) => Effect.Effect<void>
  /** Registers a queue whose fill the snapshot samples; when the scope closes its last fill stays in the snapshot. */
  readonly registerQueue: (
    name: string,
    capacity: number,
    size: Effect.Effect<number>
  ) => Effect.Effect<void, never, Scope.Scope>
  /** Registers an adaptive concurrency limit the snapshot samples; when the scope closes its last reading stays. */
  readonly registerConcurrency: (name: string, read: Effect.Effect<ConcurrencyReading>) => Effect.Effect<void, never, Scope.Scope>
  readonly snapshot: Effect.Effect<MetricsSnapshot>
}>()("lo-migrate/Metrics") {
  static readonly make = Effect.gen(function*() {
    const startedAt = yield* Clock.currentTimeMillis
    let counts: RowCounts | undefined
    const stages: Record<Stage, { objects: number; bytes: number }> = {
      source: { objects: 0, bytes: 0 },
      read: { objects: 0, bytes: 0 },
      store: { objects: 0, bytes: 0 },
      commit: { objects: 0, bytes: 0 }
    }
    let failed = 0
    let vanished = 0
    const failuresByReason: Record<string, number> = {}
    let alreadyPresent = 0
    let retries = 0
    const waiting = new Map<object, Waiting>()
    const queues = new Map<string, { readonly capacity: number; readonly size: Effect.Effect<number> }>()
    const limits = new Map<string, Effect.Effect<ConcurrencyReading>>()

    return Metrics.of({
      setCounts: (c) => Effect.sync(() => void (counts = c)),
      processed: (stage, objects, bytes) =>
        Effect.suspend(() => {
          stages[stage].objects += objects
          stages[stage].bytes += bytes
          const series = stageSeries[stage]
          return Effect.andThen(Metric.update(series.objects, objects), Metric.update(series.bytes, bytes))
        }),
      failed: (failure) =>
        Effect.suspend(() => {
          failed += 1
          const reason = failure.reason._tag
          failuresByReason[reason] = (failuresByReason[reason] ?? 0) + 1
          return Metric.update(Metric.withAttributes(failuresTotal, { reason }), 1)
        }),
      vanished: Effect.suspend(() => {
        vanished += 1
        return Metric.update(vanishedTotal, 1)
      }),
      alreadyPresent: Effect.suspend(() => {
        alreadyPresent += 1
        return Metric.update(alreadyPresentTotal, 1)
      }),
      retried: (operation, wait) =>
        Effect.suspend(() => {
          retries += 1
          if (wait !== undefined) waiting.set(wait.token, wait)
          return Metric.update(Metric.withAttributes(retriesTotal, { operation }), 1)
        }),
      recovered: (token) => Effect.sync(() => void waiting.delete(token)),
      // When the queue's scope closes, the snapshot keeps showing its last fill (the final status block is rendered
      // after the pipeline has released its queues).
      registerQueue: (name, capacity, size) =>
        Effect.acquireRelease(
          Effect.sync(() => void queues.set(name, { capacity, size })),
          () =>
            Effect.flatMap(size, (last) =>
              Effect.sync(() => {
                const entry = queues.get(name)
                if (entry?.size === size) queues.set(name, { capacity, size: Effect.succeed(last) })
              }))
        ),
      registerConcurrency: (name, read) =>
        Effect.acquireRelease(
          Effect.sync(() => void limits.set(name, read)),
          () =>
            Effect.flatMap(read, (last) =>
              Effect.sync(() => {
                if (limits.get(name) === read) limits.set(name, Effect.succeed(last))
              }))
        ),
      snapshot: Effect.gen(function*() {
        const at = yield* Clock.currentTimeMillis
        const fills: Array<QueueFill> = []
        for (const [name, q] of queues) {
          fills.push({ name, capacity: q.capacity, used: yield* q.size })
        }
        return {
          startedAt,
          at,
          counts,
          stages: {
            source: { ...stages.source },
            read: { ...stages.read },
            store: { ...stages.store },
            commit: { ...stages.commit }
          },
          failed,
          failuresByReason: { ...failuresByReason },
          vanished,
          alreadyPresent,
          retries,
          unavailable: summarizeWaiting(waiting.values()),
          queues: fills,
          concurrency: yield* Effect.forEach([...limits.values()], (read) => read)
        }
      })
    })
  })

  static readonly layer = Layer.effect(Metrics, Metrics.make)
}

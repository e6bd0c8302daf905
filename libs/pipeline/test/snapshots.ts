/** Two consecutive monitor snapshots (10 s apart, 100 s into a run), shared by the status renderers' tests. */
import type { MetricsSnapshot } from "@lo-migrate/core"

export const MiB = 1024 * 1024
export const t0 = Date.UTC(2026, 10, 22, 1, 0, 0)

export const current: MetricsSnapshot = {
  startedAt: t0,
  at: t0 + 100_000,
  counts: { total: 12000, remaining: 10000, remainingBytes: 500 * MiB, largest: 20 * MiB },
  stages: {
    source: { objects: 3000, bytes: 150 * MiB },
    read: { objects: 2600, bytes: 130 * MiB },
    store: { objects: 2550, bytes: 128 * MiB },
    commit: { objects: 2500, bytes: 125 * MiB }
  },
  failed: 3,
  failuresByReason: { SizeMismatch: 2, MalformedHash: 1 },
  vanished: 4,
  alreadyPresent: 7,
  retries: 4,
  unavailable: [],
  concurrency: [{ name: "store", limit: 8, max: 32, inFlight: 8, decreases: 2 }],
  queues: [
    { name: "read queue", used: 400, capacity: 8192 },
    { name: "store queue", used: 50, capacity: 1024 },
    { name: "commit queue", used: 0, capacity: 8192 }
  ]
}

export const previous: MetricsSnapshot = {
  ...current,
  at: t0 + 90_000,
  stages: {
    source: { objects: 2700, bytes: 135 * MiB },
    read: { objects: 2400, bytes: 120 * MiB },
    store: { objects: 2300, bytes: 115 * MiB },
    commit: { objects: 2250, bytes: 112.5 * MiB }
  },
  queues: [
    { name: "read queue", used: 300, capacity: 8192 },
    { name: "store queue", used: 60, capacity: 1024 },
    { name: "commit queue", used: 0, capacity: 8192 }
  ]
}

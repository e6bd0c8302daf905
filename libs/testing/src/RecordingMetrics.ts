/**
 * Core's live `Metrics` plus a record of what a run did to it: queue fill peaks, every failure, retry and processed
 * call.
 */
import { Metrics, type RowFailed, type Stage } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export interface QueueRecord {
  readonly name: string
  readonly capacity: number
  /** The largest fill seen by any sample. */
  maxUsed: number
  samples: number
  size: Effect.Effect<number> | undefined
}

/** What the recording `Metrics` saw, beyond the live counters. */
export class MetricsRecording {
  readonly queues = new Map<string, QueueRecord>()
  readonly failures: Array<RowFailed> = []
  readonly processedCalls: Array<{ readonly stage: Stage; readonly objects: number; readonly bytes: number }> = []
  readonly retries: Array<string> = []
  alreadyPresent = 0

  /** Samples the fill of every registered queue (also done at every `processed` call). */
  readonly sample: Effect.Effect<void> = Effect.suspend(() =>
    Effect.forEach([...this.queues.values()], (q) =>
      q.size === undefined ? Effect.void : Effect.map(q.size, (used) => {
        q.samples++
        q.maxUsed = Math.max(q.maxUsed, used)
      }), { discard: true })
  )
}

/** Core's live `Metrics` plus a `MetricsRecording` (queue fill peaks, every failure, retry and processed call). */
export const recordingMetrics = (recording: MetricsRecording): Layer.Layer<Metrics> =>
  Layer.effect(
    Metrics,
    Effect.map(Metrics.make, (base) =>
      Metrics.of({
        ...base,
        processed: (stage, objects, bytes) =>
          Effect.suspend(() => {
            recording.processedCalls.push({ stage, objects, bytes })
            return base.processed(stage, objects, bytes)
          }).pipe(Effect.andThen(recording.sample)),
        failed: (failure) =>
          Effect.suspend(() => {
            recording.failures.push(failure)
            return base.failed(failure)
          }),
        alreadyPresent: Effect.suspend(() => {
          recording.alreadyPresent++
          return base.alreadyPresent
        }),
        retried: (operation, waiting) =>
          Effect.suspend(() => {
            recording.retries.push(operation)
            return base.retried(operation, waiting)
          }),
        registerQueue: (name, capacity, size) =>
          base.registerQueue(name, capacity, size).pipe(
            Effect.andThen(Effect.acquireRelease(
              Effect.sync(() => {
                const previous = recording.queues.get(name)
                recording.queues.set(name, {
                  name,
                  capacity,
                  maxUsed: previous?.maxUsed ?? 0,
                  samples: previous?.samples ?? 0,
                  size
                })
              }),
              () =>
                Effect.sync(() => {
                  const q = recording.queues.get(name)
                  if (q !== undefined) q.size = undefined
                })
            ))
          )
      }))
  )

/**
 * The bytes of objects read and not yet released (uploaded, failed or dropped), in memory and temp files alike, as the
 * Prometheus gauge `lo_migrate_in_flight_bytes`. The pipeline adds an object's size when it takes ownership of it and
 * subtracts it when the object is released, so the gauge returns to 0 when a run ends.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"

export const inFlightBytesGauge = Metric.gauge("lo_migrate_in_flight_bytes", {
  description: "bytes of objects read and not yet released (uploaded or dropped), memory and temp files alike"
})

/** Adds `bytes` (negative: subtracts) to the in-flight gauge. */
export const trackInFlight = (bytes: number): Effect.Effect<void> =>
  bytes === 0 ? Effect.void : Metric.modify(inFlightBytesGauge, bytes)

/**
 * A first-come-first-served budget of bytes for objects in flight (read and not yet uploaded).
 *
 * Effect's `Semaphore` lets a small request overtake a large one, which could starve a large object forever, and its
 * `take` leaves no handle to give the permits back from another fiber. Here a reservation is an object created before
 * waiting: whoever ends up owning it (the reader on success, `cancel` on failure or interruption) gives the bytes
 * back, so no interleaving loses or leaks a byte. Requests are granted strictly in order; one larger than the whole
 * budget must be capped by the caller.
 */
import * as Effect from "effect/Effect"

export interface Reservation {
  readonly bytes: number
  granted: boolean
  wake: (() => void) | undefined
}

export class ByteBudget {
  readonly total: number
  private available: number
  private readonly waiting: Array<Reservation> = []

  constructor(total: number) {
    this.total = total
    this.available = total
  }

  /** Bytes not reserved right now. */
  get free(): number {
    return this.available
  }

  /** Queues a reservation (granted at once if nothing waits before it and the bytes are free). */
  reserve(bytes: number): Reservation {
    const r: Reservation = { bytes: Math.min(Math.max(0, bytes), this.total), granted: false, wake: undefined }
    this.waiting.push(r)
    this.grant()
    return r
  }

  /** Waits until the reservation is granted. Interruptible; on interruption call `cancel`. */
  await(r: Reservation): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (r.granted) {
        resume(Effect.void)
      } else {
        r.wake = () => resume(Effect.void)
      }
    })
  }

  /** Withdraws a reservation: gives its bytes back if it was granted, or leaves the line if not. */
  cancel(r: Reservation): void {
    if (r.granted) {
      r.granted = false
      this.give(r.bytes)
    } else {
      const i = this.waiting.indexOf(r)
      if (i >= 0) this.waiting.splice(i, 1)
      r.wake = undefined
      this.grant()
    }
  }

  /**
   * Takes bytes that are already in use, without waiting: what a read turned out to hold beyond its reservation. The
   * budget may go below zero; then nothing more is granted until enough is given back.
   */
  overdraw(bytes: number): void {
    if (bytes > 0) this.available -= bytes
  }

  /** Gives bytes back (part of a granted reservation). */
  give(bytes: number): void {
    if (bytes <= 0) return
    this.available += bytes
    this.grant()
  }

  private grant(): void {
    while (this.waiting.length > 0 && this.waiting[0]!.bytes <= this.available) {
      const r = this.waiting.shift()!
      this.available -= r.bytes
      r.granted = true
      const wake = r.wake
      r.wake = undefined
      wake?.()
    }
  }
}

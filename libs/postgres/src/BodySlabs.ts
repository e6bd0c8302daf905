/**
 * Reusable memory for the reader's small in-memory bodies: each body is copied out of the driver's receive buffer into
 * a slab of this pool and its space is given back when the object is released, so the memory that bodies wait in
 * between read and upload is allocated once and reused.
 *
 * Why: sql-pg decodes a `bytea` as a view into its receive buffer and allocates a new receive buffer at every refill.
 * Bodies kept as views pin those buffers until they are uploaded, long enough for V8 to promote them to the old
 * generation, where only a major GC frees them; V8 starts one after every 64 MiB of new `ArrayBuffer` memory. On the
 * bench's default mix that was 26-33 major GCs per run and up to ~107 MiB of `ArrayBuffer`s at the peak RSS
 * (`tools/bench/README.md`, "Issue 16, session 10"). A copy leaves the receive buffers to die young (a scavenge frees
 * them) and the slabs are never freed while in use.
 *
 * Safety: a slab's bytes are overwritten only where no live body lies: space is taken from the end of the current
 * slab, and a slab is reused (from its start) only once every body copied into it was released. A body is released
 * once, after its upload ended (`InFlight.release`); releasing twice is a no-op.
 */

/** One copied body: the view to upload, and how to give its space back (idempotent). */
export interface SlabCopy {
  readonly bytes: Uint8Array
  readonly release: () => void
}

export interface BodySlabsOptions {
  /** Bytes per slab. */
  readonly slabSize: number
  /** Bodies up to this many bytes are copied; bigger ones are kept where they are (`copy` answers `undefined`). */
  readonly copyMax: number
  /** Released slabs kept for reuse; more are left to the GC, so a burst does not hold its memory for the rest of the run. */
  readonly keepFree: number
}

/**
 * Slabs sized to the in-memory budget the pipeline charges for them (`--max-in-memory`, 32 MiB by default): 1/64 of
 * it, rounded down to a power of two within 64 KiB..1 MiB (512 KiB by default), bodies up to half a slab copied (a
 * slab's unused tail is less than half of it), as many released slabs kept as the budget holds.
 *
 * The pipeline charges the budget for each distinct buffer a live body lies in, so a slab counts whole while any body
 * in it waits for its upload: a slab small against the budget keeps a few stalled uploads from holding the budget
 * (the driver's receive buffers it replaces were 64-512 KiB). Kept slabs: with 8 kept, a run of the default mix
 * allocated 112 slabs of 1 MiB, with 48 kept 33.
 */
export const bodySlabsOptions = (budgetBytes: number = 32 * 1024 * 1024): BodySlabsOptions => {
  let slabSize = 64 * 1024
  while (slabSize < 1024 * 1024 && slabSize * 2 * 64 <= budgetBytes) slabSize *= 2
  return { slabSize, copyMax: slabSize / 2, keepFree: Math.max(1, Math.ceil(budgetBytes / slabSize)) }
}

class Slab {
  readonly bytes: Uint8Array
  /** Where the next body goes. */
  offset = 0
  /** Bodies copied here and not yet released. */
  live = 0
  constructor(size: number) {
    this.bytes = new Uint8Array(size)
  }
}

/** A pool of slabs; synchronous and not shared between threads (one JavaScript thread uses it). */
export class BodySlabs {
  private current: Slab | undefined
  private readonly free: Array<Slab> = []
  /** Slabs allocated so far (for the tests and diagnostics). */
  allocated = 0

  readonly options: BodySlabsOptions

  constructor(options: BodySlabsOptions = bodySlabsOptions()) {
    this.options = options
    if (!(options.copyMax > 0 && options.copyMax <= options.slabSize)) {
      throw new RangeError(`BodySlabs: copyMax ${options.copyMax} must be in 1..slabSize (${options.slabSize})`)
    }
  }

  /** A copy of `source` in slab memory, or `undefined` when it is bigger than `copyMax` (keep the source then). */
  copy(source: Uint8Array): SlabCopy | undefined {
    const length = source.byteLength
    if (length > this.options.copyMax) return undefined
    let slab = this.current
    if (slab === undefined || slab.offset + length > slab.bytes.byteLength) slab = this.nextSlab()
    const start = slab.offset
    slab.bytes.set(source, start)
    slab.offset = start + length
    slab.live++
    const bytes = slab.bytes.subarray(start, start + length)
    let released = false
    return {
      bytes,
      release: () => {
        if (released) return
        released = true
        this.releaseIn(slab)
      }
    }
  }

  /** Slabs waiting for reuse. */
  get freeSlabs(): number {
    return this.free.length
  }

  /** The current slab is full: a released one, or a new one, becomes current; the full one is reused once empty. */
  private nextSlab(): Slab {
    const full = this.current
    if (full !== undefined && full.live === 0) {
      full.offset = 0
      return full
    }
    let slab = this.free.pop()
    if (slab === undefined) {
      slab = new Slab(this.options.slabSize)
      this.allocated++
    }
    slab.offset = 0
    this.current = slab
    return slab
  }

  private releaseIn(slab: Slab): void {
    slab.live--
    if (slab.live > 0) return
    if (slab === this.current) {
      slab.offset = 0 // nothing lives in it any more: fill it again from the start
    } else if (this.free.length < this.options.keepFree) {
      this.free.push(slab)
    }
  }
}

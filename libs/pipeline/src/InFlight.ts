/**
 * The objects of a run that are read and not yet released, and what they hold: their share of the byte budgets
 * (`maxInFlightBytes`, `maxInMemoryBytes`, each optional) and, for a spill that found the disk full, a way to wait
 * until the spilled objects in flight are released.
 *
 * A read reserves its rows' bytes before it starts (`reserve`), keeps for each object it produced its row's share
 * (`adopt`), and gives the rest back at once; `release` frees an object's body and hands its bytes to the next read.
 * The scope that made an `InFlight` releases whatever is still in it when it closes (failure, interruption).
 *
 * `maxInMemoryBytes` is charged for the memory the in-memory bodies hold, not for their own bytes: a body may be a
 * view into a bigger buffer (the PostgreSQL reader copies small bodies into slabs and keeps bigger ones as views into
 * the driver's receive buffers), and a view keeps its whole `ArrayBuffer` alive. So the budget counts each distinct
 * backing buffer of the live in-memory bodies once: the first body adopted in a buffer charges the buffer's size, the
 * last one released gives it back. A read still reserves its rows' claimed bytes before it starts (the buffers are
 * unknown until it is done); at `adopt` what its bodies newly pin replaces that reservation, the rest goes back, and
 * what pins more than it reserved is taken anyway (`ByteBudget.overdraw`), so later reads wait until enough is
 * released. Bound: see the README.
 */
import type { LoObject, SourceRow } from "@lo-migrate/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import { ByteBudget, type Reservation } from "./ByteBudget.ts"
import type { ValidPipelineConfig } from "./Config.ts"
import { trackInFlight } from "./InFlightBytes.ts"

/** Bytes as the row claims them; a nonsensical size (the reader will report it) counts as 0. */
export const claimedBytes = (row: SourceRow): number => (Number.isSafeInteger(row.size) && row.size > 0 ? row.size : 0)

/** What a read unit costs: the bytes its rows claim (what the throttle admits) and its charge to each byte budget. */
export interface UnitBytes {
  readonly claimed: number
  /** In the order of `InFlight`'s budgets (what `reserve` takes). */
  readonly charges: ReadonlyArray<number>
}

/** A read unit being built: see `InFlight.unitFrom`. */
export interface UnitBuilder {
  readonly fits: (row: SourceRow) => boolean
  readonly bytes: () => UnitBytes
}

/** A byte budget and what a row costs of it (what a read reserves). */
interface Budget {
  readonly budget: ByteBudget
  readonly charge: (row: SourceRow) => number
  /** Charged at `adopt` for the backing buffers of the in-memory bodies instead of each row's share. */
  readonly buffers: boolean
}

const budgetsOf = (cfg: ValidPipelineConfig): ReadonlyArray<Budget> => {
  const budgets: Array<Budget> = []
  if (cfg.maxInFlightBytes !== undefined) {
    budgets.push({ budget: new ByteBudget(cfg.maxInFlightBytes), charge: claimedBytes, buffers: false })
  }
  if (cfg.maxInMemoryBytes !== undefined) {
    const objectMax = cfg.inMemoryObjectMax ?? Number.MAX_SAFE_INTEGER
    budgets.push({
      budget: new ByteBudget(cfg.maxInMemoryBytes),
      charge: (row) => {
        const bytes = claimedBytes(row)
        return bytes <= objectMax ? bytes : 0
      },
      buffers: true
    })
  }
  return budgets
}

export class InFlight {
  private readonly live = new Set<LoObject>()
  /** What each live object holds of each budget, given back when it is released. */
  private readonly held = new Map<LoObject, ReadonlyArray<number>>()
  private readonly spillReleased = new Map<LoObject, Deferred.Deferred<void>>()
  /** Live in-memory bodies per backing buffer, kept only for a budget charged by buffers. */
  private readonly pinned = new Map<ArrayBufferLike, number>()

  private readonly budgets: ReadonlyArray<Budget>
  /** The budget charged by backing buffers (`maxInMemoryBytes`), if any. */
  private readonly buffersBudget: ByteBudget | undefined

  private constructor(budgets: ReadonlyArray<Budget>) {
    this.budgets = budgets
    this.buffersBudget = budgets.find((b) => b.buffers)?.budget
  }

  /** Counts a live body in its backing buffer; the buffer's size if it is the first one there, else 0. */
  private pin(o: LoObject): number {
    if (o.body._tag !== "InMemory") return 0
    const buffer = o.body.bytes.buffer
    const n = this.pinned.get(buffer) ?? 0
    this.pinned.set(buffer, n + 1)
    return n === 0 ? buffer.byteLength : 0
  }

  /** Uncounts a released body; the buffer's size if it was the last one there, else 0. */
  private unpin(o: LoObject): number {
    if (o.body._tag !== "InMemory") return 0
    const buffer = o.body.bytes.buffer
    const n = this.pinned.get(buffer) ?? 0
    if (n > 1) {
      this.pinned.set(buffer, n - 1)
      return 0
    }
    this.pinned.delete(buffer)
    return n === 1 ? buffer.byteLength : 0
  }

  /** An empty `InFlight` for the config's budgets; the scope releases what is left in it when it closes. */
  static readonly make = (cfg: ValidPipelineConfig): Effect.Effect<InFlight, never, Scope.Scope> =>
    Effect.acquireRelease(Effect.sync(() => new InFlight(budgetsOf(cfg))), (inFlight) => inFlight.releaseAll)

  /**
   * A read unit being built from `first` (one row may claim more than a budget): `fits(row)` tells whether the unit so
   * far plus `row` stays within every budget, and if so counts `row` in; `bytes()` is what the unit costs, for the
   * throttle and for `reserve`. Running totals, so building a unit of n rows costs n additions per budget, and nobody
   * sums its rows again.
   */
  unitFrom(first: SourceRow): UnitBuilder {
    const budgets = this.budgets
    const charges = budgets.map((b) => b.charge(first))
    let claimed = claimedBytes(first)
    return {
      fits: (row) => {
        const next = budgets.map((b, i) => charges[i]! + b.charge(row))
        if (next.some((n, i) => n > budgets[i]!.budget.total)) return false
        next.forEach((n, i) => (charges[i] = n))
        claimed += claimedBytes(row)
        return true
      },
      bytes: () => ({ claimed, charges })
    }
  }

  /**
   * Waits until a unit's charges (`UnitBytes.charges`) fit in every budget, taking them one after the other, always in
   * the same order; a budget already granted is given back if a later wait fails or is interrupted. Call it
   * uninterruptibly: only the waits run under `restore` (the caller's), so a granted reservation is never lost to an
   * interruption.
   */
  reserve(
    charges: ReadonlyArray<number>,
    restore: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ): Effect.Effect<ReadonlyArray<Reservation>> {
    const budgets = this.budgets
    const cancel = (reservations: ReadonlyArray<Reservation>) => this.cancel(reservations)
    return Effect.gen(function*() {
      const reservations: Array<Reservation> = []
      for (const [i, b] of budgets.entries()) {
        const r = b.budget.reserve(charges[i]!)
        reservations.push(r)
        yield* restore(b.budget.await(r)).pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? cancel(reservations) : Effect.void))
      }
      return reservations
    })
  }

  /** Gives back reservations whose read failed (a grant, or a place in the line). */
  cancel(reservations: ReadonlyArray<Reservation>): Effect.Effect<void> {
    return Effect.sync(() => reservations.forEach((r, i) => this.budgets[i]!.budget.cancel(r)))
  }

  /**
   * Takes the objects a read produced: each keeps its row's charge (up to its verified size) of a budget charged by
   * rows; a budget charged by buffers keeps what the bodies newly pin, taking more than the reservation if they pin
   * more. The rest goes back.
   */
  adopt(
    reservations: ReadonlyArray<Reservation>,
    results: ReadonlyArray<Result.Result<LoObject, unknown>>
  ): Effect.Effect<void> {
    return Effect.suspend(() => {
      const left = reservations.map((r) => r.bytes)
      let adopted = 0
      let pinned = 0
      for (const r of results) {
        if (Result.isFailure(r)) continue
        this.live.add(r.success)
        adopted += r.success.size
        if (this.buffersBudget !== undefined) pinned += this.pin(r.success)
        if (this.budgets.length > 0) {
          this.held.set(
            r.success,
            this.budgets.map((b, i) => {
              if (b.buffers) return 0
              const share = Math.min(b.charge(r.success.row), left[i]!)
              left[i] = left[i]! - share
              return share
            })
          )
        }
      }
      this.budgets.forEach((b, i) => {
        if (!b.buffers) return
        const kept = Math.min(pinned, left[i]!)
        left[i] = left[i]! - kept
        b.budget.overdraw(pinned - kept)
      })
      left.forEach((bytes, i) => this.budgets[i]!.budget.give(bytes))
      return trackInFlight(adopted)
    })
  }

  /** Frees the object's body, then hands its bytes to the next read and wakes whoever waits for its spill. */
  release(o: LoObject): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (!this.live.delete(o)) return Effect.void
      const waiter = this.spillReleased.get(o)
      if (waiter !== undefined) {
        this.spillReleased.delete(o)
        Deferred.doneUnsafe(waiter, Effect.void)
      }
      const shares = this.held.get(o)
      this.held.delete(o)
      const unpinned = this.buffersBudget === undefined ? 0 : this.unpin(o)
      return Effect.andThen(
        Effect.andThen(o.release, trackInFlight(-o.size)),
        Effect.sync(() => {
          shares?.forEach((bytes, i) => this.budgets[i]!.budget.give(bytes))
          this.buffersBudget?.give(unpinned)
        })
      )
    })
  }

  /**
   * Waits until the spilled objects in flight right now are released (their uploads end either way and remove their
   * files): what a spill that found the disk full (ENOSPC) does before it is retried.
   */
  get spillsDrained(): Effect.Effect<void> {
    return Effect.suspend(() => {
      // every waiter is registered at once, before the first wait: a release while waiting must find its own
      const released = [...this.live].filter((o) => o.body._tag === "Spilled").map((o) => {
        let d = this.spillReleased.get(o)
        if (d === undefined) {
          d = Deferred.makeUnsafe<void>()
          this.spillReleased.set(o, d)
        }
        return d
      })
      return Effect.andThen(
        Effect.logWarning(`spill directory full: waiting for the ${released.length} spilled objects in flight to be uploaded`),
        Effect.forEach(released, Deferred.await, { discard: true })
      )
    })
  }

  private get releaseAll(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const rest = [...this.live]
      this.live.clear()
      this.pinned.clear()
      return Effect.forEach(rest, (o) => Effect.andThen(o.release, trackInFlight(-o.size)), { discard: true })
    })
  }
}

/**
 * What every fake shares: its options, the start of an operation (counted, with the world's latency) and the crash
 * a fault knob raises.
 */
import type { SourceRow } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import type { FakeRow, Operation, World } from "./World.ts"

export interface FakeOptions {
  /** Rows per source page (default 16). */
  readonly pageSize?: number
  /** Objects larger than this many bytes are spilled to a temp file (default 64 KiB). */
  readonly inMemMax?: number
  /** Chunk size the reader feeds the digester with (default 16 KiB). */
  readonly readChunk?: number
  /** The bucket name used in errors (default "fake-bucket"). */
  readonly bucket?: string
}

/** The defect a crash knob raises. */
export class FakeCrash extends Error {
  override readonly name = "FakeCrash"
}

export const begin = (world: World, op: Operation): Effect.Effect<void> =>
  Effect.suspend(() => {
    world.operation(op)
    const delay = world.faults.latency(op)
    return delay === undefined ? Effect.void : Effect.sleep(delay)
  })

export const crash = (world: World, what: string): Effect.Effect<never> =>
  world.faults.crashMode === "die" ? Effect.die(new FakeCrash(`fake crash after ${what}`)) : Effect.interrupt

export const toSourceRow = (r: FakeRow): SourceRow => ({ hash: r.hash, oid: r.oid, size: r.size, mimeType: r.mimeType })

export const compareRows = (a: { readonly hash: string; readonly id: number }, b: { readonly hash: string; readonly id: number }): number =>
  a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.id - b.id

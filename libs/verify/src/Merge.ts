/**
 * The merge-join of two sorted streams: the bucket listing (pages of objects in key order) and the migrated rows (in
 * `sha2` order). One pass over each, holding at most one page of each at a time: every row is paired with the object
 * under its `sha2` (or none: missing), every object no row references is an orphan. Rows whose `sha2` is not a hex
 * key cannot match anything and come out as `Malformed`.
 *
 * Both inputs must be sorted in byte order; a key or a row out of order would make the merge wrong, so it fails with
 * `OrderViolation` instead (never a silent false "missing").
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Pull from "effect/Pull"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { isSha256Hex } from "@lo-migrate/core"
import { type ListedObject, type MigratedRow } from "./Domain.ts"

export type Pairing =
  | { readonly _tag: "Row"; readonly row: MigratedRow; readonly object: ListedObject | undefined }
  | { readonly _tag: "Malformed"; readonly row: MigratedRow }
  | { readonly _tag: "Orphan"; readonly object: ListedObject }

/** An input of the merge was not in byte order. */
export class OrderViolation extends Schema.TaggedError<OrderViolation>()("OrderViolation", {
  side: Schema.Literals(["listing", "rows"]),
  previous: Schema.String,
  next: Schema.String
}) {
  override get message() {
    return `the ${this.side === "listing" ? "bucket listing" : "rows ordered by sha2 COLLATE \"C\""} is not in byte ` +
      `order: ${JSON.stringify(this.next)} came after ${JSON.stringify(this.previous)}; the merge cannot continue`
  }
}

/** Pairings per pull of the merged stream. */
const batch = 1024

/** A peekable reader over a pull of arrays. */
class Cursor<A, E> {
  private items: ReadonlyArray<A> = []
  private at = 0
  private ended = false
  /** The largest number of items held at once (one chunk of the input), for the memory bound. */
  held = 0
  private readonly pull: Pull.Pull<ReadonlyArray<A>, E>
  constructor(pull: Pull.Pull<ReadonlyArray<A>, E>) {
    this.pull = pull
  }

  /** The next item, or `undefined` at the end. */
  get peek(): Effect.Effect<A | undefined, E> {
    if (this.at < this.items.length) return Effect.succeed(this.items[this.at])
    if (this.ended) return Effect.succeed(undefined)
    return this.pull.pipe(
      Effect.map((items) => {
        this.items = items
        this.at = 0
        this.held = Math.max(this.held, items.length)
        return items[0]
      }),
      Pull.catchDone(() =>
        Effect.sync(() => {
          this.ended = true
          this.items = []
          return undefined
        })
      )
    ) as Effect.Effect<A | undefined, E>
  }

  advance(): void {
    this.at += 1
  }
}

export interface MergeStats {
  /** The largest number of objects and rows held by the merge at once. */
  maxHeld: number
}

/**
 * Merges `pages` (the listing, one array per page) with `rows`. `stats.maxHeld` records the merge's own memory bound
 * (at most one page of objects plus one chunk of rows).
 */
export const mergeJoin = <E1, R1, E2, R2>(
  pages: Stream.Stream<ReadonlyArray<ListedObject>, E1, R1>,
  rows: Stream.Stream<MigratedRow, E2, R2>,
  stats: MergeStats = { maxHeld: 0 }
): Stream.Stream<Pairing, E1 | E2 | OrderViolation, R1 | R2> =>
  Stream.unwrap(Effect.gen(function*() {
    const pageSource = Stream.filter(pages, (page) => page.length > 0)
    const objects = new Cursor<ReadonlyArray<ListedObject>, E1>(yield* Stream.toPull(pageSource))
    const rowCursor = new Cursor<MigratedRow, E2>(yield* Stream.toPull(rows))
    let page: ReadonlyArray<ListedObject> = []
    let pageAt = 0
    let pageDone = false
    let lastKey: string | undefined
    let lastSha2: string | undefined
    // whether the current object was referenced by a row (rows may share a sha2: the object stays current)
    let referenced = false

    const peekObject: Effect.Effect<ListedObject | undefined, E1 | OrderViolation> = Effect.suspend(() => {
      if (pageAt < page.length) return Effect.succeed(page[pageAt])
      if (pageDone) return Effect.succeed(undefined)
      return Effect.flatMap(objects.peek, (next) => {
        if (next === undefined) {
          pageDone = true
          page = []
          return Effect.succeed(undefined)
        }
        objects.advance()
        page = next
        pageAt = 0
        return Effect.succeed(page[0])
      })
    })
    const nextObject = (object: ListedObject) => {
      pageAt += 1
      referenced = false
      lastKey = object.key
    }

    const step: Effect.Effect<ReadonlyArray<Pairing>, E1 | E2 | OrderViolation> = Effect.gen(function*() {
      const out: Array<Pairing> = []
      while (out.length < batch) {
        const object = yield* peekObject
        if (object !== undefined && lastKey !== undefined && object.key <= lastKey) {
          return yield* new OrderViolation({ side: "listing", previous: lastKey, next: object.key })
        }
        const row = yield* rowCursor.peek
        stats.maxHeld = Math.max(stats.maxHeld, page.length + rowCursor.held)
        if (row === undefined && object === undefined) break
        if (row !== undefined && !isSha256Hex(row.sha2)) {
          out.push({ _tag: "Malformed", row })
          rowCursor.advance()
          continue
        }
        if (row !== undefined && lastSha2 !== undefined && row.sha2 < lastSha2) {
          return yield* new OrderViolation({ side: "rows", previous: lastSha2, next: row.sha2 })
        }
        if (row === undefined || (object !== undefined && object.key < row.sha2)) {
          // the object sorts before every remaining row: no row references it (unless the previous rows did)
          if (!referenced) out.push({ _tag: "Orphan", object: object! })
          nextObject(object!)
          continue
        }
        lastSha2 = row.sha2
        if (object !== undefined && object.key === row.sha2) {
          out.push({ _tag: "Row", row, object })
          referenced = true
        } else {
          out.push({ _tag: "Row", row, object: undefined })
        }
        rowCursor.advance()
      }
      return out
    })

    const pull: Pull.Pull<ReadonlyArray<Pairing>, E1 | E2 | OrderViolation> = Effect.flatMap(
      step,
      (out) => out.length === 0 ? Cause.done() : Effect.succeed(out)
    )
    return Stream.fromPull(Effect.succeed(pull as Pull.Pull<readonly [Pairing, ...Array<Pairing>], E1 | E2 | OrderViolation>))
  }))

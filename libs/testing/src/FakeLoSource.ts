/**
 * The fake `LoSource`: keyset pages over the world's table, each page retried by itself like the live adapter.
 */
import { DatabaseError, LoSource, Metrics, retryInfrastructure, type RowCounts, type SourceRow } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { begin, compareRows, type FakeOptions, toSourceRow } from "./FakeOperations.ts"
import type { FakeRow, World } from "./World.ts"

interface Cursor {
  readonly hash: string
  readonly id: number
}

/**
 * Keyset pages of `pageSize` rows ordered by (hash, row id) over the rows whose `sha2` is NULL *when the page is
 * queried*: rows inserted behind the cursor are left for the next run, deleted or committed rows stop appearing. Like
 * the live adapter, a page that fails retryably is retried by itself (the `RetryPolicy` in force, counted as
 * "source"), from the same cursor.
 */
export const makeLoSource = Effect.fnUntraced(function*(world: World, options: FakeOptions = {}) {
  const metrics = yield* Metrics
  const pageSize = options.pageSize ?? 16
  const attempt = Effect.fnUntraced(function*(after: Cursor | undefined) {
    yield* begin(world, "page")
    if (world.faults.sourceFailures > 0) {
      world.faults.sourceFailures--
      return yield* new DatabaseError({ operation: "page", detail: "fake: connection reset", retryable: true })
    }
    const ordered = world.rowsInKeyOrder()
    // first position after the cursor (binary search), then the next `pageSize` rows whose sha2 is NULL
    let lo = 0
    let hi = ordered.length
    while (after !== undefined && lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareRows(ordered[mid]!, after) <= 0) lo = mid + 1
      else hi = mid
    }
    const rows: Array<FakeRow> = []
    for (let i = lo; i < ordered.length && rows.length < pageSize; i++) {
      if (ordered[i]!.sha2 === null) rows.push(ordered[i]!)
    }
    const last = rows.at(-1)
    const next: Option.Option<Cursor | undefined> = rows.length < pageSize || last === undefined
      ? Option.none()
      : Option.some({ hash: last.hash, id: last.id })
    return [rows.map(toSourceRow), next] as const
  })
  const page = (after: Cursor | undefined) =>
    attempt(after).pipe(retryInfrastructure("source"), Effect.provideService(Metrics, metrics))
  return LoSource.of({
    rows: Stream.paginate<Cursor | undefined, SourceRow, DatabaseError>(undefined, page),
    count: Effect.gen(function*() {
      yield* begin(world, "count")
      const remaining = world.rows.filter((r) => r.sha2 === null)
      const counts: RowCounts = {
        total: world.rows.length,
        remaining: remaining.length,
        remainingBytes: remaining.reduce((n, r) => n + r.size, 0),
        largest: remaining.reduce((n, r) => Math.max(n, r.size), 0)
      }
      return counts
    }),
    pending: Effect.gen(function*() {
      yield* begin(world, "count")
      return world.rows.filter((r) => r.sha2 === null).length
    })
  })
})

export const fakeLoSource = (world: World, options: FakeOptions = {}): Layer.Layer<LoSource, never, Metrics> =>
  Layer.effect(LoSource, makeLoSource(world, options))

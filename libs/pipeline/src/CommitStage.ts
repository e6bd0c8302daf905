/**
 * The commit stage: commit queue ─▶ `HashCommitter.commit` ×committers. Uploaded objects are grouped into batches of
 * up to `commitChunk` (a partial batch waits at most `commitLinger`), one entry per row, rows sharing a hash included:
 * the committer classifies each entry and names the rows that failed. Committed and already-set rows are counted as
 * stage "commit" (the run's `migrated`); the others are reported.
 */
import { type CommitEntry, HashCommitter, Metrics, retryInfrastructure, type RowFailed } from "@lo-migrate/core"
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type { ReportRow } from "./Report.ts"

/** An uploaded object on its way to the committer: its commit entry and its size. */
export interface Uploaded extends CommitEntry {
  readonly size: number
}

const commitBatch = Effect.fnUntraced(function*(items: ReadonlyArray<Uploaded>, report: ReportRow) {
  const committer = yield* HashCommitter
  const metrics = yield* Metrics
  const results = yield* committer.commit(items).pipe(
    Effect.withSpan("lo-migrate.commit", { attributes: { rows: items.length } }),
    retryInfrastructure("commit")
  )
  if (results.length !== items.length) {
    return yield* Effect.die(new Error(`HashCommitter.commit returned ${results.length} results for ${items.length} entries`))
  }
  let objects = 0
  let bytes = 0
  const failures: Array<RowFailed> = []
  results.forEach((r, i) => {
    if (Result.isFailure(r)) return void failures.push(r.failure)
    objects++
    bytes += items[i]!.size
  })
  yield* metrics.processed("commit", objects, bytes)
  yield* Effect.forEach(failures, report, { discard: true })
})

/**
 * Commits everything the commit queue holds until it ends, `committers` batches at a time. The queue is read in the
 * chunks it holds (`Stream.fromQueue`), not one entry per pull: the entries only wait there to be grouped.
 */
export const commitStage = Effect.fn("Pipeline.commit")(function*(
  commitQueue: Queue.Dequeue<Uploaded, Cause.Done>,
  options: {
    readonly commitChunk: number
    readonly commitLinger: Duration.Input
    readonly committers: number
    readonly report: ReportRow
  }
) {
  yield* Stream.fromQueue(commitQueue).pipe(
    Stream.groupedWithin(options.commitChunk, options.commitLinger),
    Stream.mapEffect((items) => commitBatch(items, options.report), { concurrency: options.committers, unordered: true }),
    Stream.runDrain
  )
})

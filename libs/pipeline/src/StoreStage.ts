/**
 * The store stage: store queue ─▶ `ObjectStore.put` ×storers ─▶ commit queue. Every put attempt (retries too) takes a
 * permit of an adaptive limit: throttling halves it, successes raise it again up to `storers` (AdaptiveLimit.ts). An
 * object goes on to the commit queue only once its put returned `Uploaded` or `AlreadyPresent`; one the store keeps
 * receiving corrupted (after its own retries from these verified bytes) is reported and skipped. Every object is
 * released when its put ends, either way. The commit queue ends when the stage does.
 */
import {
  CorruptedInTransit,
  type InfrastructureError,
  type LoObject,
  Metrics,
  MimeTypeMetadata,
  ObjectStore,
  type PutOutcome,
  retryInfrastructure,
  RowFailed,
  storedContentType,
  type TransferCorrupted
} from "@lo-migrate/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import { AdaptiveLimit } from "./AdaptiveLimit.ts"
import type { Uploaded } from "./CommitStage.ts"
import type { InFlight } from "./InFlight.ts"
import type { ReportRow } from "./Report.ts"

/** A mime type that cannot be a header value is stored in metadata (core ContentType.ts): say so, naming the row. */
const warnIfMimeTypeReplaced = (o: LoObject): Effect.Effect<void> => {
  const stored = storedContentType(o.row.mimeType)
  if (stored._tag !== "Replaced") return Effect.void
  const where = stored.whole
    ? `the original in x-amz-meta-${MimeTypeMetadata.original} (percent-encoded UTF-8)`
    : `too long for a header (${o.row.mimeType!.length} characters): its SHA-256 in ` +
      `x-amz-meta-${MimeTypeMetadata.sha256}, the full value stays in _nice_binary.mime_type`
  const shown = o.row.mimeType!.length > 80 ? `${JSON.stringify(o.row.mimeType!.slice(0, 80))}...` : JSON.stringify(o.row.mimeType)
  return Effect.logWarning(
    `row hash=${JSON.stringify(o.row.hash)}: mime type ${shown} is not a plain Content-Type (${stored.reason}); ` +
      `object ${o.sha256} stored as ${stored.contentType}, ${where}`
  )
}

/** Puts one object (retried, under the adaptive limit); what goes on to the commit queue, if anything. */
const storeOne = Effect.fnUntraced(function*(
  o: LoObject,
  limit: AdaptiveLimit,
  report: ReportRow
): Effect.fn.Return<Uploaded | undefined, InfrastructureError, ObjectStore | Metrics> {
  const store = yield* ObjectStore
  const metrics = yield* Metrics
  yield* warnIfMimeTypeReplaced(o) // once, outside the retried put
  const outcome = yield* store.put({
    key: o.sha256,
    contentType: o.row.mimeType,
    size: o.size,
    md5Base64: o.md5Base64,
    body: o.body
  }).pipe(
    Effect.map((outcome): PutOutcome | TransferCorrupted => outcome),
    Effect.catchTag("TransferCorrupted", (e) => Effect.succeed(e)),
    (attempt) => limit.withPermit(attempt, (e) => e._tag === "StorageError" && e.throttled === true),
    retryInfrastructure("put")
  )
  if (outcome !== "Uploaded" && outcome !== "AlreadyPresent") {
    const reason = new CorruptedInTransit({ attempts: outcome.attempts, detail: outcome.message })
    yield* report(new RowFailed({ hash: o.row.hash, oid: o.row.oid, reason }))
    return undefined
  }
  if (outcome === "AlreadyPresent") yield* metrics.alreadyPresent
  yield* metrics.processed("store", 1, o.size)
  return { hash: o.row.hash, oid: o.row.oid, sha256: o.sha256, size: o.size }
})

/**
 * Uploads every object of `storeQueue`, at most `storers` at a time, into `commitQueue`; ends it when done. The
 * storers are `storers` fibers for the whole stage, each taking the next object as soon as it is free (one fiber per
 * upload, and a stream pull per object, cost more than the pipeline's other per-object work together).
 */
export const storeStage = Effect.fn("Pipeline.store")(function*(
  storeQueue: Queue.Dequeue<LoObject, Cause.Done>,
  commitQueue: Queue.Queue<Uploaded, Cause.Done>,
  inFlight: InFlight,
  options: { readonly storers: number; readonly report: ReportRow }
) {
  const metrics = yield* Metrics
  const limit = new AdaptiveLimit({ max: options.storers })
  yield* metrics.registerConcurrency("store", Effect.sync(() => ({ name: "store", ...limit.reading })))
  const storer = Queue.take(storeQueue).pipe(
    Effect.flatMap((o) => storeOne(o, limit, options.report).pipe(Effect.ensuring(inFlight.release(o)))),
    Effect.flatMap((u) => u === undefined ? Effect.void : Queue.offer(commitQueue, u)),
    Effect.forever,
    Effect.catchIf(Cause.isDone, () => Effect.void)
  )
  yield* Effect.all(Array.from({ length: options.storers }, () => storer), { concurrency: "unbounded", discard: true })
  yield* Queue.end(commitQueue)
})

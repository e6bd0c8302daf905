/**
 * Which incomplete multipart uploads in the bucket this tool started, and whether their process still runs: so that a
 * run can abort what a killed run left behind (incomplete uploads cost storage forever), never anybody else's upload,
 * and never one that a running lo-migrate process still owns.
 *
 * S3 shows nothing of an incomplete upload but its key, id and start (ListMultipartUploads has no metadata), and the
 * application may upload objects under the same SHA-256 keys itself. So ownership is recorded, in small objects under
 * `statePrefix` (default `lo-migrate/`):
 * - `lo-migrate/owners/<owner id>`: the *lease* of a running process (owner id: core ProcessOwner.ts), written before
 *   its first upload, rewritten every `leaseRefreshMs` (60 s) while it runs, deleted when it ends normally.
 * - `lo-migrate/uploads/<owner id>/<key>/<nonce>`: one *marker* per multipart upload. Written *pending* (key only)
 *   before CreateMultipartUpload, rewritten with the upload id right after it (before any part), deleted after
 *   completion or abort.
 *
 * `sweep` (at start-up; one listing of `statePrefix` when no other owner is recorded) aborts the uploads of markers whose
 * owner is gone, and deletes their markers and leases:
 * - an owner on this host (same host tag) is gone when its process no longer runs (pid + start time, or another boot);
 * - an owner on another host is gone when its lease is missing or older than `leaseTimeoutMs` (10 min), measured by the
 *   server's clock (the LastModified of the lease this sweep itself writes then), so clock skew between hosts does not
 *   count.
 * Uploads without a marker are never touched. The one gap: a process killed between CreateMultipartUpload and the
 * marker's rewrite (one round trip) leaves a pending marker and an upload S3 cannot attribute: the sweep names the
 * uploads of that key begun since in a warning and leaves them alone; a bucket lifecycle rule
 * `AbortIncompleteMultipartUpload` is the backstop (README).
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client
} from "@aws-sdk/client-s3"
import { currentOwner, defaultRetry, ownerLiveness, retrySchedule, StorageError } from "@lo-migrate/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import { randomBytes } from "node:crypto"
import { classifyS3Error, isCorruptionS3Error, s3ErrorFacts } from "./S3Errors.ts"
import { S3ClientService } from "./S3ClientService.ts"
import { sendS3 } from "./S3Send.ts"
import { defaultS3StoreConfig, type S3StoreConfig } from "./S3StoreConfig.ts"

export interface UploadSweep {
  /** Uploads of ended lo-migrate runs aborted (or found already gone). */
  readonly aborted: number
  /** Uploads of running lo-migrate processes left alone. */
  readonly kept: number
  /** Owners found gone (their markers and leases deleted). */
  readonly goneOwners: number
}

/** One multipart upload of this process in the ledger (its marker object). */
export interface UploadEntry {
  readonly key: string
  readonly markerKey: string
}

interface Marker {
  readonly key: string
  readonly uploadId: string
}

export class S3UploadLedger extends Context.Service<S3UploadLedger, {
  /** This process's owner id. */
  readonly ownerId: string
  /** Before CreateMultipartUpload: a pending entry for `key` (writes the lease first if needed). */
  readonly begin: (key: string) => Effect.Effect<UploadEntry, StorageError>
  /** After CreateMultipartUpload, before any part: the entry gets the upload id. */
  readonly started: (entry: UploadEntry, uploadId: string) => Effect.Effect<void, StorageError>
  /** After completion or abort (or a failed creation). Never fails (a marker left behind is swept later). */
  readonly forget: (entry: UploadEntry) => Effect.Effect<void>
  /** Aborts the recorded uploads of ended runs. Never fails: problems are logged. */
  readonly sweep: Effect.Effect<UploadSweep>
}>()("lo-migrate/S3UploadLedger") {
  static readonly layer: Layer.Layer<S3UploadLedger, never, S3ClientService> = Layer.effect(
    S3UploadLedger,
    Effect.flatMap(S3ClientService, ({ client, config }) => makeUploadLedger(client, config))
  )
}

export const makeUploadLedger = Effect.fn("S3UploadLedger.makeUploadLedger")(function*(
  client: S3Client,
  config: S3StoreConfig
): Effect.fn.Return<S3UploadLedger["Service"], never, Scope.Scope> {
  const bucket = config.bucket
  const prefix = config.statePrefix ?? defaultS3StoreConfig.statePrefix ?? "lo-migrate/"
  const refreshMs = config.leaseRefreshMs ?? defaultS3StoreConfig.leaseRefreshMs ?? 60_000
  const timeoutMs = config.leaseTimeoutMs ?? defaultS3StoreConfig.leaseTimeoutMs ?? 600_000
  const secrets = config.secretAccessKey === undefined ? [] : [config.secretAccessKey]
  const owner = yield* currentOwner
  const leaseKey = (ownerId: string) => `${prefix}owners/${ownerId}`
  const uploadsPrefix = `${prefix}uploads/`

  /**
   * The ledger's bodies are small JSON values made anew for every attempt, so one the server received corrupted
   * (BadDigest, XAmzContentSHA256Mismatch) is simply sent again: retryable, unlike a corrupted object body, which
   * the store resends itself from its verified bytes.
   */
  const ledgerError = (e: unknown, operation: string, key: string): StorageError => {
    const error = classifyS3Error(e, { operation, bucket, key, secrets })
    return error.retryable || !isCorruptionS3Error(s3ErrorFacts(e))
      ? error
      : new StorageError({ ...error, retryable: true, cause: error.cause }) // (the spread leaves the cause out)
  }
  const call = <A>(operation: string, key: string, run: (signal: AbortSignal) => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: (e) => ledgerError(e, operation, key) }).pipe(
      // the core policy, a few times: the ledger is bookkeeping, a failure is logged or fails the one upload
      Effect.retry(retrySchedule({ ...defaultRetry, times: 3 }))
    )
  const putJson = (key: string, value: unknown) =>
    call("PutObject", key, (signal) =>
      sendS3(client, 
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(value), ContentType: "application/json" }),
        { abortSignal: signal }
      ))
  const deleteObject = (key: string) =>
    call("DeleteObject", key, (signal) => sendS3(client, new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }))
  const listAll = Effect.fnUntraced(function*(listPrefix: string) {
    const out: Array<{ readonly key: string; readonly lastModified: Date | undefined }> = []
    let token: string | undefined
    do {
      const page = yield* call("ListObjectsV2", listPrefix, (signal) =>
        sendS3(client, 
          new ListObjectsV2Command({ Bucket: bucket, Prefix: listPrefix, ContinuationToken: token }),
          { abortSignal: signal }
        ))
      for (const o of page.Contents ?? []) if (o.Key !== undefined) out.push({ key: o.Key, lastModified: o.LastModified })
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return out
  })

  // --- this process's lease ---------------------------------------------------------------------------------------
  let leased = false
  const leaseLock = yield* Semaphore.make(1)
  const writeLease = putJson(leaseKey(owner.id), { owner: owner.id, host: owner.host, pid: owner.pid })
  const ensureLease = Semaphore.withPermit(
    leaseLock,
    Effect.suspend(() => leased ? Effect.void : Effect.tap(writeLease, () => Effect.sync(() => void (leased = true))))
  )
  yield* Effect.forkScoped(
    Effect.forever(
      Effect.sleep(refreshMs).pipe(
        Effect.andThen(Effect.suspend(() => leased ? writeLease : Effect.void)),
        Effect.catch((e) => Effect.logWarning(`could not renew the upload lease ${leaseKey(owner.id)}: ${e.message}`))
      )
    )
  )
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() =>
      leased
        ? deleteObject(leaseKey(owner.id)).pipe(
          Effect.catch((e) => Effect.logWarning(`could not delete the upload lease: ${e.message}`)),
          Effect.asVoid
        )
        : Effect.void
    )
  )

  const begin = Effect.fnUntraced(function*(key: string) {
    yield* ensureLease
    const entry: UploadEntry = { key, markerKey: `${uploadsPrefix}${owner.id}/${key}/${randomBytes(8).toString("hex")}` }
    yield* putJson(entry.markerKey, { key, uploadId: null, owner: owner.id })
    return entry
  })

  const started = (entry: UploadEntry, uploadId: string) =>
    putJson(entry.markerKey, { key: entry.key, uploadId, owner: owner.id }).pipe(Effect.asVoid)

  const forget = (entry: UploadEntry) =>
    deleteObject(entry.markerKey).pipe(
      Effect.catch((e) =>
        Effect.logWarning(`could not delete the upload marker of ${entry.key}: ${e.message} (a later run does)`)
      ),
      Effect.asVoid,
      Effect.uninterruptible
    )

  // --- the sweep --------------------------------------------------------------------------------------------------
  const readMarker = (markerKey: string) =>
    call("GetObject", markerKey, (signal) =>
      sendS3(client, new GetObjectCommand({ Bucket: bucket, Key: markerKey }), { abortSignal: signal })
        .then((out) => out.Body!.transformToString())
        .then((text) => JSON.parse(text) as Partial<Marker>))

  const abort = (marker: Marker) =>
    Effect.tryPromise({
      try: (signal) =>
        sendS3(client, new AbortMultipartUploadCommand({ Bucket: bucket, Key: marker.key, UploadId: marker.uploadId }), {
          abortSignal: signal
        }),
      catch: (e) => e
    }).pipe(
      Effect.asVoid,
      Effect.catch((e) =>
        // NoSuchUpload: completed or aborted already, nothing left behind
        s3ErrorFacts(e).httpStatus === 404
          ? Effect.void
          : Effect.fail(classifyS3Error(e, { operation: "AbortMultipartUpload", bucket, key: marker.key, secrets }))
      )
    )

  /**
   * A pending marker: the run ended around CreateMultipartUpload. An upload of the key started since then may be
   * its, or anybody else's (S3 cannot tell): it is named in a warning, never aborted.
   */
  const reportPending = (key: string, since: Date | undefined) =>
    call("ListMultipartUploads", key, (signal) =>
      sendS3(client, new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }), { abortSignal: signal })).pipe(
        Effect.flatMap((out) => {
          const suspects = (out.Uploads ?? []).filter((u) =>
            u.Key === key && (since === undefined || u.Initiated === undefined ||
              u.Initiated.getTime() >= since.getTime() - 1000)
          )
          return suspects.length === 0 ? Effect.void : Effect.logWarning(
            `a run ended while it started a multipart upload of ${bucket}/${key}; upload(s) ` +
              `${suspects.map((u) => u.UploadId).join(", ")} of that key began since. S3 cannot tell whose they are, so ` +
              "they are left alone: abort them if no other client uploads this key (aws s3api abort-multipart-upload), " +
              "or let a lifecycle rule AbortIncompleteMultipartUpload do it"
          )
        })
      )

  /** Aborts one marker's upload (or reports a pending one) and deletes the marker. */
  const clearMarker = Effect.fnUntraced(function*(markerKey: string, lastModified: Date | undefined) {
    const marker = yield* readMarker(markerKey)
    if (typeof marker.key === "string" && typeof marker.uploadId === "string") {
      yield* abort({ key: marker.key, uploadId: marker.uploadId })
      yield* Effect.logInfo(`aborted incomplete multipart upload ${marker.uploadId} of ${bucket}/${marker.key} (left by an ended run)`)
    } else if (typeof marker.key === "string") {
      yield* reportPending(marker.key, lastModified)
    }
    yield* deleteObject(markerKey)
    return typeof marker.uploadId === "string"
  })

  /** The server's "now": the LastModified of our own lease, written just before (only to judge another host's lease). */
  const serverNow = Effect.gen(function*() {
    yield* ensureLease
    const own = yield* call("HeadObject", leaseKey(owner.id), (signal) =>
      sendS3(client, new HeadObjectCommand({ Bucket: bucket, Key: leaseKey(owner.id) }), { abortSignal: signal }))
    return own.LastModified?.getTime() ?? (yield* Clock.currentTimeMillis)
  })

  const sweep: Effect.Effect<UploadSweep> = Effect.gen(function*() {
    // One listing of the whole ledger, leases and markers: with no other owner recorded, the only request.
    const leases = new Map<string, Date | undefined>()
    const markers = new Map<string, Array<{ readonly key: string; readonly lastModified: Date | undefined }>>()
    for (const o of yield* listAll(prefix)) {
      if (o.key.startsWith(`${prefix}owners/`)) leases.set(o.key.slice(`${prefix}owners/`.length), o.lastModified)
      else if (o.key.startsWith(uploadsPrefix)) {
        const ownerId = o.key.slice(uploadsPrefix.length).split("/")[0]!
        markers.set(ownerId, [...(markers.get(ownerId) ?? []), o])
      }
    }
    let now: number | undefined
    let aborted = 0
    let kept = 0
    let goneOwners = 0
    for (const ownerId of new Set([...leases.keys(), ...markers.keys()])) {
      const liveness = yield* ownerLiveness(ownerId)
      const lease = leases.get(ownerId)
      if (liveness === "unknown" && lease !== undefined && now === undefined) now = yield* serverNow
      const gone = liveness === "gone" ||
        (liveness === "unknown" && (lease === undefined || (now ?? 0) - lease.getTime() > timeoutMs))
      const theirs = markers.get(ownerId) ?? []
      if (!gone) kept += theirs.length
      if (!gone) continue
      goneOwners++
      for (const marker of theirs) {
        yield* clearMarker(marker.key, marker.lastModified).pipe(
          Effect.tap((wasStarted) => Effect.sync(() => void (wasStarted && aborted++))),
          Effect.catch((e) => Effect.logWarning(`could not clean up the upload of marker ${marker.key}: ${e.message}`))
        )
      }
      if (lease !== undefined) yield* deleteObject(leaseKey(ownerId)).pipe(Effect.ignore)
    }
    if (kept > 0) yield* Effect.logInfo(`${kept} multipart upload(s) of running lo-migrate processes left alone`)
    return { aborted, kept, goneOwners }
  }).pipe(
    Effect.catch((e) =>
      Effect.as(
        Effect.logWarning(
          `could not look for multipart uploads left by ended runs (${e.message}); the migration goes on. ` +
            `It needs s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on ${bucket}/${prefix}*`
        ),
        { aborted: 0, kept: 0, goneOwners: 0 }
      )
    ),
    Effect.withSpan("S3UploadLedger.sweep")
  )

  return S3UploadLedger.of({ ownerId: owner.id, begin, started, forget, sweep })
})

/**
 * The bucket's objects in key order, page by page: ListObjectsV2 with 1000 keys per request (S3's maximum), so a
 * bucket of N objects costs ceil(N/1000) requests, not N HEADs; one more per page the server cuts short (Ceph RGW
 * answers the odd page with ~983 keys, marked truncated: 21 requests for 20,000 objects), since only the server's
 * continuation token says where the next page starts. S3 lists in UTF-8 binary order, the order of
 * `ORDER BY sha2 COLLATE "C"` for hex keys.
 *
 * A range starts the listing just before `from` (`StartAfter`, exclusive, so the prefix one digit shorter is used and
 * the few keys below `from` are dropped here) and stops at the first page that reaches `to`. Each request is retried
 * by core's one retry policy when its error is retryable. The migrator's bookkeeping objects (`lo-migrate/`) are left
 * out.
 */
import { ListObjectsV2Command } from "@aws-sdk/client-s3"
import { type Metrics, retryInfrastructure, type StorageError } from "@lo-migrate/core"
import { clientCalls, defaultS3StoreConfig, type S3ClientService, sendS3 } from "@lo-migrate/s3"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { inRange, type KeyRange, type ListedObject } from "./Domain.ts"

/**
 * The migrator's own bookkeeping objects (upload ledger: owner leases, upload markers) live under this prefix. They
 * are never a row's object, so they are neither checked nor orphans.
 */
const statePrefix = defaultS3StoreConfig.statePrefix ?? "lo-migrate/"

/** S3's largest page. */
export const maxKeysPerRequest = 1000

interface Page {
  readonly objects: ReadonlyArray<ListedObject>
  readonly token: string | undefined
}

/**
 * The listing as a stream of pages (each non-empty page is one array). `onRequest` is called once per request sent
 * (retries included), for the request count in the summary.
 */
export const listPages = (
  range: KeyRange,
  onRequest: () => void
): Stream.Stream<ReadonlyArray<ListedObject>, StorageError, S3ClientService | Metrics> =>
  Stream.unwrap(Effect.gen(function*() {
    const { bucket, call, client } = yield* clientCalls
    const startAfter = range.from === undefined || range.from.length <= 1 ? undefined : range.from.slice(0, -1)

    const request = (token: string | undefined) =>
      call("ListObjectsV2", undefined, (signal) => {
        onRequest()
        return sendS3(client, 
          new ListObjectsV2Command({
            Bucket: bucket,
            MaxKeys: maxKeysPerRequest,
            ...(token === undefined ? (startAfter === undefined ? {} : { StartAfter: startAfter }) : { ContinuationToken: token })
          }),
          { abortSignal: signal }
        )
      }).pipe(
        retryInfrastructure("ListObjectsV2"),
        Effect.map((out): Page => {
          const objects: Array<ListedObject> = []
          for (const o of out.Contents ?? []) {
            if (o.Key !== undefined && !o.Key.startsWith(statePrefix)) objects.push({ key: o.Key, size: o.Size ?? 0 })
          }
          return { objects, token: out.IsTruncated === true ? out.NextContinuationToken : undefined }
        })
      )

    return Stream.paginate(
      { token: undefined as string | undefined, first: true },
      (state) =>
        Effect.map(request(state.first ? undefined : state.token), (page) => {
          const last = page.objects.at(-1)
          const beyond = range.to !== undefined && last !== undefined && last.key >= range.to
          const next = page.token === undefined || beyond
            ? Option.none<{ token: string | undefined; first: boolean }>()
            : Option.some({ token: page.token, first: false })
          const inside = page.objects.filter((o) => inRange(o.key, range))
          return [inside.length === 0 ? [] : [inside], next] as const
        })
    )
  }))

/**
 * Configuration of the S3 object store, and the part-size arithmetic of multipart uploads.
 */
import type * as Redacted from "effect/Redacted"

export const MiB = 1024 * 1024

/** S3's smallest part (all parts but the last). */
export const minPartSize = 5 * MiB
/** S3's largest part. */
export const maxPartSize = 5 * 1024 * MiB
/** S3's largest number of parts in one multipart upload. */
export const maxParts = 10_000

export interface S3StoreConfig {
  readonly bucket: string
  /** `undefined` = the AWS default endpoint for the region. */
  readonly endpoint: string | undefined
  /** `us-east-1` for Ceph (other regions make CreateBucket fail with InvalidLocationConstraint). */
  readonly region: string
  /** Path-style addressing (`http://host/bucket/key`): needed for Ceph and most non-AWS servers. */
  readonly forcePathStyle: boolean
  /** Both `undefined` = the AWS default credential chain (environment, shared profiles, ...). */
  readonly accessKeyId: Redacted.Redacted<string> | undefined
  readonly secretAccessKey: Redacted.Redacted<string> | undefined
  /**
   * Bytes per multipart part; default 20 MiB, at least 5 MiB. A spilled body larger than this goes up in parts; the
   * part size is grown automatically (whole MiB) so that an object never needs more than 10,000 parts.
   */
  readonly partSize: number
  /** Socket limit of the keep-alive agent; follows the storer concurrency. */
  readonly maxSockets: number
  /**
   * How an object already under its key is detected (a resumed run finds the objects it uploaded but had not yet
   * committed; they come first in the resumed scan). Every mode is correct; they differ only in cost:
   * - `"resume"` (default): a HEAD before the PUT only for a body of more than `headAbove` bytes, whose re-sending
   *   would cost more than the HEAD; smaller bodies go straight to the conditional PUT of `"never"`, until
   *   `conditionalWindow` puts in a row have found their key new: from then on they go unconditionally. A fresh run of
   *   small objects sends one request per object; a resumed run re-sends at most the small bodies of the objects it
   *   had uploaded but not committed (a 412, then a HEAD), never a large one.
   * - `"never"`: no HEAD. Single-request PUTs carry `If-None-Match: *`; the server answers 412 when the key exists
   *   (the body was sent but not stored; a HEAD then compares the size). No extra round trip for new objects.
   * - `"always"`: a HEAD before every PUT (+40–80 % per new small object on Ceph, see tools/s3/README.md).
   * Multipart uploads always HEAD first whatever this says: Ceph 16 ignores `If-None-Match` on
   * CompleteMultipartUpload, and one HEAD is negligible next to a multipart upload. So do all PUTs to a bucket with
   * versioning enabled (or whose versioning cannot be read): there Ceph 16 stores a conditional PUT of an existing key
   * as a new version instead of answering 412 (S3ConditionalPut.ts; one GetBucketVersioning per store tells).
   */
  readonly headBeforePut: "always" | "never" | "resume"
  /**
   * `"resume"` mode: bodies larger than this (bytes) are HEADed before their PUT (default 1 MiB, the migrator's
   * default `--in-mem-max`: the bodies it spills to disk). A HEAD is paid by every new object of a run, a re-sent body
   * only by the few a resumed run finds present (the uploads not yet committed when the earlier run stopped; the
   * client sends no `Expect: 100-continue`, so a PUT refused with 412 has sent its whole body). So a HEAD pays only
   * where one body costs the gateway many HEADs: a 64 KiB PUT already costs about 1.5–3 HEADs (tools/s3/README.md),
   * a MiB several times more.
   */
  readonly headAbove?: number | undefined
  /**
   * `"resume"` mode: small PUTs carry `If-None-Match: *` until this many puts in a row have found their key new (a
   * conditional PUT answered 200, or a HEAD answered 404); the later ones are sent without it (default 1000; 0: never
   * conditional). A present key resets the count.
   *
   * Why: the condition costs the gateway 5-11% more CPU per small PUT (Ceph 16.2.15, 6 alternating pairs of 4000 PUTs
   * of 1-256 KiB: tools/bench/src/gateway-cost.ts, tools/bench/README.md, issue 16), and it only ever pays at the
   * start of a resumed run. The objects an earlier run uploaded and did not commit come first in the resumed scan (the source
   * reads in hash order), among at most the earlier run's objects in flight, far fewer than 1000 apart. A key found
   * present after the window is written again with the same bytes: its key is their SHA-256, verified by the server,
   * so nothing changes but its Content-Type, which then follows this row, and the put counts as `Uploaded`, not
   * `AlreadyPresent`. The body is sent either way: the client sends no `Expect: 100-continue`, so a 412 saves the
   * gateway's write, not the transfer. A versioned bucket is never written unconditionally: there every PUT is
   * preceded by a HEAD (S3ConditionalPut.ts), as are multipart uploads and the bodies above `headAbove`.
   */
  readonly conditionalWindow?: number | undefined
  /** Parts of one multipart upload sent at the same time (default 2). */
  readonly partConcurrency?: number | undefined
  /** Attempts per part inside one multipart upload, for retryable failures (default 3). */
  readonly partAttempts?: number | undefined
  /**
   * Attempts in all for a single PUT whose body the server rejected as corrupted in transit (BadDigest,
   * XAmzContentSHA256Mismatch), sent again from the same verified bytes (default 3; a part uses `partAttempts`).
   */
  readonly corruptAttempts?: number | undefined
  /** Milliseconds to establish a TCP connection (default 5 s; the migrator's `--connect-timeout`). */
  readonly connectionTimeoutMs?: number | undefined
  /**
   * Milliseconds a request may go without progress (no byte sent or received: waiting for the first byte of the
   * answer, or a stalled body) before it is aborted, its socket destroyed, and it fails as a retryable timeout
   * (default 20 s; the migrator's `--request-timeout`). The retry goes out on a fresh connection.
   */
  readonly socketTimeoutMs?: number | undefined
  /**
   * Key prefix of the objects that record which multipart uploads are this tool's (S3UploadLedger.ts; default
   * `lo-migrate/`). Never a content key (those are 64 hex digits).
   */
  readonly statePrefix?: string | undefined
  /** How often a running process rewrites its upload lease (default 60 s). */
  readonly leaseRefreshMs?: number | undefined
  /** A lease of another host older than this (server time) means its process is gone (default 10 min). */
  readonly leaseTimeoutMs?: number | undefined
}

/** Defaults for everything but where the bucket is and who may use it. */
export const defaultS3StoreConfig: Omit<S3StoreConfig, "bucket" | "endpoint" | "accessKeyId" | "secretAccessKey"> = {
  region: "us-east-1",
  forcePathStyle: true,
  partSize: 20 * MiB,
  maxSockets: 16,
  headBeforePut: "resume",
  headAbove: MiB,
  conditionalWindow: 1000,
  partConcurrency: 2,
  partAttempts: 3,
  corruptAttempts: 3,
  connectionTimeoutMs: 5_000,
  socketTimeoutMs: 20_000,
  statePrefix: "lo-migrate/",
  leaseRefreshMs: 60_000,
  leaseTimeoutMs: 600_000
}

/** The configured part size brought within S3's limits (5 MiB to 5 GiB): also the largest single-PUT spilled body. */
export const effectivePartSize = (configured: number): number =>
  Math.min(maxPartSize, Math.max(minPartSize, Math.ceil(configured)))

/**
 * The part size for an object of `size` bytes: the configured size (at least 5 MiB), grown to whole MiB so that the
 * object fits in 10,000 parts. Fails (returns `undefined`) only beyond S3's limit of 10,000 parts of 5 GiB.
 */
export const partSizeFor = (size: number, configured: number): number | undefined => {
  const base = effectivePartSize(configured)
  const needed = Math.ceil(size / maxParts)
  const partSize = needed <= base ? base : Math.ceil(needed / MiB) * MiB
  return partSize > maxPartSize ? undefined : partSize
}

/** The number of parts of an object of `size` bytes cut into `partSize` parts (at least one). */
export const partCount = (size: number, partSize: number): number => Math.max(1, Math.ceil(size / partSize))

/**
 * The part size of the multipart upload the store makes for a spilled body of `size` bytes, or `undefined` when it
 * goes up as one PutObject (up to the part size) or cannot go up at all. A reader that is given this function can
 * digest the parts in its own pass over the bytes (`PartDigests`), which the store then uses as they are.
 */
export const multipartPartSize = (size: number, configured: number): number | undefined =>
  size > effectivePartSize(configured) ? partSizeFor(size, configured) : undefined


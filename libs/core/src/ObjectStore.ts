/**
 * The store port: content-addressed objects keyed by SHA-256, what a put sends, and what a HEAD tells.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { Body, Sha256Hex } from "./Domain.ts"
import type { StorageError, TransferCorrupted } from "./Errors.ts"

export interface PutRequest {
  /** The SHA-256 hex of the content: the object key. */
  readonly key: Sha256Hex
  /** The row's mime type; `null` or empty leaves the store's default Content-Type. */
  readonly contentType: string | null
  readonly size: number
  /**
   * Base64 MD5 of the content, sent as Content-MD5 with a body sent whole so the server rejects a corrupted body. A
   * reader leaves it out for a body it digested part by part (`Body.Spilled.parts`); a store that sends such a body
   * whole after all computes it from the bytes it sends.
   */
  readonly md5Base64: string | undefined
  readonly body: Body
}

/** `Uploaded`: the bytes were sent. `AlreadyPresent`: an object of the right size was already under the key. */
export type PutOutcome = "Uploaded" | "AlreadyPresent"

export interface HeadResult {
  readonly size: number
  readonly contentType: string | undefined
}

/**
 * Content-addressed object storage: the key is the SHA-256 of the bytes, so a put is idempotent and a resumed run may
 * find objects already present (uploaded before a crash, not yet committed).
 */
export class ObjectStore extends Context.Service<ObjectStore, {
  /**
   * Fails with `TransferCorrupted` when the server kept rejecting the body as corrupted on the way (after the store's
   * own few retries): that row is reported, the run goes on.
   */
  readonly put: (request: PutRequest) => Effect.Effect<PutOutcome, StorageError | TransferCorrupted>
  readonly head: (key: Sha256Hex) => Effect.Effect<Option.Option<HeadResult>, StorageError>
  /** Start-up check: the bucket exists and the credentials may use it. Fails fast before any row is read. */
  readonly check: Effect.Effect<void, StorageError>
}>()("lo-migrate/ObjectStore") {}

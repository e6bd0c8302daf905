/**
 * The SHA-256 the SDK signs with (the client's `sha256` option), keeping the SigV4 signing key as a Node `KeyObject`.
 *
 * Why: every request's signature is an HMAC keyed with the day's signing key, which the SDK caches as bytes (one
 * `Uint8Array` per date, region and service). Node 24 prepares an HMAC key given as bytes in ~28 us, against ~5 us for a
 * `KeyObject` or a string, so the SDK's own `Sha256Node` paid ~25 us of CPU per request to re-import the same key. This
 * one imports each key object once (`createSecretKey`, held by a WeakMap on the SDK's cached bytes) and is otherwise
 * the same hash: plain SHA-256 without a secret, HMAC-SHA-256 with one.
 */
import { createHash, createHmac, createSecretKey, type Hash, type Hmac, type KeyObject } from "node:crypto"

/** What the SDK passes as a secret (its `SourceData`). */
type SourceData = string | ArrayBuffer | ArrayBufferView

/** Key objects of the byte keys seen, by the bytes (the SDK hands the same cached array for a whole day). */
const keyObjects = new WeakMap<object, KeyObject>()

/** An HMAC key as Node takes it fastest: a string as is, bytes as a (cached) `KeyObject`. */
const hmacKey = (secret: SourceData): string | KeyObject | Uint8Array => {
  if (typeof secret === "string") return secret
  if (secret.byteLength === 0) return new Uint8Array(0) // no key object of zero bytes; never the SDK's signing key
  const cached = keyObjects.get(secret)
  if (cached !== undefined) return cached
  const key = createSecretKey(
    secret instanceof ArrayBuffer
      ? new Uint8Array(secret)
      : new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength)
  )
  keyObjects.set(secret, key)
  return key
}

/** The SDK's `Checksum` contract, as its `Sha256Node` keeps it: an HMAC when given a secret (an empty string is none). */
export class SigningSha256 {
  readonly digestLength = 32
  private hash: Hash | Hmac
  private readonly secret: SourceData | undefined
  private readonly isHmac: boolean

  constructor(secret?: SourceData) {
    this.secret = secret
    this.isHmac = !!secret
    this.hash = this.fresh()
  }

  private fresh(): Hash | Hmac {
    return this.isHmac ? createHmac("sha256", hmacKey(this.secret!)) : createHash("sha256")
  }

  update(data: Uint8Array | string): void {
    this.hash.update(typeof data === "string" ? Buffer.from(data, "utf8") : data)
  }

  /** An HMAC ends with its digest; a plain hash can go on (digested from a copy), as the SDK's own allows. */
  digest(): Promise<Uint8Array> {
    const out = this.isHmac ? this.hash.digest() : (this.hash as Hash).copy().digest()
    return Promise.resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength))
  }

  reset(): void {
    this.hash = this.fresh()
  }
}

/**
 * The data sets tests share: the original tool's end-to-end set (with a 10 MiB object) and a set of invalid rows, one
 * per way a row can be bad.
 */
import type { RowFailureReason } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import { digestOf, generateBytes, type InsertedBinary, insertBinary, unusedOid } from "./Seeding.ts"


export interface OriginalDataSet {
  /** 10 MiB of generated content. */
  readonly big: InsertedBinary
  /** A 0-byte object. */
  readonly empty: InsertedBinary
  /** A few small objects of different sizes and mime types. */
  readonly small: ReadonlyArray<InsertedBinary>
  /** A row that already has its sha2 (migrated by an earlier run): the source must not yield it. */
  readonly migrated: InsertedBinary
  /** Every row the source must yield, in hash order. */
  readonly pending: ReadonlyArray<InsertedBinary>
}

const sha256Of = (bytes: Uint8Array) => digestOf(bytes).sha256

/** The data set of the original tool's end-to-end test, with a 10 MiB object added. */
export const seedOriginalDataSet = Effect.gen(function*() {
  const big = yield* insertBinary({ bytes: { size: 10 * 1024 * 1024, seed: 42 }, mimeType: "application/pdf" })
  const empty = yield* insertBinary({ bytes: new Uint8Array(0), mimeType: "octet/stream" })
  const small: Array<InsertedBinary> = []
  small.push(yield* insertBinary({ bytes: new TextEncoder().encode("hello, world\n"), mimeType: "text/plain" }))
  small.push(yield* insertBinary({ bytes: generateBytes({ size: 125, seed: 7 }), mimeType: "octet/stream" }))
  small.push(yield* insertBinary({ bytes: generateBytes({ size: 6842, seed: 8 }), mimeType: "" }))
  small.push(yield* insertBinary({ bytes: generateBytes({ size: 81, seed: 9 }), mimeType: "image/png" }))
  const migratedBytes = generateBytes({ size: 44, seed: 10 })
  const migrated = yield* insertBinary({
    bytes: migratedBytes,
    mimeType: "unused",
    sha2: sha256Of(migratedBytes)
  })
  const pending = [big, empty, ...small].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0))
  const set: OriginalDataSet = { big, empty, small, migrated, pending }
  return set
})

export interface InvalidRow extends InsertedBinary {
  /** The `RowFailed` reason a reader must report for this row. */
  readonly expected: RowFailureReason["_tag"]
}

export interface InvalidDataSet {
  readonly shortHash: InvalidRow
  readonly wrongHash: InvalidRow
  readonly nonHexHash: InvalidRow
  readonly missingObject: InvalidRow
  readonly nullOid: InvalidRow
  readonly wrongSize: InvalidRow
  readonly all: ReadonlyArray<InvalidRow>
}

/** The original tool's invalid data set, plus a missing object, a NULL oid and a wrong size. */
export const seedInvalidDataSet = Effect.gen(function*() {
  const content = (seed: number, size = 100) => generateBytes({ size, seed })
  const tag = (expected: RowFailureReason["_tag"]) => (row: InsertedBinary): InvalidRow => ({ ...row, expected })
  const shortHash = tag("MalformedHash")(
    yield* insertBinary({ bytes: content(21), mimeType: "octet/stream", hash: "392007d934dd54600110b683f5e52aeeedb1" })
  )
  const wrongHash = tag("Sha1Mismatch")(
    yield* insertBinary({
      bytes: content(22, 81),
      mimeType: "octet/stream",
      hash: "0000000042b415eaf546865acf6287fc8ac1f0e5"
    })
  )
  const nonHexHash = tag("MalformedHash")(
    yield* insertBinary({
      bytes: content(23, 81),
      mimeType: "octet/stream",
      hash: "d0706a2d42b415eaX546865acf6287fc8ac1f0e5"
    })
  )
  const missingOid = yield* unusedOid
  const missingObject = tag("MissingLargeObject")(
    yield* insertBinary({ bytes: content(24), mimeType: "text/plain", oid: missingOid })
  )
  const nullOid = tag("NullOid")(yield* insertBinary({ bytes: content(25), mimeType: "text/plain", oid: null }))
  const wrongSize = tag("SizeMismatch")(yield* insertBinary({ bytes: content(26, 300), mimeType: "x/y", size: 299 }))
  const all = [shortHash, wrongHash, nonHexHash, missingObject, nullOid, wrongSize]
  const set: InvalidDataSet = { shortHash, wrongHash, nonHexHash, missingObject, nullOid, wrongSize, all }
  return set
})

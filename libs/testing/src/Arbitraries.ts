/**
 * Arbitraries (`effect/Arbitrary`, for `it.effect.prop` / `it.live.prop`) for `_nice_binary` tables: the row kinds a
 * table may hold (`RowSpec`), their contents, sizes and mime types. `buildWorld` (BuildWorld.ts) makes a `World` of one.
 *
 * Contents are generated as (size, seed) and expanded by a fast PRNG, so multi-MiB objects cost nothing to shrink.
 */
import * as Arbitrary from "effect/Arbitrary"
import * as Schema from "effect/Schema"

export interface ContentSpec {
  readonly size: number
  readonly seed: number
}

/** How a malformed hash is malformed. (An upper-case hash of 40 hex digits is valid: see the `upperCaseHash` row.) */
export type HashMalformation = "short" | "upperNonHex" | "nonHex" | "empty" | "padded" | "long"

export type RowSpec =
  /** A good row whose sha2 is NULL: must be migrated. */
  | { readonly kind: "valid"; readonly content: ContentSpec; readonly mimeType: string | null }
  /** A good row whose hash is stored in upper case: verified case-insensitively, committed under that spelling. */
  | { readonly kind: "upperCaseHash"; readonly content: ContentSpec; readonly mimeType: string | null }
  /** A second row with the same hash and bytes (and mime type) as the latest valid row before it. */
  | { readonly kind: "duplicate" }
  /** Already migrated by an earlier run: sha2 set, object in the bucket. Must stay untouched. */
  | { readonly kind: "migrated"; readonly content: ContentSpec; readonly mimeType: string | null }
  | {
    readonly kind: "malformedHash"
    readonly content: ContentSpec
    readonly mimeType: string | null
    readonly malformation: HashMalformation
  }
  | { readonly kind: "nullOid"; readonly content: ContentSpec; readonly mimeType: string | null }
  | { readonly kind: "missingObject"; readonly content: ContentSpec; readonly mimeType: string | null }
  /** The large object's bytes differ from what the row's hash says (same size when possible). */
  | { readonly kind: "corrupt"; readonly content: ContentSpec; readonly mimeType: string | null }
  /** The row's size is wrong. */
  | {
    readonly kind: "sizeMismatch"
    readonly content: ContentSpec
    readonly mimeType: string | null
    readonly delta: number
  }

export interface TableSpec {
  readonly rows: ReadonlyArray<RowSpec>
}

const KiB = 1024
const MiB = 1024 * KiB

/** Deterministic bytes for a content spec (xorshift32). */
export const contentBytes = (spec: ContentSpec): Uint8Array => {
  const bytes = new Uint8Array(spec.size)
  let x = (spec.seed | 0) || 0x9e3779b9
  const words = Math.floor(spec.size / 4)
  const view = new DataView(bytes.buffer)
  for (let i = 0; i < words; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    view.setUint32(i * 4, x >>> 0, true)
  }
  for (let i = words * 4; i < spec.size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    bytes[i] = x & 0xff
  }
  return bytes
}

export interface SizeOptions {
  /** Largest size generated (default 3 MiB). Most sizes are far smaller. */
  readonly max?: number
}

/** Integers from `min` to `max`, inclusive. */
export const integer = (min: number, max: number): Arbitrary.Arbitrary<number> =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: min, maximum: max })))

/** Any 32-bit integer (a PRNG seed). */
export const anyInt: Arbitrary.Arbitrary<number> = integer(-0x80000000, 0x7fffffff)

/** One of `values`, the first ones when shrinking. */
export const constantFrom = <const A extends ReadonlyArray<unknown>>(...values: A): Arbitrary.Arbitrary<A[number]> =>
  Arbitrary.map(integer(0, values.length - 1), (i) => values[i])

/** One of the arbitraries, picked in proportion to its weight (the first ones when shrinking). */
export const weighted = <A>(
  ...choices: ReadonlyArray<{ readonly weight: number; readonly arbitrary: Arbitrary.Arbitrary<A> }>
): Arbitrary.Arbitrary<A> => {
  const total = choices.reduce((n, c) => n + c.weight, 0)
  return Arbitrary.flatMap(integer(0, total - 1), (n) => {
    for (const c of choices) {
      if (n < c.weight) return c.arbitrary
      n -= c.weight
    }
    return choices[choices.length - 1]!.arbitrary
  })
}

/** `undefined` one time in six, else a value of `self`. */
export const optional = <A>(self: Arbitrary.Arbitrary<A>): Arbitrary.Arbitrary<A | undefined> =>
  weighted<A | undefined>({ weight: 1, arbitrary: Arbitrary.Constant(undefined) }, { weight: 5, arbitrary: self })

/** Object sizes from 0 B to `max`: mostly under 1 KiB, some up to 64 KiB and 512 KiB, a few large. */
export const arbSize = (options: SizeOptions = {}): Arbitrary.Arbitrary<number> => {
  const max = options.max ?? 3 * MiB
  const band = (lo: number, hi: number) => integer(Math.min(lo, max), Math.min(hi, max))
  return weighted(
    { weight: 14, arbitrary: band(0, KiB) },
    { weight: 2, arbitrary: Arbitrary.Constant(0) },
    { weight: 4, arbitrary: band(KiB, 64 * KiB) },
    { weight: 2, arbitrary: band(64 * KiB, 512 * KiB) },
    { weight: 1, arbitrary: band(512 * KiB, max) }
  )
}

export const arbContent = (options: SizeOptions = {}): Arbitrary.Arbitrary<ContentSpec> =>
  Arbitrary.all({ size: arbSize(options), seed: anyInt })

/** Usual, empty, NULL and odd mime types (parameters, unicode, whitespace, the 255-char column limit). */
export const arbMimeType: Arbitrary.Arbitrary<string | null> = weighted<string | null>(
  { weight: 6, arbitrary: constantFrom("application/octet-stream", "text/plain", "image/png", "application/pdf") },
  { weight: 2, arbitrary: Arbitrary.Constant(null) },
  { weight: 2, arbitrary: Arbitrary.Constant("") },
  {
    weight: 2,
    arbitrary: constantFrom(
      "octet/stream",
      "text/plain; charset=utf-8",
      "application/x-very+weird.type",
      " text/html ",
      "unknown",
      "bild/ä-öü",
      "x/" + "y".repeat(253)
    )
  }
)

export const arbMalformation: Arbitrary.Arbitrary<HashMalformation> = constantFrom(
  "short",
  "upperNonHex",
  "nonHex",
  "empty",
  "padded",
  "long"
)

export interface TableOptions extends SizeOptions {
  readonly minRows?: number
  readonly maxRows?: number
  /** Relative weight of bad rows (malformed, NULL oid, missing, corrupt, size mismatch); default 1 (vs 8 valid). */
  readonly badWeight?: number
}

export const arbRowSpec = (options: TableOptions = {}): Arbitrary.Arbitrary<RowSpec> => {
  const content = arbContent(options)
  const bad = options.badWeight ?? 1
  const withContent = <const K extends RowSpec["kind"]>(kind: K) =>
    Arbitrary.all({ kind: Arbitrary.Constant(kind), content, mimeType: arbMimeType })
  const arbs: Array<{ readonly weight: number; readonly arbitrary: Arbitrary.Arbitrary<RowSpec> }> = [
    { weight: 8, arbitrary: withContent("valid") },
    { weight: 1, arbitrary: Arbitrary.Constant({ kind: "duplicate" as const }) },
    { weight: 1, arbitrary: withContent("upperCaseHash") },
    { weight: 1, arbitrary: withContent("migrated") }
  ]
  if (bad > 0) {
    arbs.push(
      {
        weight: bad,
        arbitrary: Arbitrary.all({
          kind: Arbitrary.Constant("malformedHash" as const),
          content,
          mimeType: arbMimeType,
          malformation: arbMalformation
        })
      },
      { weight: bad, arbitrary: withContent("nullOid") },
      { weight: bad, arbitrary: withContent("missingObject") },
      { weight: bad, arbitrary: withContent("corrupt") },
      {
        weight: bad,
        arbitrary: Arbitrary.all({
          kind: Arbitrary.Constant("sizeMismatch" as const),
          content,
          mimeType: arbMimeType,
          delta: weighted({ weight: 1, arbitrary: integer(1, 1000) }, { weight: 1, arbitrary: integer(-1000, -1) })
        })
      }
    )
  }
  return weighted(...arbs)
}

export const arbTableSpec = (options: TableOptions = {}): Arbitrary.Arbitrary<TableSpec> =>
  Arbitrary.all({
    rows: Arbitrary.array(arbRowSpec(options), { minLength: options.minRows ?? 0, maxLength: options.maxRows ?? 40 })
  })

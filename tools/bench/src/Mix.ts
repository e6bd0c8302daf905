/**
 * The data mix: how many objects of which sizes, generated reproducibly from a seed.
 *
 * A mix is a list of groups, each `count` objects with sizes log-uniform between `min` and `max` bytes. The same seed
 * and mix give the same objects (ids, sizes, mime types, order) on every machine, so two runs measure the same data.
 */

/** Mulberry32: a small, fast, well-mixed 32-bit PRNG. Returns floats in [0, 1). */
export const makeRng = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer log-uniformly distributed between `min` and `max` (inclusive). */
export const logUniform = (rng: () => number, min: number, max: number): number => {
  if (min >= max) return min
  // shifted by one so that a minimum of 0 bytes works
  const lo = Math.log(min + 1)
  const hi = Math.log(max + 2)
  return Math.min(max, Math.max(min, Math.floor(Math.exp(lo + rng() * (hi - lo))) - 1))
}

export interface MixGroup {
  readonly count: number
  readonly min: number
  readonly max: number
}

export interface Mix {
  readonly name: string
  readonly groups: ReadonlyArray<MixGroup>
}

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

/**
 * Named mixes. `default` is the issue's mix; `quick` is what CI runs; `huge` (1 GiB objects) and `inmem` (objects
 * just below the in-memory limit) check that memory is bounded by configuration, not by object size.
 */
export const presets: Readonly<Record<string, Mix>> = {
  default: { name: "default", groups: [{ count: 20_000, min: KiB, max: 256 * KiB }, { count: 20, min: 8 * MiB, max: 64 * MiB }] },
  quick: { name: "quick", groups: [{ count: 300, min: KiB, max: 256 * KiB }, { count: 2, min: 8 * MiB, max: 8 * MiB }] },
  huge: { name: "huge", groups: [{ count: 200, min: KiB, max: 256 * KiB }, { count: 2, min: GiB, max: GiB }] },
  /** Objects just under the default --in-mem-max (1 MiB): every one is held in memory while it waits for S3. */
  inmem: { name: "inmem", groups: [{ count: 1500, min: 768 * KiB, max: 1023 * KiB }] }
}

const unit: Readonly<Record<string, number>> = { "": 1, B: 1, K: KiB, KB: KiB, KIB: KiB, M: MiB, MB: MiB, MIB: MiB, G: GiB, GB: GiB, GIB: GiB }

/** Parses a size like `1K`, `256KiB`, `8M`, `1G`, `4096`. */
export const parseSize = (text: string): number => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text)
  const factor = m === null ? undefined : unit[m[2]!.toUpperCase()]
  if (m === null || factor === undefined) throw new Error(`not a size: ${JSON.stringify(text)}`)
  return Math.round(Number(m[1]) * factor)
}

/**
 * Parses a mix: a preset name (`default`, `quick`, `huge`, `inmem`) or groups `COUNT:MIN-MAX` (or `COUNT:SIZE`) separated by
 * commas, e.g. `20000:1K-256K,20:8M-64M`.
 */
export const parseMix = (text: string): Mix => {
  const preset = presets[text]
  if (preset !== undefined) return preset
  const groups = text.split(",").map((part): MixGroup => {
    const m = /^\s*(\d+)\s*:\s*([^-]+?)\s*(?:-\s*(.+?))?\s*$/.exec(part)
    if (m === null) throw new Error(`not a mix group (COUNT:MIN-MAX): ${JSON.stringify(part)}`)
    const min = parseSize(m[2]!)
    const max = m[3] === undefined ? min : parseSize(m[3])
    if (max < min) throw new Error(`mix group ${JSON.stringify(part)}: max < min`)
    // two empty objects would have the same SHA-1, and hash is the primary key
    if (min < 1) throw new Error(`mix group ${JSON.stringify(part)}: objects must be at least 1 byte`)
    return { count: Number(m[1]), min, max }
  })
  return { name: text, groups }
}

/** Scales every group's count by `factor` (at least 1 object per non-empty group). */
export const scaleMix = (mix: Mix, factor: number): Mix => ({
  name: `${mix.name}×${factor}`,
  groups: mix.groups.map((g) => ({ ...g, count: g.count === 0 ? 0 : Math.max(1, Math.round(g.count * factor)) }))
})

export const mimeTypes = ["image/jpeg", "image/png", "application/pdf", "text/plain", "application/octet-stream", null] as const

export interface ObjectSpec {
  /** 1-based, unique within a mix: it seeds the object's bytes. */
  readonly id: number
  readonly size: number
  readonly mimeType: string | null
}

/** The objects of a mix, in a seeded shuffled order (big objects are spread through the table, as in real data). */
export const makeObjects = (mix: Mix, seed: number): ReadonlyArray<ObjectSpec> => {
  const rng = makeRng(seed)
  const out: Array<ObjectSpec> = []
  let id = 0
  for (const g of mix.groups) {
    for (let i = 0; i < g.count; i++) {
      id += 1
      const size = logUniform(rng, g.min, g.max)
      const mimeType = mimeTypes[Math.floor(rng() * mimeTypes.length)] ?? null
      out.push({ id, size, mimeType })
    }
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1))
    const t = out[i]!
    out[i] = out[j]!
    out[j] = t
  }
  return out
}

export const totalBytes = (objects: ReadonlyArray<{ readonly size: number }>): number =>
  objects.reduce((n, o) => n + o.size, 0)

export const describeMix = (mix: Mix): string =>
  mix.groups.map((g) => `${g.count} × ${fmtSize(g.min)}${g.max === g.min ? "" : `–${fmtSize(g.max)}`}`).join(" + ")

const fmtSize = (n: number): string =>
  n >= GiB && n % GiB === 0 ? `${n / GiB} GiB` : n >= MiB && n % MiB === 0 ? `${n / MiB} MiB` : n >= KiB && n % KiB === 0 ? `${n / KiB} KiB` : `${n} B`

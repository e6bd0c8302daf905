/**
 * Sizes and counts as people read them: bytes in binary units (KiB, MiB, ...), and items grouped into batches bounded
 * by their bytes and their number.
 */

const units = ["B", "KiB", "MiB", "GiB", "TiB"] as const

export interface FormatBytesOptions {
  /** Decimals of the scaled value (default 2). */
  readonly decimals?: number
  /** The smallest unit used (default "B": `512 B`; with "MiB", `0.5 MiB`). */
  readonly smallest?: (typeof units)[number]
}

/** `bytes` in the largest binary unit it reaches (at least `smallest`): `512 B`, `4.88 KiB`, `10.00 MiB`. */
export const formatBytes = (bytes: number, options: FormatBytesOptions = {}): string => {
  const decimals = options.decimals ?? 2
  let unit = units.indexOf(options.smallest ?? "B")
  let value = bytes / 1024 ** unit
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(decimals)} ${units[unit]}`
}

/**
 * Splits `items`, in order, into groups of at most `maxBytes` bytes (by `sizeOf`) and at most `maxCount` items. An
 * item bigger than `maxBytes` gets a group of its own.
 */
export const groupBySize = <A>(
  items: Iterable<A>,
  sizeOf: (item: A) => number,
  limits: { readonly maxBytes: number; readonly maxCount?: number | undefined }
): Array<Array<A>> => {
  const maxCount = limits.maxCount ?? Number.POSITIVE_INFINITY
  const groups: Array<Array<A>> = []
  let current: Array<A> = []
  let bytes = 0
  for (const item of items) {
    const size = sizeOf(item)
    if (current.length > 0 && (bytes + size > limits.maxBytes || current.length >= maxCount)) {
      groups.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) groups.push(current)
  return groups
}

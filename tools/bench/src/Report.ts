/**
 * What one measurement produced, and how the harness prints the table, the ratios and the target lines. Pure code, no
 * I/O: the unit tests check it directly.
 */

/** `diagnostic`: context (hashing alone, transfer without hashing), never a limit. `candidate`: a migrator run tried
 * while tuning; listed apart. Neither enters the ratios. */
export type Kind = "pg-limit" | "s3-limit" | "combined-limit" | "diagnostic" | "naive" | "migrator" | "candidate"

export interface Measurement {
  readonly name: string
  readonly kind: Kind
  readonly objects: number
  readonly bytes: number
  readonly wallMs: number
  /** user + system CPU of the process doing the work, over the timed window (or its whole life for a child). */
  readonly cpuMs: number | undefined
  /** Peak resident set size of the process doing the work. */
  readonly peakRssBytes: number | undefined
  /** CPU the PostgreSQL cluster (all backends) and the Ceph daemons used meanwhile; shared servers, so indicative. */
  readonly pgCpuMs?: number | undefined
  readonly cephCpuMs?: number | undefined
  /** Fraction of the machine's CPU time that was busy (all processes, both cores) during the measurement. */
  readonly machineBusy?: number | undefined
  readonly note?: string | undefined
  /** Set when the measurement did not complete correctly; the row is printed but left out of ratios. */
  readonly error?: string | undefined
}

const MiB = 1024 * 1024

export const mibPerSec = (m: Measurement): number => m.wallMs <= 0 ? 0 : m.bytes / MiB / (m.wallMs / 1000)
export const objPerSec = (m: Measurement): number => m.wallMs <= 0 ? 0 : m.objects / (m.wallMs / 1000)

/** A number with `digits` significant-ish decimals: 1234 -> "1234", 12.345 -> "12.3", 0.01234 -> "0.0123". */
export const fmtNum = (n: number | undefined, digits = 3): string => {
  if (n === undefined || !Number.isFinite(n)) return "–"
  const abs = Math.abs(n)
  if (abs >= 10 ** (digits - 1) || abs === 0) return Math.round(n).toString()
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)))
  return n.toFixed(Math.min(decimals, 6))
}

export const fmtMiB = (bytes: number | undefined): string => bytes === undefined ? "–" : fmtNum(bytes / MiB)
export const fmtSec = (ms: number | undefined): string => ms === undefined ? "–" : fmtNum(ms / 1000)
export const fmtPct = (f: number | undefined): string => f === undefined || !Number.isFinite(f) ? "–" : `${Math.round(f * 100)}%`

/** Renders rows as a Markdown table with padded columns (readable in a terminal, pasteable into a README). */
export const renderTable = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  align: ReadonlyArray<"l" | "r"> = []
): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const cell = (text: string, i: number) =>
    align[i] === "r" ? text.padStart(widths[i]!) : text.padEnd(widths[i]!)
  const line = (cells: ReadonlyArray<string>) => `| ${headers.map((_, i) => cell(cells[i] ?? "", i)).join(" | ")} |`
  const rule = `|${widths.map((w, i) => align[i] === "r" ? `${"-".repeat(w + 1)}:` : `${"-".repeat(w + 2)}`).join("|")}|`
  return [line(headers), rule, ...rows.map(line)].join("\n")
}

export const resultsTable = (ms: ReadonlyArray<Measurement>): string =>
  renderTable(
    ["measurement", "objects", "MiB", "wall s", "obj/s", "MiB/s", "peak RSS MiB", "CPU s", "PG CPU s", "Ceph CPU s", "machine busy"],
    ms.map((m) => [
      m.error === undefined ? m.name : `${m.name} (FAILED: ${m.error})`,
      String(m.objects),
      fmtMiB(m.bytes),
      fmtSec(m.wallMs),
      fmtNum(objPerSec(m)),
      fmtNum(mibPerSec(m)),
      fmtMiB(m.peakRssBytes),
      fmtSec(m.cpuMs),
      fmtSec(m.pgCpuMs),
      fmtSec(m.cephCpuMs),
      fmtPct(m.machineBusy)
    ]),
    ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r"]
  )

/** A measurement to compare with: it succeeded and moved bytes (one that found nothing to do proves nothing). */
const ok = (m: Measurement | undefined): m is Measurement =>
  m !== undefined && m.error === undefined && m.wallMs > 0 && m.bytes > 0

/** The fastest successful measurement of a kind (by MiB/s). */
export const best = (ms: ReadonlyArray<Measurement>, kind: Kind): Measurement | undefined =>
  ms.filter((m) => m.kind === kind && ok(m)).sort((a, b) => mibPerSec(b) - mibPerSec(a))[0]

export interface Ratio {
  readonly label: string
  /** numerator / denominator, by MiB/s, and by objects/s. */
  readonly mib: number | undefined
  readonly obj: number | undefined
}

export const ratio = (label: string, a: Measurement | undefined, b: Measurement | undefined): Ratio => ({
  label,
  mib: ok(a) && ok(b) ? mibPerSec(a) / mibPerSec(b) : undefined,
  obj: ok(a) && ok(b) ? objPerSec(a) / objPerSec(b) : undefined
})

export interface Target {
  readonly label: string
  readonly pass: boolean | undefined
  readonly detail: string
}

export const RSS_TARGET_BYTES = 300 * MiB

export interface Verdict {
  readonly ratios: ReadonlyArray<Ratio>
  readonly targets: ReadonlyArray<Target>
}

/**
 * Ratios of the migrator with defaults (and tuned) against the two limits and the naive baseline, and the issue's
 * targets: defaults >= 80% of the slower limit, >= 5x naive, peak RSS < 300 MiB.
 */
export const verdict = (ms: ReadonlyArray<Measurement>, mixName: string): Verdict => {
  const pg = best(ms, "pg-limit")
  const s3 = best(ms, "s3-limit")
  const naive = best(ms, "naive")
  const combined = best(ms, "combined-limit")
  const migrators = ms.filter((m) => m.kind === "migrator")
  const defaults = migrators.find((m) => m.name.includes("defaults"))
  const tuned = migrators.filter((m) => m !== defaults && ok(m)).sort((a, b) => mibPerSec(b) - mibPerSec(a))[0]
  const slower = ok(pg) && ok(s3) ? (mibPerSec(pg) <= mibPerSec(s3) ? pg : s3) : (ok(pg) ? pg : ok(s3) ? s3 : undefined)
  const ratios: Array<Ratio> = []
  for (const [tag, m] of [["defaults", defaults], ["tuned", tuned]] as const) {
    if (m === undefined) continue
    ratios.push(ratio(`migrator (${tag}) / PG read limit`, m, pg))
    ratios.push(ratio(`migrator (${tag}) / S3 write limit`, m, s3))
    ratios.push(ratio(`migrator (${tag}) / slower limit`, m, slower))
    if (combined !== undefined) ratios.push(ratio(`migrator (${tag}) / combined limit`, m, combined))
    ratios.push(ratio(`migrator (${tag}) / naive`, m, naive))
  }
  const vsLimit = ratio("", defaults, slower)
  const vsNaive = ratio("", defaults, naive)
  const rssOk = ok(defaults) && defaults.peakRssBytes !== undefined
  const targets: Array<Target> = [
    {
      label: "migrator (defaults) >= 80% of the slower limit",
      pass: vsLimit.mib === undefined ? undefined : vsLimit.mib >= 0.8,
      detail: vsLimit.mib === undefined ? "not measured" : `${fmtPct(vsLimit.mib)} of ${slower?.name ?? "?"}`
    },
    {
      label: "migrator (defaults) >= 5x naive",
      pass: vsNaive.mib === undefined ? undefined : vsNaive.mib >= 5,
      detail: vsNaive.mib === undefined ? "not measured" : `${fmtNum(vsNaive.mib)}x (objects/s: ${fmtNum(vsNaive.obj)}x)`
    },
    {
      label: `migrator (defaults) peak RSS < 300 MiB (mix ${mixName})`,
      pass: rssOk ? defaults.peakRssBytes! < RSS_TARGET_BYTES : undefined,
      detail: rssOk ? `${fmtMiB(defaults.peakRssBytes)} MiB` : "not measured"
    }
  ]
  return { ratios, targets }
}

export const renderVerdict = (v: Verdict): string => {
  const lines = v.ratios.map((r) =>
    `  ${r.label.padEnd(44)} ${r.mib === undefined ? "–" : `${fmtNum(r.mib)}x`} by MiB/s` +
    (r.obj === undefined ? "" : `, ${fmtNum(r.obj)}x by objects/s`)
  )
  const targets = v.targets.map((t) => `${t.pass === undefined ? "SKIP" : t.pass ? "PASS" : "FAIL"}  ${t.label}: ${t.detail}`)
  return ["Ratios:", ...lines, "", "Targets:", ...targets].join("\n")
}

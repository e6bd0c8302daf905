/**
 * What one measurement produced, and how the harness prints the table, the ratios and the target lines. Pure code, no
 * I/O: the unit tests check it directly.
 */

/** `diagnostic`: context (hashing alone, transfer without hashing), never a limit. `candidate`: a migrator run tried
 * while tuning; listed apart. Neither enters the ratios. `peer`: another uploader (rclone) on the same objects. */
export type Kind = "pg-limit" | "s3-limit" | "combined-limit" | "diagnostic" | "naive" | "migrator" | "candidate" | "peer"

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
  /**
   * The round it belongs to, for the measurements that are repeated (S3 write limit, combined limit, migrator with
   * defaults): each round measures them back to back, so a ratio within a round compares runs on the same server
   * state. Unset for measurements taken once.
   */
  readonly round?: number | undefined
}

const MiB = 1024 * 1024

export const mibPerSec = (m: Measurement): number => m.wallMs <= 0 ? 0 : m.bytes / MiB / (m.wallMs / 1000)
export const objPerSec = (m: Measurement): number => m.wallMs <= 0 ? 0 : m.objects / (m.wallMs / 1000)
/** CPU seconds of the process doing the work per 1000 objects moved (`undefined` without CPU or objects). */
export const cpuPer1000 = (m: Measurement): number | undefined =>
  m.cpuMs === undefined || m.objects <= 0 ? undefined : m.cpuMs / m.objects

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
    ["measurement", "objects", "MiB", "wall s", "obj/s", "MiB/s", "peak RSS MiB", "CPU s", "CPU s/1k obj", "PG CPU s", "Ceph CPU s", "machine busy"],
    ms.map((m) => [
      m.error === undefined ? m.name : `${m.name} (FAILED: ${m.error})`,
      String(m.objects),
      fmtMiB(m.bytes),
      fmtSec(m.wallMs),
      fmtNum(objPerSec(m)),
      fmtNum(mibPerSec(m)),
      fmtMiB(m.peakRssBytes),
      fmtSec(m.cpuMs),
      fmtNum(cpuPer1000(m)),
      fmtSec(m.pgCpuMs),
      fmtSec(m.cephCpuMs),
      fmtPct(m.machineBusy)
    ]),
    ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r"]
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

/** The issue's peak RSS targets: 200 MiB on the default and smaller mixes, 300 MiB with 1 GiB objects (`huge`). */
export const rssTargetBytes = (mixName: string): number => (mixName === "huge" ? 300 : 200) * MiB

export interface Verdict {
  readonly ratios: ReadonlyArray<Ratio>
  /** Per round, ratios between measurements of that round (empty unless some measurement has a round). */
  readonly rounds: ReadonlyArray<PairedRound>
  /** The median over the rounds of each of those ratios (`undefined` where no round has it). */
  readonly roundMedians: Omit<PairedRound, "round">
  readonly targets: ReadonlyArray<Target>
  readonly cpu: CpuFigures
}

export interface PairedRound {
  readonly round: number
  /** migrator (defaults) / S3 write limit, both of this round, by MiB/s. */
  readonly migratorVsS3: number | undefined
  /** migrator (defaults) / combined limit, both of this round. */
  readonly migratorVsCombined: number | undefined
  /** combined limit / S3 write limit: how close a minimal client doing all the work comes to the S3 limit. */
  readonly combinedVsS3: number | undefined
}

/** The median of some numbers (the mean of the middle two for an even count); `undefined` for none. */
export const median = (xs: ReadonlyArray<number>): number | undefined => {
  if (xs.length === 0) return undefined
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const isDefaults = (m: Measurement) => m.kind === "migrator" && m.name.includes("defaults")

/** Ratios within each round, rounds in order. */
export const pairedRounds = (ms: ReadonlyArray<Measurement>): ReadonlyArray<PairedRound> => {
  const rounds = [...new Set(ms.flatMap((m) => m.round === undefined ? [] : [m.round]))].sort((a, b) => a - b)
  return rounds.map((round) => {
    const inRound = ms.filter((m) => m.round === round)
    const s3 = best(inRound, "s3-limit")
    const combined = best(inRound, "combined-limit")
    const defaults = inRound.find((m) => isDefaults(m) && ok(m))
    return {
      round,
      migratorVsS3: ratio("", defaults, s3).mib,
      migratorVsCombined: ratio("", defaults, combined).mib,
      combinedVsS3: ratio("", combined, s3).mib
    }
  })
}

const defined = (xs: ReadonlyArray<number | undefined>): ReadonlyArray<number> =>
  xs.filter((x): x is number => x !== undefined)

/**
 * Ratios of the migrator with defaults (and tuned) against the two limits and the naive baseline, and the issue's
 * targets: defaults >= 80% of the slower limit, >= 5x naive, peak RSS <= 200 MiB (300 with 1 GiB objects), CPU per
 * object <= 1.1x the combined client's and <= rclone's, faster than rclone.
 *
 * With repeated rounds, the first target is judged on the median of the per-round ratios when the slower limit is the
 * S3 write limit (the rounds repeat it; the PostgreSQL limit is measured once), and the RSS target on the worst
 * migrator run with defaults.
 */
export const verdict = (ms: ReadonlyArray<Measurement>, mixName: string): Verdict => {
  const pg = best(ms, "pg-limit")
  const s3 = best(ms, "s3-limit")
  const naive = best(ms, "naive")
  const combined = best(ms, "combined-limit")
  const migrators = ms.filter((m) => m.kind === "migrator")
  const allDefaults = migrators.filter(isDefaults)
  const defaults = allDefaults[0]
  const tuned = migrators.filter((m) => !isDefaults(m) && ok(m)).sort((a, b) => mibPerSec(b) - mibPerSec(a))[0]
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
  if (combined !== undefined) ratios.push(ratio("combined limit / S3 write limit", combined, s3))
  const rounds = pairedRounds(ms)
  const roundMedians = {
    migratorVsS3: median(defined(rounds.map((r) => r.migratorVsS3))),
    migratorVsCombined: median(defined(rounds.map((r) => r.migratorVsCombined))),
    combinedVsS3: median(defined(rounds.map((r) => r.combinedVsS3)))
  }
  const roundRatios = defined(rounds.map((r) => r.migratorVsS3))
  const useRounds = slower !== undefined && slower.kind === "s3-limit" && roundRatios.length >= 2
  const vsLimit = ratio("", defaults, slower)
  const limitRatio = useRounds ? roundMedians.migratorVsS3 : vsLimit.mib
  const limitDetail = limitRatio === undefined
    ? "not measured"
    : useRounds
    ? `${fmtPct(limitRatio)} of the S3 write limit of the same round, median of ${roundRatios.length} rounds ` +
      `(${fmtPct(Math.min(...roundRatios))} to ${fmtPct(Math.max(...roundRatios))})`
    : `${fmtPct(limitRatio)} of ${slower?.name ?? "?"}`
  const vsNaive = ratio("", defaults, naive)
  const rssRuns = allDefaults.filter((m) => ok(m) && m.peakRssBytes !== undefined)
  const worstRss = rssRuns.length === 0 ? undefined : Math.max(...rssRuns.map((m) => m.peakRssBytes!))
  const rssTarget = rssTargetBytes(mixName)
  const cpu = cpuFigures(ms)
  const fastestPeer = best(ms, "peer")
  const medianDefaultsMib = median(allDefaults.filter(ok).map(mibPerSec))
  const targets: Array<Target> = [
    {
      label: "migrator (defaults) >= 80% of the slower limit",
      pass: limitRatio === undefined ? undefined : limitRatio >= 0.8,
      detail: limitDetail
    },
    {
      label: "migrator (defaults) >= 5x naive",
      pass: vsNaive.mib === undefined ? undefined : vsNaive.mib >= 5,
      detail: vsNaive.mib === undefined ? "not measured" : `${fmtNum(vsNaive.mib)}x (objects/s: ${fmtNum(vsNaive.obj)}x)`
    },
    {
      label: `migrator (defaults) peak RSS <= ${fmtMiB(rssTarget)} MiB (mix ${mixName})`,
      pass: worstRss === undefined ? undefined : worstRss <= rssTarget,
      detail: worstRss === undefined
        ? "not measured"
        : rssRuns.length === 1
        ? `${fmtMiB(worstRss)} MiB`
        : `${fmtMiB(worstRss)} MiB, the highest of ${rssRuns.length} runs`
    },
    {
      label: "migrator (defaults) CPU-s per 1000 objects <= 1.1x the combined client's",
      pass: cpu.migrator === undefined || cpu.combined === undefined ? undefined : cpu.migrator <= 1.1 * cpu.combined,
      detail: cpu.migrator === undefined || cpu.combined === undefined
        ? "not measured"
        : `${fmtNum(cpu.migrator)} vs ${fmtNum(cpu.combined)} (${fmtNum(cpu.migrator / cpu.combined)}x; medians of the runs)`
    },
    {
      label: "migrator (defaults) CPU-s per 1000 objects <= rclone's",
      pass: cpu.migrator === undefined || cpu.rclone === undefined ? undefined : cpu.migrator <= cpu.rclone,
      detail: cpu.migrator === undefined || cpu.rclone === undefined
        ? "not measured"
        : `${fmtNum(cpu.migrator)} vs ${fmtNum(cpu.rclone)} (the fastest rclone run)`
    },
    {
      label: "migrator (defaults) faster than rclone from local files",
      pass: medianDefaultsMib === undefined || !ok(fastestPeer) ? undefined : medianDefaultsMib > mibPerSec(fastestPeer),
      detail: medianDefaultsMib === undefined || !ok(fastestPeer)
        ? "not measured"
        : `${fmtNum(medianDefaultsMib)} MiB/s (median of the runs) vs ${fmtNum(mibPerSec(fastestPeer))} MiB/s`
    }
  ]
  return { ratios, rounds, roundMedians, targets, cpu }
}

export interface CpuFigures {
  /** CPU-s per 1000 objects: the median of the migrator's runs with defaults, of the combined client's runs, of the
   * S3-put client's full runs (probes left out), and the fastest rclone run's. */
  readonly migrator: number | undefined
  readonly combined: number | undefined
  readonly s3Put: number | undefined
  readonly rclone: number | undefined
}

export const cpuFigures = (ms: ReadonlyArray<Measurement>): CpuFigures => {
  const of = (xs: ReadonlyArray<Measurement>) => median(defined(xs.filter(ok).map(cpuPer1000)))
  const peer = best(ms, "peer")
  return {
    migrator: of(ms.filter(isDefaults)),
    combined: of(ms.filter((m) => m.kind === "combined-limit")),
    s3Put: of(ms.filter((m) => m.kind === "s3-limit" && !m.name.includes("probe"))),
    rclone: peer === undefined ? undefined : cpuPer1000(peer)
  }
}

export const renderCpuFigures = (c: CpuFigures): string =>
  `CPU-s per 1000 objects: migrator (defaults) ${fmtNum(c.migrator)}, combined client ${fmtNum(c.combined)}, ` +
  `S3-put client ${fmtNum(c.s3Put)}, rclone ${fmtNum(c.rclone)}`

export const renderVerdict = (v: Verdict): string => {
  const lines = v.ratios.map((r) =>
    `  ${r.label.padEnd(44)} ${r.mib === undefined ? "–" : `${fmtNum(r.mib)}x`} by MiB/s` +
    (r.obj === undefined ? "" : `, ${fmtNum(r.obj)}x by objects/s`)
  )
  const rounds = v.rounds.length === 0 ? [] : [
    "",
    "Within each round (measured back to back, on the same server state):",
    ...v.rounds.map((r) =>
      `  round ${r.round}: migrator (defaults) / S3 write limit ${fmtPct(r.migratorVsS3)}, ` +
      `/ combined limit ${fmtPct(r.migratorVsCombined)}; combined limit / S3 write limit ${fmtPct(r.combinedVsS3)}`
    ),
    ...(v.rounds.length < 2 ? [] : [
      `  median: migrator / S3 ${fmtPct(v.roundMedians.migratorVsS3)}, ` +
      `migrator / combined ${fmtPct(v.roundMedians.migratorVsCombined)}, combined / S3 ${fmtPct(v.roundMedians.combinedVsS3)}`
    ])
  ]
  const targets = v.targets.map((t) => `${t.pass === undefined ? "SKIP" : t.pass ? "PASS" : "FAIL"}  ${t.label}: ${t.detail}`)
  return ["Ratios:", ...lines, ...rounds, "", renderCpuFigures(v.cpu), "", "Targets:", ...targets].join("\n")
}

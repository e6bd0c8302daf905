/**
 * What the measurements say: the migrator's ratios against the limits, the naive baseline and rclone, the ratios
 * within each round, CPU per object, and the targets as pass/fail. Pure code, no I/O: the unit tests check it
 * directly.
 */
import { fmtMiB, fmtNum, fmtPct } from "./Format.ts"
import { best, cpuPer1000, type Kind, type Measurement, MiB, mibPerSec, ok, objPerSec } from "./Measurement.ts"

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

/** The peak RSS targets: 200 MiB on the default and smaller mixes, 300 MiB with 1 GiB objects (`huge`). */
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
 * object <= 1.1x the combined client's and <= rclone's, >= 85% of the S3 write limit and >= 95% of the combined
 * client's rate (issue 16's, within a round), faster than rclone.
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
    rateTarget(
      "migrator (defaults) >= 85% of the S3 write limit (issue 16)",
      0.85,
      roundRatios,
      ratio("", defaults, s3).mib,
      "the S3 write limit"
    ),
    rateTarget(
      "migrator (defaults) >= 95% of the combined client's rate",
      0.95,
      defined(rounds.map((r) => r.migratorVsCombined)),
      ratio("", defaults, combined).mib,
      "the combined client's"
    ),
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

/**
 * A rate target of issue 16, judged within a round (the median of the rounds' ratios) when rounds were measured, else
 * on the one ratio of the whole bench.
 */
const rateTarget = (
  label: string,
  threshold: number,
  perRound: ReadonlyArray<number>,
  single: number | undefined,
  of: string
): Target => {
  const roundMedian = median(perRound)
  const value = roundMedian ?? single
  return {
    label,
    pass: value === undefined ? undefined : value >= threshold,
    detail: value === undefined
      ? "not measured"
      : roundMedian !== undefined
      ? `${fmtPct(roundMedian)} of ${of} in the same round, median of ${perRound.length} round${perRound.length === 1 ? "" : "s"}`
      : `${fmtPct(value)} of ${of}`
  }
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

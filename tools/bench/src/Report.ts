/**
 * The printed report: the table of measurements, then the ratios, the CPU line and the target lines of a `Verdict`.
 * Pure code, no I/O: the unit tests check it directly.
 */
import { fmtMiB, fmtNum, fmtPct, fmtSec, renderTable } from "./Format.ts"
import { cpuPer1000, type Measurement, mibPerSec, objPerSec } from "./Measurement.ts"
import type { CpuFigures, Verdict } from "./Verdict.ts"

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

/**
 * What one measurement produced (the rows of the table), its rates, and which measurements count for a comparison.
 * Pure code, no I/O.
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

export const MiB = 1024 * 1024

export const mibPerSec = (m: Measurement): number => m.wallMs <= 0 ? 0 : m.bytes / MiB / (m.wallMs / 1000)
export const objPerSec = (m: Measurement): number => m.wallMs <= 0 ? 0 : m.objects / (m.wallMs / 1000)
/** CPU seconds of the process doing the work per 1000 objects moved (`undefined` without CPU or objects). */
export const cpuPer1000 = (m: Measurement): number | undefined =>
  m.cpuMs === undefined || m.objects <= 0 ? undefined : m.cpuMs / m.objects

/** A measurement to compare with: it succeeded and moved bytes (one that found nothing to do proves nothing). */
export const ok = (m: Measurement | undefined): m is Measurement =>
  m !== undefined && m.error === undefined && m.wallMs > 0 && m.bytes > 0

/** The fastest successful measurement of a kind (by MiB/s). */
export const best = (ms: ReadonlyArray<Measurement>, kind: Kind): Measurement | undefined =>
  ms.filter((m) => m.kind === kind && ok(m)).sort((a, b) => mibPerSec(b) - mibPerSec(a))[0]

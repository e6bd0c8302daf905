/**
 * The counters of one verify run: what was checked and found, what the listing cost. One mutable record owned by the
 * run (the merge, the checks and the monitor run in one process; every update is a plain increment), read by the
 * monitor and the final summary.
 */
import type { Problem } from "./Domain.ts"

export class Progress {
  /** Rows with `sha2` set that were compared with the listing. */
  checked = 0
  ok = 0
  readonly bad: Record<Problem, number> = {
    Missing: 0,
    WrongSize: 0,
    WrongContent: 0,
    WrongContentType: 0,
    MalformedSha2: 0
  }
  /** Bytes of the rows checked (by their `size`). */
  checkedBytes = 0
  /** Objects listed (in range). */
  listed = 0
  /** ListObjectsV2 requests sent. */
  listRequests = 0
  /** Objects no row references. */
  orphans = 0
  orphanBytes = 0
  /** `--deep`: objects downloaded and hashed, and their bytes. */
  downloaded = 0
  downloadedBytes = 0
  /** `--content-type` without `--deep`: HEAD requests. */
  heads = 0
  /** `--repair`: rows whose sha2 was set back to NULL, and rows left alone because they changed meanwhile. */
  repaired = 0
  repairSkipped = 0
  /** Objects with wrong content deleted by `--repair`. */
  deletedObjects = 0
  /** Rows in the range when the run started (for progress and ETA), once counted. */
  total: number | undefined = undefined
  /** The last `sha2` whose row was checked: where `--from-sha2` resumes an interrupted run. */
  lastSha2: string | undefined = undefined
  /**
   * `--repair`: the `sha2` of the first bad row found and not yet reset (its batch not done). A run that stops must
   * resume there, not after `lastSha2`, or that row would never be repaired.
   */
  unrepaired: string | undefined = undefined
  /** Retried infrastructure operations. */
  retries = 0

  get badRows(): number {
    let n = 0
    for (const k of Object.keys(this.bad) as Array<Problem>) n += this.bad[k]
    return n
  }
}

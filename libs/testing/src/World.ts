/**
 * The in-memory world the fakes share: a `_nice_binary` table, its large objects, a bucket, the logs of every put and
 * commit, the fault knobs, and the invariant violations the fakes detected. Plain mutable state, inspected by tests.
 *
 * The table is a list of rows with a hidden row id (like a ctid), not a map keyed by `hash`: the original schema has no
 * unique constraint on `hash`, so two rows may carry the same hash (the same content stored twice). The fakes treat
 * them the way SQL keyed by `hash` would: a commit for a hash sets `sha2` on every still-NULL row with that hash.
 */
import type { CommitEntry, CommitResult } from "@lo-migrate/core"
import type * as Duration from "effect/Duration"
import { createHash } from "node:crypto"

export interface FakeRow {
  /** Hidden row id: orders rows with equal hashes and tells duplicates apart. */
  readonly id: number
  readonly hash: string
  readonly oid: number | null
  readonly size: number
  readonly mimeType: string | null
  sha2: string | null
}

export interface BucketObject {
  readonly bytes: Uint8Array
  /** As sent by the put; `null` (or an empty string) means the store's default Content-Type. */
  readonly contentType: string | null
  readonly md5Base64: string
}

export type Operation = "page" | "count" | "read" | "readBatch" | "put" | "head" | "commit"

export interface PutRecord {
  readonly seq: number
  readonly run: number
  readonly key: string
  readonly size: number
  readonly outcome: "Uploaded" | "AlreadyPresent" | "Failed"
}

export interface CommitRecord {
  readonly seq: number
  readonly run: number
  readonly entries: ReadonlyArray<CommitEntry>
  /** One result per entry. */
  readonly result: ReadonlyArray<CommitResult>
}

/**
 * Fault knobs. Counters ("next N ...") are decremented as faults fire, so a test can set them before or during a run.
 */
export interface Faults {
  /** The next N page queries of the source fail with a retryable `DatabaseError`. */
  sourceFailures: number
  /** The next N `read`/`readBatch` calls fail with a retryable `DatabaseError`. */
  readFailures: number
  /** The next N puts fail with a retryable `StorageError` (nothing is stored). */
  storeFailures: number
  /** Every put (and `check`) fails with a non-retryable `StorageError` while set. */
  storeBroken: boolean
  /** The next N commits fail (nothing is applied). */
  commitFailures: number
  /** Whether those commit failures say `retryable`. */
  commitFailureRetryable: boolean
  /** After this many more completed puts, the fake crashes (the last put is stored, then the crash). */
  crashAfterPuts: number | undefined
  /** After this many more applied commits, the fake crashes (the last commit is applied, then the crash). */
  crashAfterCommits: number | undefined
  /** How a crash shows: a defect (`Effect.die`) or an interruption of the calling fiber. */
  crashMode: "die" | "interrupt"
  /** Delay before an operation does its work (`undefined`: none). Called once per operation. */
  latency: (op: Operation) => Duration.Input | undefined
}

export const defaultFaults = (): Faults => ({
  sourceFailures: 0,
  readFailures: 0,
  storeFailures: 0,
  storeBroken: false,
  commitFailures: 0,
  commitFailureRetryable: true,
  crashAfterPuts: undefined,
  crashAfterCommits: undefined,
  crashMode: "die",
  latency: () => undefined
})

/** Reader bookkeeping: what is alive right now and the peaks, so tests can prove bounds and the absence of leaks. */
export interface ReaderStats {
  /** Objects read and not yet released. */
  liveObjects: number
  peakLiveObjects: number
  /** Bytes of in-memory bodies read and not yet released. */
  liveMemoryBytes: number
  peakLiveMemoryBytes: number
  /** Bytes of all bodies (in memory or spilled) read and not yet released. */
  liveBytes: number
  peakLiveBytes: number
  /** Temp files that exist right now. */
  readonly liveSpills: Set<string>
  spilled: number
  objectsRead: number
}

export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation"
}

export interface RowInit {
  readonly hash: string
  readonly oid: number | null
  readonly size: number
  readonly mimeType: string | null
  readonly sha2?: string | null
}

export const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")
export const sha1Hex = (bytes: Uint8Array): string => createHash("sha1").update(bytes).digest("hex")

export class World {
  readonly rows: Array<FakeRow> = []
  readonly largeObjects = new Map<number, Uint8Array>()
  readonly bucket = new Map<string, BucketObject>()
  readonly puts: Array<PutRecord> = []
  readonly commits: Array<CommitRecord> = []
  readonly violations: Array<string> = []
  readonly faults: Faults = defaultFaults()
  readonly reader: ReaderStats = {
    liveObjects: 0,
    peakLiveObjects: 0,
    liveMemoryBytes: 0,
    peakLiveMemoryBytes: 0,
    liveBytes: 0,
    peakLiveBytes: 0,
    liveSpills: new Set(),
    spilled: 0,
    objectsRead: 0
  }
  /** Operation counts by kind, and in total. */
  readonly operations: Record<Operation, number> = {
    page: 0,
    count: 0,
    read: 0,
    readBatch: 0,
    put: 0,
    head: 0,
    commit: 0
  }
  operationCount = 0
  /** Called synchronously at the start of every fake operation (after counting it). */
  readonly listeners: Array<(op: Operation, n: number) => void> = []
  /** A run number the logs are tagged with; tests bump it between runs. */
  run = 0
  /** Rows by hash (kept in step by `insertRow` / `deleteRows`; use those rather than editing `rows`). */
  private readonly byHash = new Map<string, Array<FakeRow>>()
  private sorted: Array<FakeRow> | undefined
  private nextRowId = 1
  private nextOid = 10_000
  private seq = 0

  nextSeq(): number {
    return ++this.seq
  }

  /** Adds a large object and returns its oid. */
  addLargeObject(bytes: Uint8Array, oid?: number): number {
    const id = oid ?? this.nextOid++
    this.largeObjects.set(id, bytes)
    return id
  }

  insertRow(init: RowInit): FakeRow {
    const row: FakeRow = {
      id: this.nextRowId++,
      hash: init.hash,
      oid: init.oid,
      size: init.size,
      mimeType: init.mimeType,
      sha2: init.sha2 ?? null
    }
    this.rows.push(row)
    const group = this.byHash.get(row.hash)
    if (group === undefined) this.byHash.set(row.hash, [row])
    else group.push(row)
    this.sorted = undefined
    return row
  }

  /** The rows carrying `hash` (as `WHERE hash = $1` would find them). */
  rowsWithHash(hash: string): ReadonlyArray<FakeRow> {
    return this.byHash.get(hash) ?? []
  }

  /** Rows ordered by (hash, id); cached until the next insert or delete. */
  rowsInKeyOrder(): ReadonlyArray<FakeRow> {
    if (this.sorted === undefined) {
      this.sorted = [...this.rows].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.id - b.id))
    }
    return this.sorted
  }

  /** A valid row for `bytes` (SHA-1 hash, real size, a fresh large object). */
  insertContent(bytes: Uint8Array, mimeType: string | null = "application/octet-stream"): FakeRow {
    return this.insertRow({ hash: sha1Hex(bytes), oid: this.addLargeObject(bytes), size: bytes.byteLength, mimeType })
  }

  deleteRows(hash: string): number {
    let removed = 0
    for (let i = this.rows.length - 1; i >= 0; i--) {
      if (this.rows[i]!.hash === hash) {
        this.rows.splice(i, 1)
        removed++
      }
    }
    this.byHash.delete(hash)
    this.sorted = undefined
    return removed
  }

  /** Fault knob: the row's large object disappears (`lo_unlink` behind the row's back). */
  removeLargeObject(oid: number): void {
    this.largeObjects.delete(oid)
  }

  /** Fault knob: flips one byte of a large object (same size), so its content no longer matches the row's SHA-1. */
  corruptLargeObject(oid: number, at = 0): void {
    const bytes = this.largeObjects.get(oid)
    if (bytes === undefined) return
    const copy = bytes.byteLength === 0 ? new Uint8Array([0x2a]) : bytes.slice()
    if (bytes.byteLength > 0) copy[at % copy.byteLength] = copy[at % copy.byteLength]! ^ 0xff
    this.largeObjects.set(oid, copy)
  }

  operation(op: Operation): void {
    this.operations[op]++
    this.operationCount++
    for (const listener of [...this.listeners]) listener(op, this.operationCount)
  }

  /** Calls `f` once, at the start of the `n`-th operation from now (counting every kind). */
  afterOperations(n: number, f: () => void): void {
    const target = this.operationCount + n
    const listener = (_op: Operation, count: number) => {
      if (count >= target) {
        const i = this.listeners.indexOf(listener)
        if (i >= 0) this.listeners.splice(i, 1)
        f()
      }
    }
    this.listeners.push(listener)
  }

  violation(message: string): InvariantViolation {
    this.violations.push(message)
    return new InvariantViolation(message)
  }

  /** Rows, sorted by id, as plain data: compare two worlds' final states with this. */
  tableState(): Array<{ id: number; hash: string; sha2: string | null }> {
    return [...this.rows].sort((a, b) => a.id - b.id).map((r) => ({ id: r.id, hash: r.hash, sha2: r.sha2 }))
  }

  /** The bucket as plain data (key -> sha256 of the bytes, size, content type), sorted by key. */
  bucketState(): Array<{ key: string; sha256: string; size: number; contentType: string | null }> {
    return [...this.bucket.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, o]) => ({ key, sha256: sha256Hex(o.bytes), size: o.bytes.byteLength, contentType: o.contentType }))
  }

  /** A deep copy of the table, large objects and bucket (not logs, faults or stats): run the same input twice. */
  clone(): World {
    const w = new World()
    for (const r of this.rows) {
      const copy = { ...r }
      w.rows.push(copy)
      const group = w.byHash.get(copy.hash)
      if (group === undefined) w.byHash.set(copy.hash, [copy])
      else group.push(copy)
    }
    for (const [k, v] of this.largeObjects) w.largeObjects.set(k, v)
    for (const [k, v] of this.bucket) w.bucket.set(k, v)
    w.nextRowId = this.nextRowId
    w.nextOid = this.nextOid
    return w
  }
}

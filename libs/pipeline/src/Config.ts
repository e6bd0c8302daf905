/**
 * Configuration of the pipeline: concurrency per stage, queue sizes, commit batching, retry policy; its validation
 * (every count a positive integer, errors naming the command-line option) and the memory bound it implies.
 */
import { defaultRetry, type RetryOptions } from "@lo-migrate/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

export interface PipelineConfig {
  /** `--receiver-threads`: concurrent LoReader reads (a read of a batch of small rows counts once). */
  readonly readers: number
  /** `--storer-threads`: concurrent ObjectStore puts. */
  readonly storers: number
  /** `--committer-threads`: concurrent commit transactions. */
  readonly committers: number
  /** `--receiver-queue`: rows waiting to be read. */
  readonly readQueue: number
  /** `--storer-queue`: read objects waiting to be uploaded. */
  readonly storeQueue: number
  /** `--committer-queue`: uploaded objects waiting to be committed. */
  readonly commitQueue: number
  /** `--commit-chunk`: rows per commit transaction. */
  readonly commitChunk: number
  /** A partial batch is committed after this long (counted from its first row). */
  readonly commitLinger: Duration.Input
  readonly retry: RetryOptions
  /**
   * Rows read together with one `LoReader.readBatch` call, at most (default 64; 1 turns batching off). Only rows of at
   * most `readBatchObjectMax` bytes are grouped, and only rows already waiting in the read queue: batching never waits.
   * A batch goes on past bigger rows; up to this many of them are set aside and read next, one by one (ReadUnits.ts).
   */
  readonly readBatchRows?: number
  /** Rows up to this many bytes may be grouped into one `readBatch` call (default 128 KiB). */
  readonly readBatchObjectMax?: number
  /**
   * Optional cap on the bytes of objects read and not yet uploaded, in memory or spilled to temp files alike (by the
   * rows' sizes). Reads wait, first come first served, until their bytes fit; an object larger than the cap waits
   * until it is alone. Without it, the bound is structural: see `inFlightBound`.
   */
  readonly maxInFlightBytes?: number
  /**
   * Optional cap on the memory held by objects in memory (read and not yet uploaded): a read reserves its rows of at
   * most `inMemoryObjectMax` bytes at their size (bigger ones, spilled to temp files by the reader, nothing), and once
   * read its in-memory bodies are charged the distinct `ArrayBuffer`s they are views into (a buffer shared by several
   * bodies once; InFlight.ts). Reads wait, first come first served, until their bytes fit. This bounds memory by
   * configuration whatever the object sizes, without holding back big objects, which stream through a temp file.
   */
  readonly maxInMemoryBytes?: number
  /** The reader's in-memory limit (objects above it are spilled); used by `maxInMemoryBytes`. Default: no limit. */
  readonly inMemoryObjectMax?: number
  /** Optional throttle: rows entering the read stage per second, at most (Throttle.ts). */
  readonly maxObjectsPerSecond?: number
  /** Optional throttle: bytes read per second, at most, charged by the rows' sizes when their read starts. */
  readonly maxBytesPerSecond?: number
}

/** A validated config: the optional batching fields filled in. */
export interface ValidPipelineConfig extends PipelineConfig {
  readonly readBatchRows: number
  readonly readBatchObjectMax: number
}

/**
 * The original tool's defaults (receiver 2 / committer 2 threads, queues 8192 / 1024 / 8192, chunk 100), except 32
 * storers instead of 5: an S3 PUT is latency-bound (14 ms for a small object against Ceph RGW here), so 5 storers
 * capped the default bench mix at ~350 objects/s while the gateway took 620 with 32 in flight (tools/bench/README.md).
 */
export const defaultPipelineConfig: PipelineConfig = {
  readers: 2,
  storers: 32,
  committers: 2,
  readQueue: 8192,
  storeQueue: 1024,
  commitQueue: 8192,
  commitChunk: 100,
  commitLinger: "2 seconds",
  retry: defaultRetry,
  readBatchRows: 64,
  readBatchObjectMax: 128 * 1024
}

/** Up to 64 rows of at most 128 KiB in one statement (at most 8 MiB, one protocol message's worth, per batch). */
export const defaultReadBatchRows = 64
export const defaultReadBatchObjectMax = 128 * 1024

/** A configuration value the pipeline cannot run with. `option` is the command-line option (or field) to fix. */
export class InvalidPipelineConfig extends Schema.TaggedError<InvalidPipelineConfig>()("InvalidPipelineConfig", {
  option: Schema.String,
  value: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `invalid ${this.option}: ${this.reason} (got ${this.value})`
  }
}

const show = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number" || typeof value === "boolean" || value === undefined || value === null) {
    return String(value)
  }
  try {
    return JSON.stringify(value)
  } catch {
    return String(value)
  }
}

/** The positive-integer fields and the option each one comes from. */
export const pipelineOptionNames = {
  readers: "--receiver-threads",
  storers: "--storer-threads",
  committers: "--committer-threads",
  readQueue: "--receiver-queue",
  storeQueue: "--storer-queue",
  commitQueue: "--committer-queue",
  commitChunk: "--commit-chunk",
  readBatchRows: "readBatchRows",
  readBatchObjectMax: "readBatchObjectMax"
} as const

const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
/** A `Duration.Input` that parses to a finite duration (`nonNegative`: and not below zero). */
const FiniteDuration = (nonNegative: boolean) =>
  Schema.declare((u: unknown): u is Duration.Input => {
    const d = Duration.fromInput(u as Duration.Input)
    return Option.isSome(d) && Duration.isFinite(d.value) && (!nonNegative || Duration.toMillis(d.value) >= 0)
  })

/** One checked value: the option (or field) that sets it, where it is in the config, what it must be. */
interface Rule {
  readonly option: string
  readonly value: (config: ValidPipelineConfig) => unknown
  readonly schema: Schema.Top
  readonly reason: string
}

/** Every rule, in the order they are checked (`retry` before its fields). */
const rules: ReadonlyArray<Rule> = [
  ...(Object.entries(pipelineOptionNames) as Array<[keyof typeof pipelineOptionNames, string]>).map((
    [field, option]
  ): Rule => ({ option, value: (c) => c[field], schema: PositiveInt, reason: "must be a positive integer" })),
  ...(["maxInFlightBytes", "maxInMemoryBytes", "inMemoryObjectMax"] as const).map((field): Rule => ({
    option: field,
    value: (c) => c[field],
    schema: Schema.UndefinedOr(PositiveInt),
    reason: "must be a positive integer (bytes) when set"
  })),
  ...(["maxObjectsPerSecond", "maxBytesPerSecond"] as const).map((field): Rule => ({
    option: field,
    value: (c) => c[field],
    schema: Schema.UndefinedOr(Schema.Finite.check(Schema.isGreaterThan(0))),
    reason: "must be a positive number when set"
  })),
  {
    option: "commitLinger",
    value: (c) => c.commitLinger,
    schema: FiniteDuration(true),
    reason: "must be a finite, non-negative duration"
  },
  { option: "retry", value: (c) => c.retry, schema: Schema.ObjectKeyword, reason: "must be retry options" },
  {
    option: "retry.times",
    value: (c) => c.retry.times,
    schema: Schema.UndefinedOr(NonNegativeInt),
    reason: "must be a non-negative integer when set"
  },
  ...(["budget", "base", "cap"] as const).map((key): Rule => ({
    option: `retry.${key}`,
    value: (c) => c.retry[key],
    schema: FiniteDuration(false),
    reason: "must be a finite duration"
  }))
]

/**
 * Checks every value; the first bad one fails with an `InvalidPipelineConfig` naming its option. Returns the config
 * with the optional fields filled in.
 */
export const validatePipelineConfig = (
  config: PipelineConfig
): Effect.Effect<ValidPipelineConfig, InvalidPipelineConfig> =>
  Effect.suspend(() => {
    const full: ValidPipelineConfig = {
      ...config,
      readBatchRows: config.readBatchRows ?? defaultReadBatchRows,
      readBatchObjectMax: config.readBatchObjectMax ?? defaultReadBatchObjectMax
    }
    for (const rule of rules) {
      const value = rule.value(full)
      if (!Schema.is(rule.schema)(value)) {
        return Effect.fail(new InvalidPipelineConfig({ option: rule.option, value: show(value), reason: rule.reason }))
      }
    }
    return Effect.succeed(full)
  })

export interface InFlightBound {
  /** Most objects read and not yet released (uploaded or dropped) at any moment. */
  readonly objects: number
  /** Most bytes of in-memory bodies alive at any moment, given the reader keeps at most `inMemMax` bytes in memory. */
  readonly bytes: number
}

/**
 * What the pipeline can hold at once, by construction: each of the `readers` read slots plus the hand-off to the store
 * queue holds one unit (a single object, or a batch of up to `readBatchRows` objects of at most `readBatchObjectMax`
 * bytes); the store queue holds `storeQueue` objects; each of the `storers` upload slots holds one object. Rows and
 * commit entries are a few dozen bytes each and are not counted.
 */
export const inFlightBound = (config: PipelineConfig, inMemMax: number): InFlightBound => {
  const rows = config.readBatchRows ?? defaultReadBatchRows
  const objectMax = config.readBatchObjectMax ?? defaultReadBatchObjectMax
  const units = config.readers + 1
  const unitBytes = Math.max(inMemMax, rows * Math.min(objectMax, inMemMax))
  const structural = units * unitBytes + (config.storeQueue + config.storers) * inMemMax
  // A memory budget counts every in-memory body (the reader keeps at most `inMemMax` bytes in memory); one that
  // does not know the reader's limit bounds nothing for sure. A single object larger than a budget still passes alone.
  const memoryCap = config.maxInMemoryBytes !== undefined &&
      (config.inMemoryObjectMax === undefined || config.inMemoryObjectMax >= inMemMax)
    ? Math.max(config.maxInMemoryBytes, inMemMax)
    : Infinity
  const totalCap = config.maxInFlightBytes !== undefined ? Math.max(config.maxInFlightBytes, inMemMax) : Infinity
  return {
    objects: units * rows + config.storeQueue + config.storers,
    bytes: Math.min(structural, memoryCap, totalCap)
  }
}

/**
 * The options of `lo-migrate verify` beyond the shared connection options of `Options.ts` (which it reuses, with the
 * same environment variables), and their validation: every rule names its option, runs before anything connects, and
 * ends with exit code 2.
 */
import { renderShard, type Shard, sha256Bits, shardRange } from "@lo-migrate/core"
import { isKeyBound } from "@lo-migrate/verify/domain"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Flag from "effect/cli/Flag"
import { type MigratorConfig, resolve } from "./Config.ts"
import { positive, UsageError } from "./ConfigValues.ts"
import type { RawOptions } from "./Options.ts"

export const verifyDefaults = { concurrency: 16, sample: 1, seed: 0, repairBatch: 100 } as const

/** The environment variables of the verify options (exported for the check of deploy/kubernetes). */
export const flagEnv = {
  deep: "LO_MIGRATE_VERIFY_DEEP",
  concurrency: "LO_MIGRATE_VERIFY_CONCURRENCY",
  sample: "LO_MIGRATE_VERIFY_SAMPLE",
  seed: "LO_MIGRATE_VERIFY_SEED",
  fromSha2: "LO_MIGRATE_VERIFY_FROM_SHA2",
  toSha2: "LO_MIGRATE_VERIFY_TO_SHA2",
  orphans: "LO_MIGRATE_VERIFY_ORPHANS",
  contentType: "LO_MIGRATE_VERIFY_CONTENT_TYPE",
  repair: "LO_MIGRATE_VERIFY_REPAIR",
  repairBatch: "LO_MIGRATE_VERIFY_REPAIR_BATCH"
} as const

const text = (description: string, envName: string, defaultValue?: string | number | boolean) =>
  `${description} [env ${envName}]${defaultValue === undefined ? "" : ` (default: ${defaultValue})`}`

const bool = (name: string, key: keyof typeof flagEnv, description: string) =>
  Flag.Boolean(name).pipe(
    Flag.withDescription(text(description, flagEnv[key], false)),
    Flag.withFallbackConfig(Config.Boolean(flagEnv[key])),
    Flag.withDefault(false)
  )

const int = (name: string, key: "concurrency" | "seed" | "repairBatch", description: string) =>
  Flag.Int(name).pipe(
    Flag.withDescription(text(description, flagEnv[key], verifyDefaults[key])),
    Flag.withFallbackConfig(Config.Int(flagEnv[key])),
    Flag.withDefault<number>(verifyDefaults[key])
  )

export const verifyFlags = {
  deep: bool("deep", "deep", "Also download every object and check that its bytes hash to its key (SHA-256)"),
  concurrency: int("concurrency", "concurrency", "Downloads (--deep) or HEADs (--content-type) in flight"),
  sample: Flag.Finite("sample").pipe(
    Flag.withMetavar("FRACTION"),
    Flag.withDescription(text(
      "Download / HEAD only this fraction of the objects, chosen by key (the listing check still covers every row)",
      flagEnv.sample,
      verifyDefaults.sample
    )),
    Flag.withFallbackConfig(Config.Number(flagEnv.sample)),
    Flag.withDefault(verifyDefaults.sample)
  ),
  seed: int("seed", "seed", "Seed of --sample: the same seed picks the same keys"),
  fromSha2: Flag.String("from-sha2").pipe(
    Flag.withMetavar("HEX"),
    Flag.withDescription(text("Check only keys >= HEX (a hex prefix; resumes an interrupted check)", flagEnv.fromSha2)),
    Flag.withFallbackConfig(Config.String(flagEnv.fromSha2)),
    Flag.optional
  ),
  toSha2: Flag.String("to-sha2").pipe(
    Flag.withMetavar("HEX"),
    Flag.withDescription(text("Check only keys < HEX (a hex prefix)", flagEnv.toSha2)),
    Flag.withFallbackConfig(Config.String(flagEnv.toSha2)),
    Flag.optional
  ),
  orphans: bool("orphans", "orphans", "List the objects no row references (in the --report, else on stdout); not an error"),
  contentType: bool("content-type", "contentType", "Also compare each object's Content-Type with the row's mime_type"),
  repair: bool(
    "repair",
    "repair",
    "Set sha2 back to NULL for rows whose object is missing or wrong (and delete objects with wrong bytes), so that " +
      "the next migrate uploads them again; needs write rights"
  ),
  repairBatch: int("repair-batch", "repairBatch", "Rows reset per --repair transaction")
} as const

export interface RawVerifyOptions {
  readonly deep: boolean
  readonly concurrency: number
  readonly sample: number
  readonly seed: number
  readonly fromSha2: Option.Option<string>
  readonly toSha2: Option.Option<string>
  readonly orphans: boolean
  readonly contentType: boolean
  readonly repair: boolean
  readonly repairBatch: number
}

export interface VerifyConfig {
  /** The connection options, resolved exactly as for `migrate`. */
  readonly connection: MigratorConfig
  readonly deep: boolean
  readonly concurrency: number
  readonly sample: number
  readonly seed: number
  /** `--shard I/N`: the I-th of N equal ranges of the SHA-256 keys, intersected with `--from-sha2`/`--to-sha2`. */
  readonly shard: Shard | undefined
  /** The range checked: `--from-sha2`/`--to-sha2` and the shard's range, intersected. */
  readonly fromSha2: string | undefined
  readonly toSha2: string | undefined
  readonly orphans: boolean
  readonly contentType: boolean
  readonly repair: boolean
  readonly repairBatch: number
}

const bound = (option: string, value: Option.Option<string>) =>
  Option.match(value, {
    onNone: () => Effect.succeed(undefined),
    onSome: (v) =>
      isKeyBound(v)
        ? Effect.succeed(v)
        : Effect.fail(new UsageError({ option, detail: `must be 1 to 64 lowercase hex digits, got ${JSON.stringify(v)}` }))
  })

export const resolveVerify = Effect.fn("VerifyOptions.resolveVerify")(function*(
  raw: RawOptions,
  v: RawVerifyOptions
): Effect.fn.Return<VerifyConfig, UsageError> {
  const connection = yield* resolve(raw)
  if (!(Number.isFinite(v.sample) && v.sample > 0 && v.sample <= 1)) {
    return yield* new UsageError({ option: "--sample", detail: `must be a fraction in (0, 1], got ${v.sample}` })
  }
  if (v.sample < 1 && !v.deep && !v.contentType) {
    return yield* new UsageError({ option: "--sample", detail: "only applies to --deep or --content-type" })
  }
  const givenFrom = yield* bound("--from-sha2", v.fromSha2)
  const givenTo = yield* bound("--to-sha2", v.toSha2)
  if (givenFrom !== undefined && givenTo !== undefined && givenFrom >= givenTo) {
    return yield* new UsageError({ option: "--to-sha2", detail: `must sort after --from-sha2 (${givenFrom}), got ${givenTo}` })
  }
  // verify's shards cut the SHA-256 key space (the order of the listing and of its query), not the SHA-1 one
  const shard = connection.shard
  const range = shard === undefined ? { low: undefined, high: undefined } : shardRange(shard, sha256Bits)
  const fromSha2 = [givenFrom, range.low].reduce<string | undefined>(
    (a, b) => (a === undefined ? b : b === undefined ? a : a > b ? a : b),
    undefined
  )
  const toSha2 = [givenTo, range.high].reduce<string | undefined>(
    (a, b) => (a === undefined ? b : b === undefined ? a : a < b ? a : b),
    undefined
  )
  if (shard !== undefined && fromSha2 !== undefined && toSha2 !== undefined && fromSha2 >= toSha2) {
    return yield* new UsageError({
      option: "--shard",
      detail: `${renderShard(shard)} covers ${range.low ?? "(start)"} .. ${range.high ?? "(end)"}, which does not ` +
        `meet --from-sha2/--to-sha2 (${givenFrom ?? "(start)"} .. ${givenTo ?? "(end)"})`
    })
  }
  return {
    connection,
    deep: v.deep,
    concurrency: yield* positive("--concurrency", v.concurrency, 1024),
    sample: v.sample,
    seed: v.seed,
    shard,
    fromSha2,
    toSha2,
    orphans: v.orphans,
    contentType: v.contentType,
    repair: v.repair,
    repairBatch: yield* positive("--repair-batch", v.repairBatch, 100_000)
  } satisfies VerifyConfig
})

/**
 * The bench's command line (`effect/cli`): every option of the former `parseArgs` table with the same names, and the
 * settings derived from them (the `--quick` defaults). `--tuned`, `--migrator-arg` and `--node-arg` take options as
 * their value (`--tuned "--storer-threads 64"`), so `Args.attachValues` joins them with `=` before parsing.
 */
import * as Option from "effect/Option"
import * as Flag from "effect/cli/Flag"
import { parseMix, type Mix } from "./Mix.ts"

export const measurementNames = [
  "pg", "hash", "s3", "combined", "rclone", "naive", "migrator", "tuned", "throttle", "stages", "profile", "shards", "verify"
] as const
/**
 * What `--only` selects when it is not given (12.2 min with 2 rounds on the default mix on a quiet machine, README);
 * the CPU profile, tuned, throttle, stages, the shard processes and verify's rate on request.
 */
export const defaultOnly = "pg,hash,s3,combined,rclone,naive,migrator"

/** The options whose value is itself a list of options. */
export const optionValued: ReadonlySet<string> = new Set(["--tuned", "--migrator-arg", "--node-arg"])

const text = (name: string, metavar: string, description: string) =>
  Flag.String(name).pipe(Flag.withMetavar(metavar), Flag.withDescription(description), Flag.optional)
const repeated = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withMetavar("ARGS"), Flag.withDescription(description), Flag.between(0, 1000))

export const flags = {
  quick: Flag.Boolean("quick").pipe(
    Flag.withDescription("small mix (300 objects of 1-256 KiB + 2 of 8 MiB), fewer probes: CI's smoke run"),
    Flag.withDefault(false)
  ),
  mix: text("mix", "NAME|SPEC", "default | quick | huge | inmem | groups COUNT:MIN-MAX,... e.g. 20000:1K-256K,20:8M-64M"),
  seed: Flag.Int("seed").pipe(Flag.withDescription("RNG seed of the mix and of the bytes (default 42)"), Flag.withDefault(42)),
  only: text("only", "LIST", `comma list of: ${measurementNames.join(",")} (default: ${defaultOnly})`),
  readConcurrency: text("read-concurrency", "L", "PG read limit: connections to try (default 1,2)"),
  s3Concurrency: text(
    "s3-concurrency",
    "L",
    "S3 write limit: requests in flight to probe (default 8,16,32,64; all objects then go at the best one)"
  ),
  tuned: repeated("tuned", "migrator options to try as \"tuned\" (repeatable; the fastest is kept)"),
  migratorArg: repeated("migrator-arg", "extra option for every migrator run (repeatable)"),
  db: text("db", "NAME", "use this database name; with --keep-db a later run reuses it if seeded alike"),
  keepDb: Flag.Boolean("keep-db").pipe(Flag.withDescription("do not drop the database at the end"), Flag.withDefault(false)),
  nodeArg: repeated("node-arg", "extra Node/V8 flag for every migrator run, e.g. --node-arg --max-old-space-size=256"),
  rounds: Flag.Int("rounds").pipe(
    Flag.withDescription(
      "measure the S3 write limit, the combined limit and the migrator with defaults N times, back to back in a " +
        "rotating order (default 2, 1 with --quick); the 80% target is judged on the median of the ratios within a " +
        "round, the RSS target on the worst run"
    ),
    Flag.optional
  ),
  semiSpace: Flag.Int("semi-space").pipe(
    Flag.withMetavar("MiB"),
    Flag.withDescription("V8 --max-semi-space-size of the migrator runs (default 8, as the start target ships it)"),
    Flag.withDefault(8)
  ),
  oldSpaceFloor: Flag.Int("old-space-floor").pipe(
    Flag.withMetavar("MiB"),
    Flag.withDescription(
      "V8 --initial-old-space-size of the migrator runs: the old generation's allocation limit never drops below it " +
        "(default 128, as the start target ships it; 0: V8's own)"
    ),
    Flag.withDefault(128)
  ),
  heapGrowing: Flag.Int("heap-growing").pipe(
    Flag.withMetavar("PERCENT"),
    Flag.withDescription("V8 --heap-growing-percent of the migrator runs (default 0: V8's own, as the start target ships it)"),
    Flag.withDefault(0)
  ),
  shardCounts: text("shard-counts", "L", "shards: the shard process counts to compare side by side (default 1,2,4)"),
  out: text("out", "FILE", "also write the results as JSON (default tools/bench/results/<time>.json)"),
  pgUrl: text("pg-url", "URL", "admin PostgreSQL URL (default $PG_TEST_URL or postgres://postgres@127.0.0.1:5432/postgres)")
} as const

/** The parsed flags, as `Command.make` hands them to the handler. */
export type RawBenchOptions = { readonly [K in keyof typeof flags]: (typeof flags)[K] extends Flag.Flag<infer A> ? A : never }

/** The settings of one bench run, defaults applied. */
export interface BenchOptions {
  readonly quick: boolean
  readonly mix: Mix
  readonly seed: number
  readonly only: ReadonlySet<string>
  readonly readConcurrency: ReadonlyArray<number>
  readonly s3Concurrency: ReadonlyArray<number>
  readonly tunedCandidates: ReadonlyArray<string>
  readonly migratorExtra: ReadonlyArray<string>
  readonly nodeExtra: ReadonlyArray<string>
  readonly db: string | undefined
  readonly keepDb: boolean
  readonly rounds: number
  readonly semiSpace: number
  readonly oldSpaceFloor: number
  readonly heapGrowing: number
  readonly shardCounts: ReadonlyArray<number>
  readonly out: string | undefined
  readonly pgUrl: string | undefined
}

const list = (text: Option.Option<string>, dflt: ReadonlyArray<number>): ReadonlyArray<number> =>
  Option.match(text, {
    onNone: () => dflt,
    onSome: (t) => t.split(",").map((s) => Number(s.trim())).filter((n) => n > 0)
  })

/**
 * Applies the defaults (some depend on `--quick`); a bad `--rounds`, or a name in `--only` that is not one of
 * `measurementNames` (which would silently skip the measurement meant), is a usage error naming the option.
 */
export const resolveOptions = (raw: RawBenchOptions): BenchOptions | { readonly usage: string } => {
  const quick = raw.quick
  const rounds = Option.getOrElse(raw.rounds, () => (quick ? 1 : 2))
  if (!Number.isSafeInteger(rounds) || rounds < 1) {
    return { usage: `--rounds: expected a whole number of at least 1, got ${JSON.stringify(rounds)}` }
  }
  const only = Option.getOrElse(raw.only, () => defaultOnly).split(",").map((s) => s.trim()).filter((s) => s !== "")
  const unknown = only.filter((name) => !(measurementNames as ReadonlyArray<string>).includes(name))
  if (unknown.length > 0) {
    return {
      usage: `--only: unknown measurement ${unknown.map((name) => JSON.stringify(name)).join(", ")}; valid names: ${
        measurementNames.join(",")
      }`
    }
  }
  return {
    quick,
    mix: parseMix(Option.getOrElse(raw.mix, () => (quick ? "quick" : "default"))),
    seed: raw.seed,
    only: new Set(only),
    readConcurrency: list(raw.readConcurrency, quick ? [2] : [1, 2]),
    s3Concurrency: list(raw.s3Concurrency, quick ? [8, 32] : [8, 16, 32, 64]),
    tunedCandidates: raw.tuned.length > 0
      ? raw.tuned
      : quick
      ? ["--receiver-threads 4 --storer-threads 32 --commit-chunk 500"]
      : ["--receiver-threads 4 --storer-threads 64 --commit-chunk 500"],
    migratorExtra: raw.migratorArg,
    nodeExtra: raw.nodeArg,
    db: Option.getOrUndefined(raw.db),
    keepDb: raw.keepDb,
    rounds,
    semiSpace: raw.semiSpace,
    oldSpaceFloor: raw.oldSpaceFloor,
    heapGrowing: raw.heapGrowing,
    shardCounts: list(raw.shardCounts, [1, 2, 4]),
    out: Option.getOrUndefined(raw.out),
    pgUrl: Option.getOrUndefined(raw.pgUrl)
  }
}

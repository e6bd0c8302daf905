/**
 * The benchmark: seeds a throwaway database with a reproducible mix of large objects, then measures on the same data
 * the PostgreSQL read limit, the S3 write limit, a naive one-row-at-a-time baseline, and the migrator end to end (as a
 * separate process, with defaults and with tuned options), prints a table, the ratios and the targets, and
 * profiles the migrator.
 *
 *   npx node --conditions=development tools/bench/src/main.ts [--quick] [--mix default|quick|huge|SPEC] [options]
 *   bash tools/bench/bench.sh [--quick] [options]        (starts Ceph RGW if S3_ENDPOINT is unset)
 *
 * Run with --help for the options. The steps are in Limits.ts and MigratorSteps.ts, the report in Output.ts.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Command from "effect/cli/Command"
import { attachValues } from "./Args.ts"
import { measureHash, measurePgLimits, measureS3Limits } from "./Limits.ts"
import { measureDefaults, measureProfile, measureRounds, measureStages, measureThrottle, measureTuned } from "./MigratorSteps.ts"
import { describeMix } from "./Mix.ts"
import { flags, optionValued, resolveOptions } from "./Options.ts"
import { writeReport } from "./Output.ts"
import { fmtMiB } from "./Format.ts"
import { measureShards } from "./Shards.ts"
import { measureVerify } from "./VerifyRate.ts"
import { prepareDatabase, releaseDatabase } from "./Seeding.ts"
import { machine, makeSession, note, type Session } from "./Session.ts"

/** Some measurement failed (its row in the table says why): exit 1. */
class BenchFailed extends Data.TaggedError("BenchFailed")<{ readonly failed: number }> {}
/** A bad option value: exit 2 (after the message). */
class BenchUsage extends Data.TaggedError("BenchUsage")<{ readonly message: string }> {}

const measureAll = Effect.fn("bench.measureAll")(function*(session: Session) {
  const { only } = session.options
  if (only.has("pg")) yield* measurePgLimits(session)
  if (only.has("hash")) yield* measureHash(session)
  if (session.s3 === undefined) {
    return yield* note("S3_ENDPOINT / S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY not set: skipping everything that writes to S3")
  }
  yield* measureS3Limits(session)
  if (only.has("migrator")) yield* measureDefaults(session)
  yield* measureRounds(session)
  if (only.has("tuned")) yield* measureTuned(session)
  if (only.has("throttle")) yield* measureThrottle(session)
  if (only.has("stages")) yield* measureStages(session)
  if (only.has("profile")) yield* measureProfile(session)
  if (only.has("shards")) yield* measureShards(session)
  if (only.has("verify")) yield* measureVerify(session)
})

const bench = Command.make("bench", flags, Effect.fn("bench")(function*(raw) {
  const options = resolveOptions(raw)
  if ("usage" in options) return yield* new BenchUsage({ message: options.usage })
  const session = yield* makeSession(options)
  const startedAt = new Date(yield* Clock.currentTimeMillis)
  const header = [
    `lo-migrate bench ${startedAt.toISOString()}`,
    `machine: ${machine()}`,
    `mix: ${options.mix.name} = ${describeMix(options.mix)}, seed ${options.seed}: ${session.objects.length} objects, ${
      fmtMiB(session.bytes)
    } MiB`,
    `database: ${session.dbName}; S3: ${session.s3?.endpoint ?? "not configured"}`
  ].join("\n")
  yield* note(header)
  const seedLine = yield* prepareDatabase(session)
  yield* measureAll(session).pipe(Effect.ensuring(releaseDatabase(session)))
  const failed = yield* writeReport(session, { startedAt, header, seedLine })
  if (failed > 0) return yield* new BenchFailed({ failed })
})).pipe(
  Command.withDescription("lo-migrate throughput and memory against the limits of PostgreSQL and S3 on this machine. " +
    "S3 comes from S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION (bench.sh starts Ceph RGW for you).")
)

const program = Command.runWith(bench, { version: "0.1.0" })(attachValues(process.argv.slice(2), optionValued)).pipe(
  Effect.catchTag("BenchUsage", (e) => Effect.andThen(Console.error(e.message), Effect.sync(() => process.exit(2)))),
  Effect.catchTag("BenchFailed", (e) =>
    Effect.andThen(note(`${e.failed} measurement(s) failed (see the table)`), Effect.sync(() => process.exit(1)))),
  Effect.provide(NodeServices.layer)
)

NodeRuntime.runMain(program)

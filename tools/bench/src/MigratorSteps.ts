/**
 * The migrator's own measurements: with defaults (plus its start-up alone), repeated rounds next to the limits, the
 * tuned candidates, the throttle's accuracy, the instrumented stages and a CPU profile, each adding rows to the table
 * and sections to the report.
 */
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { mkdirSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { measureCombined, measureS3, bestS3Concurrency } from "./Limits.ts"
import { measureChild } from "./Proc.ts"
import { readProfile, renderProfile, summarize } from "./Profile.ts"
import { fmtNum } from "./Format.ts"
import { type Measurement, mibPerSec } from "./Measurement.ts"
import { finalStatus, type MigratorRun, runMigrator, shellWords, shippedMallocEnv, shippedNodeFlags } from "./Runs.ts"
import { addSection, note, paths, record, type Session } from "./Session.ts"
import { renderStages, type StageReport } from "./StageReport.ts"
import { renderThrottleAccuracy, throttleAccuracy } from "./ThrottleAccuracy.ts"

/** What the process costs before it moves a byte, then the migrator with defaults (round 1). */
export const measureDefaults = Effect.fn("MigratorSteps.defaults")(function*(session: Session) {
  const help = yield* measureChild(paths.node, [...shippedNodeFlags(session), paths.migratorMain, "--help"], {
    env: { ...shippedMallocEnv, ...process.env },
    cwd: paths.root
  })
  yield* record(session, [{
    name: "migrator start-up only (--help)",
    kind: "diagnostic",
    objects: 0,
    bytes: 0,
    wallMs: help.wallMs,
    cpuMs: help.cpuMs,
    peakRssBytes: help.peakRssBytes,
    ...(help.code === 0 ? {} : { error: `exit ${help.code}` })
  }])
  const r = yield* runMigrator(session, "migrator (defaults)", [])
  yield* record(session, [{ ...r.measurement, round: 1 }])
  yield* addSection(session, `### migrator (defaults): final status\n\n\`\`\`\n${finalStatus(r.stdout)}\n\`\`\``)
})

/**
 * Repeated rounds: the S3 limit, the combined limit and the migrator back to back, so that each ratio compares runs on
 * the same server state (a single run moves by +-15% here); the order rotates so no measurement always follows the same
 * one.
 */
export const measureRounds = Effect.fn("MigratorSteps.rounds")(function*(session: Session) {
  const { only, rounds } = session.options
  const repeated = (["s3", "combined", "migrator"] as const).filter((k) => only.has(k))
  for (let round = 2; round <= rounds && repeated.length > 0; round++) {
    const order = repeated.map((_, i) => repeated[(i + round - 1) % repeated.length]!)
    yield* note(`round ${round} of ${rounds}: ${order.join(", ")}`)
    const tag = (m: Measurement): Measurement => ({ ...m, name: `${m.name} (round ${round})`, round })
    for (const step of order) {
      const ms = step === "s3"
        ? yield* measureS3(session, `s3r${round}`, [yield* bestS3Concurrency(session)], 0)
        : step === "combined"
        ? yield* measureCombined(session, `combined-r${round}`)
        : [(yield* runMigrator(session, "migrator (defaults)", [])).measurement]
      yield* record(session, ms.map(tag))
    }
  }
})

/** Every tuned candidate; the fastest goes into the table. */
export const measureTuned = Effect.fn("MigratorSteps.tuned")(function*(session: Session) {
  const candidates = session.options.tunedCandidates
  let bestRun: MigratorRun | undefined
  for (const candidate of candidates) {
    const r = yield* runMigrator(session, `migrator (tuned: ${candidate})`, shellWords(candidate))
    yield* note(`  candidate ${candidate}: ${r.measurement.error ?? `${fmtNum(mibPerSec(r.measurement))} MiB/s`}`)
    if (r.measurement.error === undefined && (bestRun === undefined || mibPerSec(r.measurement) > mibPerSec(bestRun.measurement))) {
      bestRun = r
    }
    if (candidates.length > 1) yield* record(session, [{ ...r.measurement, name: `candidate: ${candidate}`, kind: "candidate" }])
  }
  if (bestRun !== undefined) {
    yield* record(session, [bestRun.measurement])
    yield* addSection(session, `### ${bestRun.measurement.name}: final status\n\n\`\`\`\n${finalStatus(bestRun.stdout)}\n\`\`\``)
  }
})

/**
 * The throttle's accuracy, by objects and by bytes. The limit must bind: half the rates of this session's "migrator
 * (defaults)" run when there is one (the run then lasts about twice as long), else limits that make the run last about
 * `seconds`.
 */
export const measureThrottle = Effect.fn("MigratorSteps.throttle")(function*(session: Session) {
  const { objects, bytes, options: { quick } } = session
  const unthrottled = (yield* Ref.get(session.measurements)).find((m) => m.name === "migrator (defaults)" && m.error === undefined)
  const seconds = unthrottled === undefined ? (quick ? 30 : 120) : (2 * unthrottled.wallMs) / 1000
  const perSecond = Math.max(5, Math.round(objects.length / seconds))
  const mibPerSecond = Math.max(0.1, Number((bytes / 1024 / 1024 / seconds).toFixed(2)))
  const rows: Array<string> = []
  for (
    const [resource, option, limit, total] of [
      ["objects", ["--max-objects-per-second", String(perSecond)], perSecond, objects.length],
      ["bytes", ["--max-bandwidth", String(mibPerSecond)], mibPerSecond * 1024 * 1024, bytes]
    ] as const
  ) {
    const r = yield* runMigrator(session, `migrator (throttled: ${option.join(" ")})`, [...option, "--log-format", "json"])
    yield* record(session, [{ ...r.measurement, kind: "diagnostic" }])
    const a = throttleAccuracy(r.stdout, resource, limit, total)
    rows.push(a === undefined ? `| ${resource} | ${option.join(" ")} | - | - | too short a run | - |` : renderThrottleAccuracy(a))
  }
  yield* addSection(
    session,
    "### Throttle accuracy: the read stage's rate over the throttled part of the run vs the limit (target: within 5%)\n\n" +
      "| limit on | limit | achieved | deviation | window | within 5% |\n| --- | --- | --- | --- | --- | --- |\n" +
      rows.join("\n")
  )
})

/** The pipeline with defaults, every port call timed (stages.ts). */
export const measureStages = Effect.fn("MigratorSteps.stages")(function*(session: Session) {
  const r = yield* runMigrator(session, "migrator pipeline, instrumented (stages.ts, defaults)", [], undefined, {})
  const last = r.stdout.trim().split("\n").pop() ?? ""
  if (r.measurement.error === undefined && last.startsWith("{")) {
    yield* addSection(
      session,
      `### Where the time goes: the pipeline with defaults, every port call timed (tools/bench/src/stages.ts)\n\n${
        renderStages(JSON.parse(last) as StageReport)
      }`
    )
  } else {
    yield* note(`stages: ${r.measurement.error ?? "no report"}`)
  }
})

/** A CPU profile of the migrator with defaults (not in the table: profiling adds overhead). */
export const measureProfile = Effect.fn("MigratorSteps.profile")(function*(session: Session) {
  const dir = join(paths.results, `profile-${session.runId}`)
  mkdirSync(dir, { recursive: true })
  const r = yield* runMigrator(session, "migrator (defaults, --cpu-prof)", [], dir)
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))
  if (file === undefined) return
  const summary = summarize(readProfile(join(dir, file)))
  yield* addSection(
    session,
    `### CPU profile of the migrator (defaults), ${join(dir, file).replace(`${paths.root}/`, "")}\n\n` +
      `wall ${fmtNum(r.measurement.wallMs / 1000)} s, CPU ${fmtNum((r.measurement.cpuMs ?? 0) / 1000)} s ` +
      `(profiling adds overhead; not in the table)\n\n${renderProfile(summary)}`
  )
})

/**
 * Shard processes side by side: for each N of `--shard-counts` (default 1, 2, 4), N migrator processes with
 * `--shard 0/N` ... `--shard N-1/N` start together on one fresh bucket and run until all exit; the measurement is the
 * whole table's throughput (wall time of the slowest process), the sum of their CPU, the largest RSS. Every row and
 * object is checked afterwards as for one process.
 */
import * as Effect from "effect/Effect"
import { cpuDelta, measureChild, sampleCpu } from "./Proc.ts"
import { fmtNum, fmtPct } from "./Format.ts"
import { type Measurement, mibPerSec, objPerSec } from "./Measurement.ts"
import { checkMigration, freshBucket, migratorArgv, migratorEnv } from "./Runs.ts"
import { addSection, note, paths, record, type Session } from "./Session.ts"

const runShards = Effect.fn("Shards.run")(function*(session: Session, count: number) {
  const { client, bucket } = yield* freshBucket(session)
  const sys0 = sampleCpu()
  const started = performance.now()
  const children = yield* Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    (i) =>
      measureChild(paths.node, migratorArgv(session, ["--shard", `${i}/${count}`]), {
        env: migratorEnv(session, bucket),
        cwd: paths.root
      }),
    { concurrency: "unbounded" }
  )
  const wallMs = performance.now() - started
  const sys1 = sampleCpu()
  const { done, bytes, problems } = yield* checkMigration(session, client, bucket, children)
  if (problems.length > 0) yield* note(`${count} shard processes: ${problems.join("; ")}`)
  const measurement: Measurement = {
    name: `migrator, ${count} shard process${count === 1 ? "" : "es"} side by side (--shard i/${count})`,
    kind: "diagnostic",
    objects: done,
    bytes,
    wallMs,
    cpuMs: children.reduce((sum, c) => sum + (c.cpuMs ?? 0), 0),
    peakRssBytes: Math.max(...children.map((c) => c.peakRssBytes ?? 0)),
    ...cpuDelta(sys0, sys1),
    note: `${count} process${count === 1 ? "" : "es"}`,
    ...(problems.length > 0 ? { error: problems.join("; ") } : {})
  }
  return measurement
})

/** Each shard count in turn; a section compares them with the single process. */
export const measureShards = Effect.fn("Shards.measure")(function*(session: Session) {
  const runs: Array<Measurement> = []
  for (const count of session.options.shardCounts) {
    const m = yield* runShards(session, count)
    yield* record(session, [m])
    runs.push(m)
  }
  const base = runs[0]
  const rows = runs.map((m) =>
    `| ${m.note} | ${fmtNum(m.wallMs / 1000)} | ${fmtNum(objPerSec(m))} | ${fmtNum(mibPerSec(m))} | ${
      base === undefined || base.error !== undefined ? "–" : `${fmtNum(objPerSec(m) / objPerSec(base))}×`
    } | ${fmtNum((m.cpuMs ?? 0) / 1000)} | ${fmtNum((m.pgCpuMs ?? 0) / 1000)} | ${fmtNum((m.cephCpuMs ?? 0) / 1000)} | ${
      fmtPct(m.machineBusy)
    } | ${m.error ?? "ok"} |`
  )
  yield* addSection(
    session,
    "### Shard processes side by side (one table, one bucket; wall time of the slowest)\n\n" +
      "| processes | wall s | obj/s | MiB/s | vs the first | migrators' CPU s | PG CPU s | Ceph CPU s | machine busy | check |\n" +
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + rows.join("\n")
  )
})

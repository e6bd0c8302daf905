/**
 * The bench's report: the header, the results table, the notes on its columns, the tuning candidates, the verdict on
 * the targets and the sections of the steps; printed on stdout and written as JSON and markdown under
 * tools/bench/results.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { renderVerdict, resultsTable } from "./Report.ts"
import { verdict } from "./Verdict.ts"
import { machine, note, paths, type Session } from "./Session.ts"

/** Prints and writes the report; returns how many measurements in the table failed. */
export const writeReport = Effect.fn("Output.write")(
  function*(session: Session, run: { readonly startedAt: Date; readonly header: string; readonly seedLine: string }) {
    const { options } = session
    const measurements = yield* Ref.get(session.measurements)
    const sections = yield* Ref.get(session.sections)
    const table = measurements.filter((m) => m.kind !== "candidate")
    const candidates = measurements.filter((m) => m.kind === "candidate")
    const report = [
      run.header,
      run.seedLine,
      "",
      resultsTable(table),
      "",
      "CPU s = user+system of the process doing the work (a child process each; the migrator's includes its start-up).",
      "PG / Ceph CPU s = all PostgreSQL backends / Ceph daemons meanwhile (shared servers: other work included).",
      "machine busy = share of both cores busy (all processes) during the measurement.",
      ...(candidates.length > 0 ? ["", "Tuning candidates (migrator options, full mix):", resultsTable(candidates)] : []),
      "",
      renderVerdict(verdict(table, options.mix.name)),
      ...sections.flatMap((s) => ["", s])
    ].join("\n")
    yield* Console.log(report)
    const out = options.out ?? join(paths.results, `${session.runId}.json`)
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(
      out,
      JSON.stringify(
        {
          startedAt: run.startedAt,
          machine: machine(),
          mix: options.mix,
          seed: options.seed,
          objects: session.objects.length,
          bytes: session.bytes,
          measurements,
          report
        },
        null,
        2
      )
    )
    writeFileSync(join(paths.results, options.quick ? "latest-quick.md" : `latest-${options.mix.name}.md`), `${report}\n`)
    yield* note(`results: ${out}`)
    return table.filter((m) => m.error !== undefined).length
  }
)

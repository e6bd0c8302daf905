/**
 * CPU time per object of alternative implementations of one operation, measured in one process: each variant runs the
 * same work, alternating (the order rotated each repetition, the first round a warm-up), and the medians of the
 * process's CPU time (user + system, `process.cpuUsage`) per object are printed with each variant's difference to the
 * first. `ONLY=1,3` (environment) runs only those variants (1-based), e.g. to profile one of them.
 */
import { Console, Effect } from "effect"

export const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** CPU microseconds per object of `effect` over `count` objects. */
export const cpuPer = <A, E, R>(count: number, effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const cpu0 = process.cpuUsage()
    return Effect.map(effect, () => {
      const cpu = process.cpuUsage(cpu0)
      return (cpu.user + cpu.system) / count
    })
  })

interface Row {
  readonly label: string
  readonly runs: ReadonlyArray<number>
}

/** Runs the variants alternating (order rotated each repetition), the first round a warm-up. */
export const compare = Effect.fnUntraced(function*(
  title: string,
  count: number,
  reps: number,
  variants_: ReadonlyArray<{ readonly label: string; readonly run: (rep: number) => Effect.Effect<unknown, unknown> }>,
  before: Effect.Effect<void, unknown> = Effect.void
) {
  let variants = variants_
  // ONLY=1,3 runs only those variants (1-based), e.g. to profile one of them (`node --cpu-prof`)
  const only = process.env["ONLY"]?.split(",").map(Number)
  if (only !== undefined) variants = variants.filter((_, i) => only.includes(i + 1))
  const runs = variants.map(() => [] as Array<number>)
  for (let rep = 0; rep <= reps; rep++) {
    for (let k = 0; k < variants.length; k++) {
      const v = (k + rep) % variants.length
      yield* before
      const us = yield* cpuPer(count, variants[v]!.run(rep))
      if (rep > 0) runs[v]!.push(us)
    }
  }
  const rows: Array<Row> = variants.map((v, i) => ({ label: v.label, runs: runs[i]! }))
  yield* Console.log(`\n${title} (${count} objects a run, median of ${reps} runs after a warm-up)`)
  const base = median(rows[0]!.runs)
  for (const r of rows) {
    const m = median(r.runs)
    yield* Console.log(
      `  ${r.label.padEnd(44)} ${m.toFixed(1).padStart(8)} us CPU/object  ${(m - base >= 0 ? "+" : "") + (m - base).toFixed(1)} ` +
        `  (${r.runs.map((x) => x.toFixed(0)).join(", ")})`
    )
  }
})


/** The bench's options as `resolveOptions` checks them: `--only` accepts the measurement names and nothing else. */
import { describe, expect, it } from "@effect/vitest"
import * as Option from "effect/Option"
import { defaultOnly, measurementNames, type RawBenchOptions, resolveOptions } from "../src/Options.ts"

/** The flags as `Command.make` hands them over when none is given, with `only` set. */
const raw = (only: string | undefined): RawBenchOptions => ({
  quick: false,
  mix: Option.none(),
  seed: 42,
  only: only === undefined ? Option.none() : Option.some(only),
  readConcurrency: Option.none(),
  s3Concurrency: Option.none(),
  tuned: [],
  migratorArg: [],
  db: Option.none(),
  keepDb: false,
  nodeArg: [],
  rounds: Option.none(),
  semiSpace: 8,
  oldSpaceFloor: 128,
  heapGrowing: 0,
  shardCounts: Option.none(),
  out: Option.none(),
  pgUrl: Option.none()
})

describe("--only", () => {
  it("selects the named measurements; without it, the default ones", () => {
    const some = resolveOptions(raw(" pg, verify ,"))
    expect("usage" in some).toBe(false)
    if (!("usage" in some)) expect([...some.only]).toEqual(["pg", "verify"])
    const dflt = resolveOptions(raw(undefined))
    if ("usage" in dflt) throw new Error(dflt.usage)
    expect([...dflt.only]).toEqual(defaultOnly.split(","))
    const all = resolveOptions(raw(measurementNames.join(",")))
    expect("usage" in all).toBe(false)
  })

  it("the default mode measures what a target needs, in 2 rounds, and profiles only on request (its 15-minute budget)", () => {
    const dflt = resolveOptions(raw(undefined))
    if ("usage" in dflt) throw new Error(dflt.usage)
    for (const name of ["pg", "s3", "combined", "rclone", "naive", "migrator"]) expect(dflt.only.has(name)).toBe(true)
    expect(dflt.only.has("profile")).toBe(false)
    expect(dflt.rounds).toBe(2)
  })

  it("a name that is not a measurement is a usage error naming the option, the name and the valid names", () => {
    const result = resolveOptions(raw("pg,verfy"))
    if (!("usage" in result)) throw new Error("expected a usage error for --only verfy")
    expect(result.usage).toBe(`--only: unknown measurement "verfy"; valid names: ${measurementNames.join(",")}`)
  })
})

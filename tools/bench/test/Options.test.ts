/** The bench's options as `resolveOptions` checks them: `--only` accepts the measurement names and nothing else. */
import { describe, expect, it } from "@effect/vitest"
import { defaultOnly, measurementNames, resolveOptions } from "../src/Options.ts"
import { rawOptions } from "./RawOptions.ts"

describe("--only", () => {
  it("selects the named measurements; without it, the default ones", () => {
    const some = resolveOptions(rawOptions(" pg, verify ,"))
    expect("usage" in some).toBe(false)
    if (!("usage" in some)) expect([...some.only]).toEqual(["pg", "verify"])
    const dflt = resolveOptions(rawOptions(undefined))
    if ("usage" in dflt) throw new Error(dflt.usage)
    expect([...dflt.only]).toEqual(defaultOnly.split(","))
    const all = resolveOptions(rawOptions(measurementNames.join(",")))
    expect("usage" in all).toBe(false)
  })

  it("the default mode measures what a target needs, in 2 rounds, and profiles only on request (its 15-minute budget)", () => {
    const dflt = resolveOptions(rawOptions(undefined))
    if ("usage" in dflt) throw new Error(dflt.usage)
    for (const name of ["pg", "s3", "combined", "rclone", "naive", "migrator"]) expect(dflt.only.has(name)).toBe(true)
    expect(dflt.only.has("profile")).toBe(false)
    expect(dflt.rounds).toBe(2)
  })

  it("a name that is not a measurement is a usage error naming the option, the name and the valid names", () => {
    const result = resolveOptions(rawOptions("pg,verfy"))
    if (!("usage" in result)) throw new Error("expected a usage error for --only verfy")
    expect(result.usage).toBe(`--only: unknown measurement "verfy"; valid names: ${measurementNames.join(",")}`)
  })
})

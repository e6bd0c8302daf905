import { describe, expect, it } from "@effect/vitest"
import { describeMix, logUniform, makeObjects, makeRng, parseMix, parseSize, presets, scaleMix, totalBytes } from "../src/Mix.ts"
import { batches } from "../src/Seed.ts"

describe("seeded RNG and mix", () => {
  it("the RNG is reproducible per seed and differs between seeds", () => {
    const a = makeRng(7)
    const b = makeRng(7)
    const c = makeRng(8)
    const xs = Array.from({ length: 100 }, () => a())
    expect(Array.from({ length: 100 }, () => b())).toEqual(xs)
    expect(Array.from({ length: 100 }, () => c())).not.toEqual(xs)
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true)
  })

  it("logUniform stays within bounds and is spread over the decades", () => {
    const rng = makeRng(1)
    const xs = Array.from({ length: 20_000 }, () => logUniform(rng, 1024, 256 * 1024))
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(1024)
    expect(Math.max(...xs)).toBeLessThanOrEqual(256 * 1024)
    // log-uniform: about half the objects below the geometric mean (16 KiB), not below the arithmetic mean
    const below = xs.filter((x) => x < 16 * 1024).length / xs.length
    expect(below).toBeGreaterThan(0.45)
    expect(below).toBeLessThan(0.55)
  })

  it("the default mix is the issue's: 20,000 of 1–256 KiB and 20 of 8–64 MiB, the same for the same seed", () => {
    const objects = makeObjects(presets["default"]!, 42)
    expect(objects).toHaveLength(20_020)
    expect(makeObjects(presets["default"]!, 42)).toEqual(objects)
    expect(makeObjects(presets["default"]!, 43)).not.toEqual(objects)
    const big = objects.filter((o) => o.size >= 8 * 1024 * 1024)
    expect(big).toHaveLength(20)
    expect(big.every((o) => o.size <= 64 * 1024 * 1024)).toBe(true)
    expect(new Set(objects.map((o) => o.id)).size).toBe(20_020)
    // shuffled: the big ones are not all at the end
    expect(objects.slice(0, 10_000).some((o) => o.size >= 8 * 1024 * 1024)).toBe(true)
    expect(describeMix(presets["default"]!)).toBe("20000 × 1 KiB–256 KiB + 20 × 8 MiB–64 MiB")
  })

  it("parses sizes and mixes", () => {
    expect(parseSize("1K")).toBe(1024)
    expect(parseSize("256KiB")).toBe(262_144)
    expect(parseSize("8M")).toBe(8 * 1024 * 1024)
    expect(parseSize("1g")).toBe(1024 ** 3)
    expect(parseSize("4096")).toBe(4096)
    expect(() => parseSize("8 parsecs")).toThrow()
    expect(parseMix("quick")).toBe(presets["quick"])
    expect(parseMix("10:1K-2K, 3:5M").groups).toEqual([
      { count: 10, min: 1024, max: 2048 },
      { count: 3, min: 5 * 1024 * 1024, max: 5 * 1024 * 1024 }
    ])
    expect(() => parseMix("10:2K-1K")).toThrow()
    expect(() => parseMix("10:0-1K")).toThrow()
    expect(() => parseMix("nonsense")).toThrow()
    expect(scaleMix(presets["default"]!, 0.01).groups.map((g) => g.count)).toEqual([200, 1])
  })

  it("batches respect the byte budget and keep every object once, in order", () => {
    const objects = makeObjects(parseMix("500:1K-256K,3:20M"), 3)
    const bs = batches(objects, 4 * 1024 * 1024, 100)
    expect(bs.flat()).toEqual(objects)
    for (const b of bs) {
      expect(b.length).toBeLessThanOrEqual(100)
      if (b.length > 1) expect(totalBytes(b)).toBeLessThanOrEqual(4 * 1024 * 1024)
    }
  })
})

/**
 * The reader's body slabs without a server: a copy holds its bytes until it is released, whatever is copied and
 * released meanwhile; released space is reused; bodies above the copy limit are left alone.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { BodySlabs, bodySlabsOptions, type SlabCopy } from "../src/BodySlabs.ts"

const bytesOf = (length: number, seed: number): Uint8Array => {
  const bytes = new Uint8Array(length)
  for (let i = 0; i < length; i++) bytes[i] = (seed * 31 + i * 7) & 0xff
  return bytes
}

describe("BodySlabs", () => {
  it("copies a body into slab memory, not a view of its source", () => {
    const slabs = new BodySlabs({ slabSize: 1024, copyMax: 256, keepFree: 2 })
    const source = bytesOf(100, 1)
    const copy = slabs.copy(source)!
    assert.deepStrictEqual(copy.bytes, source)
    assert.notStrictEqual(copy.bytes.buffer, source.buffer)
    assert.strictEqual(copy.bytes.buffer.byteLength, 1024)
    source.fill(0)
    assert.deepStrictEqual(copy.bytes, bytesOf(100, 1), "the copy does not change with its source")
  })

  it("leaves a body above the copy limit where it is", () => {
    const slabs = new BodySlabs({ slabSize: 1024, copyMax: 256, keepFree: 2 })
    assert.isDefined(slabs.copy(bytesOf(256, 1)))
    assert.isUndefined(slabs.copy(bytesOf(257, 1)))
    assert.throws(() => new BodySlabs({ slabSize: 1024, copyMax: 2048, keepFree: 2 }), /copyMax 2048/)
  })

  it("reuses a slab only once every body in it was released", () => {
    const slabs = new BodySlabs({ slabSize: 1024, copyMax: 512, keepFree: 2 })
    const a = slabs.copy(bytesOf(400, 1))!
    const b = slabs.copy(bytesOf(400, 2))!
    const c = slabs.copy(bytesOf(400, 3))! // does not fit after a and b: a second slab
    assert.strictEqual(a.bytes.buffer, b.bytes.buffer)
    assert.notStrictEqual(c.bytes.buffer, a.bytes.buffer)
    a.release()
    a.release() // idempotent: b still holds the first slab
    const d = slabs.copy(bytesOf(400, 4))!
    const e = slabs.copy(bytesOf(400, 5))! // the second slab is full: a new one, the first still holds b
    assert.strictEqual(slabs.allocated, 3)
    assert.deepStrictEqual(b.bytes, bytesOf(400, 2))
    assert.deepStrictEqual(c.bytes, bytesOf(400, 3))
    assert.deepStrictEqual(d.bytes, bytesOf(400, 4))
    b.release() // the first slab is empty now and kept
    assert.strictEqual(slabs.freeSlabs, 1)
    const f = slabs.copy(bytesOf(400, 6))!
    const g = slabs.copy(bytesOf(400, 7))! // the third slab is full: the first comes back
    assert.strictEqual(g.bytes.buffer, b.bytes.buffer)
    assert.strictEqual(slabs.allocated, 3)
    assert.deepStrictEqual(e.bytes, bytesOf(400, 5))
    assert.deepStrictEqual(f.bytes, bytesOf(400, 6))
  })

  it("refills the current slab from its start once everything in it was released", () => {
    const slabs = new BodySlabs({ slabSize: 1024, copyMax: 512, keepFree: 2 })
    const a = slabs.copy(bytesOf(300, 1))!
    a.release()
    const b = slabs.copy(bytesOf(300, 2))!
    assert.strictEqual(b.bytes.byteOffset, 0)
    assert.strictEqual(b.bytes.buffer, a.bytes.buffer)
    assert.strictEqual(slabs.allocated, 1)
  })

  it("keeps at most keepFree released slabs", () => {
    const slabs = new BodySlabs({ slabSize: 1024, copyMax: 1024, keepFree: 2 })
    const copies = Array.from({ length: 6 }, (_, i) => slabs.copy(bytesOf(1024, i))!)
    assert.strictEqual(slabs.allocated, 6)
    copies.forEach((c) => c.release())
    assert.strictEqual(slabs.freeSlabs, 2)
  })

  it("bodySlabsOptions sizes the slabs to 1/64 of the budget (64 KiB..1 MiB) and keeps what the budget holds", () => {
    const KiB = 1024
    const MiB = 1024 * KiB
    assert.deepStrictEqual(bodySlabsOptions(), { slabSize: 512 * KiB, copyMax: 256 * KiB, keepFree: 64 })
    assert.deepStrictEqual(bodySlabsOptions(1 * MiB), { slabSize: 64 * KiB, copyMax: 32 * KiB, keepFree: 16 })
    assert.deepStrictEqual(bodySlabsOptions(48 * MiB), { slabSize: 512 * KiB, copyMax: 256 * KiB, keepFree: 96 })
    assert.deepStrictEqual(bodySlabsOptions(1024 * MiB), { slabSize: 1 * MiB, copyMax: 512 * KiB, keepFree: 1024 })
    assert.strictEqual(bodySlabsOptions(0).keepFree, 1)
  })

  it("property: every live copy keeps its bytes, whatever is copied and released in between", () => {
    const step = fc.oneof(
      fc.record({ copy: fc.integer({ min: 0, max: 700 }), seed: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ release: fc.nat() })
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        const slabs = new BodySlabs({ slabSize: 2048, copyMax: 512, keepFree: 2 })
        const live: Array<{ readonly copy: SlabCopy; readonly expected: Uint8Array }> = []
        for (const s of steps) {
          if ("copy" in s) {
            const expected = bytesOf(s.copy, s.seed)
            const copy = slabs.copy(expected)
            if (s.copy > 512) {
              assert.isUndefined(copy)
              continue
            }
            live.push({ copy: copy!, expected })
          } else if (live.length > 0) {
            live.splice(s.release % live.length, 1)[0]!.copy.release()
          }
          for (const l of live) assert.deepStrictEqual(l.copy.bytes, l.expected)
        }
        // once everything is released, the next copy reuses a slab instead of allocating one
        live.forEach((l) => l.copy.release())
        const allocated = slabs.allocated
        assert.isDefined(slabs.copy(bytesOf(512, 1)))
        assert.strictEqual(slabs.allocated, Math.max(allocated, 1))
      })
    )
  })
})

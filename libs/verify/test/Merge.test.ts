/**
 * The merge-join on in-memory streams: every row paired with its object or reported missing, orphans, rows sharing a
 * sha2, malformed sha2s, inputs out of order, and the memory bound (one page plus one chunk of rows).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { createHash } from "node:crypto"
import { type ListedObject, mergeJoin, type MigratedRow, type Pairing } from "../src/index.ts"

const key = (i: number) => createHash("sha256").update(String(i)).digest("hex")
const row = (sha2: string, hash = sha2.slice(0, 40)): MigratedRow => ({ hash, sha2, oid: 1, size: 1, mimeType: "x/y" })
const obj = (k: string): ListedObject => ({ key: k, size: 1 })
const pagesOf = (keys: ReadonlyArray<string>, size = 3) => {
  const pages: Array<ReadonlyArray<ListedObject>> = []
  for (let i = 0; i < keys.length; i += size) pages.push(keys.slice(i, i + size).map(obj))
  return Stream.fromIterable(pages)
}
const describePairing = (p: Pairing) =>
  p._tag === "Orphan" ? `orphan ${p.object.key.slice(0, 4)}` : p._tag === "Malformed" ? `malformed ${p.row.sha2}` :
  `${p.object === undefined ? "missing" : "found"} ${p.row.sha2.slice(0, 4)}`

describe("mergeJoin", () => {
  it.effect("pairs rows with objects, reports missing rows and orphans, in one pass", () =>
    Effect.gen(function*() {
      const keys = Array.from({ length: 10 }, (_, i) => key(i)).sort()
      // rows for keys 0,1,2,5,6 (sorted order), plus one row whose object is absent
      const absent = "0".repeat(63) + "1"
      const rowKeys = [keys[0]!, keys[1]!, keys[2]!, keys[5]!, keys[6]!, absent].sort()
      const out = yield* Stream.runCollect(mergeJoin(pagesOf(keys), Stream.fromIterable(rowKeys.map((k) => row(k)))))
      const found = out.filter((p) => p._tag === "Row" && p.object !== undefined).length
      const missing = out.filter((p) => p._tag === "Row" && p.object === undefined).map((p) => (p as { row: MigratedRow }).row.sha2)
      const orphans = out.filter((p) => p._tag === "Orphan").map((p) => (p as { object: ListedObject }).object.key)
      assert.strictEqual(found, 5, out.map(describePairing).join(", "))
      assert.deepStrictEqual(missing, [absent])
      assert.deepStrictEqual(orphans, [keys[3], keys[4], keys[7], keys[8], keys[9]])
    }))

  it.effect("rows sharing a sha2 all find the object, which is no orphan; a malformed sha2 matches nothing", () =>
    Effect.gen(function*() {
      const k = key(1)
      const out = yield* Stream.runCollect(
        mergeJoin(pagesOf([k]), Stream.fromIterable([row("ABC"), row(k, "a".repeat(40)), row(k, "b".repeat(40))]))
      )
      assert.deepStrictEqual(out.map(describePairing), ["malformed ABC", `found ${k.slice(0, 4)}`, `found ${k.slice(0, 4)}`])
    }))

  it.effect("an empty bucket: every row missing; no rows: every object an orphan", () =>
    Effect.gen(function*() {
      const keys = [key(1), key(2)].sort()
      const a = yield* Stream.runCollect(mergeJoin(Stream.empty, Stream.fromIterable(keys.map((k) => row(k)))))
      assert.deepStrictEqual(a.map((p) => p._tag === "Row" && p.object === undefined), [true, true])
      const b = yield* Stream.runCollect(mergeJoin(pagesOf(keys), Stream.empty))
      assert.deepStrictEqual(b.map((p) => p._tag), ["Orphan", "Orphan"])
    }))

  it.effect("a listing or rows out of byte order fail with OrderViolation instead of false results", () =>
    Effect.gen(function*() {
      const keys = [key(1), key(2)].sort()
      const listing = yield* Stream.runCollect(mergeJoin(pagesOf([keys[1]!, keys[0]!]), Stream.empty)).pipe(Effect.flip)
      assert.strictEqual(listing._tag, "OrderViolation")
      const rows = yield* Stream.runCollect(
        mergeJoin(Stream.empty, Stream.fromIterable([row(keys[1]!), row(keys[0]!)]))
      ).pipe(Effect.flip)
      assert.strictEqual(rows._tag, "OrderViolation")
    }))

  it.effect("holds at most one page of objects and one chunk of rows", () =>
    Effect.gen(function*() {
      const keys = Array.from({ length: 5000 }, (_, i) => key(i)).sort()
      const stats = { maxHeld: 0 }
      const rows = Stream.fromIterable(keys.map((k) => row(k))).pipe(Stream.rechunk(100))
      const out = yield* Stream.runCount(mergeJoin(pagesOf(keys, 1000), rows, stats))
      assert.strictEqual(out, 5000)
      assert.isAtMost(stats.maxHeld, 1100)
      assert.isAtLeast(stats.maxHeld, 1000)
    }))
})

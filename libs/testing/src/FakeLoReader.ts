/**
 * The fake `LoReader`: verified reads of the world's large objects, small bodies in memory, big ones spilled to real
 * temp files.
 */
import {
  checkRow,
  DatabaseError,
  type LoObject,
  LoReader,
  makeDigester,
  MissingLargeObject,
  RowVanished,
  RowFailed,
  type SourceRow,
  verifyDigests
} from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { begin, type FakeOptions } from "./FakeOperations.ts"
import type { World } from "./World.ts"

/**
 * Reads through `checkRow` / `makeDigester` / `verifyDigests` like the live reader. Bodies up to `inMemMax` bytes stay
 * in memory, larger ones are written to a real temp file that `release` removes; the layer's finalizer removes
 * whatever is left. `world.reader` tracks live objects, in-memory bytes and spill files, with peaks.
 */
export const fakeLoReader = (world: World, options: FakeOptions = {}): Layer.Layer<LoReader> =>
  Layer.effect(
    LoReader,
    Effect.gen(function*() {
      const inMemMax = options.inMemMax ?? 64 * 1024
      const chunk = options.readChunk ?? 16 * 1024
      const stats = world.reader
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "lo-migrate-fake-"))),
        (dir) =>
          Effect.sync(() => {
            for (const path of stats.liveSpills) {
              if (path.startsWith(dir)) {
                rmSync(path, { force: true })
                stats.liveSpills.delete(path)
              }
            }
            rmSync(dir, { recursive: true, force: true })
          })
      )
      let fileNo = 0

      // Synchronous from the digest on, so an interruption cannot leave an untracked object behind.
      const readOne = Effect.fnUntraced(function*(row: SourceRow): Effect.fn.Return<LoObject, RowFailed> {
        const checked = yield* checkRow(row)
        const bytes = world.largeObjects.get(checked.oid)
        if (bytes === undefined) {
          // like the live reader: a row that is gone (same hash and oid) vanished, one that is still there failed
          const exists = world.rowsWithHash(row.hash).some((r) => r.oid === checked.oid)
          return yield* new RowFailed({
            hash: row.hash,
            oid: row.oid,
            reason: exists ? new MissingLargeObject({ oid: checked.oid }) : new RowVanished({ at: "read" })
          })
        }
        const digester = makeDigester()
        for (let i = 0; i < bytes.byteLength; i += chunk) digester.update(bytes.subarray(i, i + chunk))
        const digests = digester.digest()
        yield* verifyDigests(row, digests)
        stats.objectsRead++
        stats.liveObjects++
        stats.peakLiveObjects = Math.max(stats.peakLiveObjects, stats.liveObjects)
        stats.liveBytes += digests.size
        stats.peakLiveBytes = Math.max(stats.peakLiveBytes, stats.liveBytes)
        let released = false
        // the object, its body, and what `release` undoes besides the counts common to both bodies (once)
        const object = (body: LoObject["body"], undo: () => void): LoObject => ({
          row,
          sha1: checked.sha1,
          sha256: digests.sha256,
          md5Base64: digests.md5Base64,
          size: digests.size,
          body,
          release: Effect.sync(() => {
            if (released) return
            released = true
            undo()
            stats.liveObjects--
            stats.liveBytes -= digests.size
          })
        })
        if (digests.size <= inMemMax) {
          stats.liveMemoryBytes += digests.size
          stats.peakLiveMemoryBytes = Math.max(stats.peakLiveMemoryBytes, stats.liveMemoryBytes)
          return object({ _tag: "InMemory", bytes: bytes.slice() }, () => {
            stats.liveMemoryBytes -= digests.size
          })
        }
        const path = join(dir, `${digests.sha256}-${fileNo++}`)
        writeFileSync(path, bytes)
        stats.liveSpills.add(path)
        stats.spilled++
        return object({ _tag: "Spilled", path }, () => {
          rmSync(path, { force: true })
          stats.liveSpills.delete(path)
        })
      })

      const readFault = (operation: string) =>
        Effect.suspend(() => {
          if (world.faults.readFailures <= 0) return Effect.void
          world.faults.readFailures--
          return Effect.fail(new DatabaseError({ operation, detail: "fake: connection reset", retryable: true }))
        })

      return LoReader.of({
        read: (row) =>
          begin(world, "read").pipe(
            Effect.andThen(readFault("read")),
            Effect.andThen(Effect.uninterruptible(readOne(row)))
          ),
        readBatch: (rows) =>
          begin(world, "readBatch").pipe(
            Effect.andThen(readFault("readBatch")),
            Effect.andThen(Effect.uninterruptible(Effect.forEach(rows, (row) => Effect.result(readOne(row)))))
          )
      })
    })
  )

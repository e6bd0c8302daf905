/**
 * Spill directories in `--temp-dir`: named after their process, so that a later run can remove those of processes
 * that are gone (killed with `kill -9`, crashed), and never one of a process that still runs.
 *
 * A directory is `lo-migrate-spill-<owner id>-XXXXXX` (owner id: core ProcessOwner.ts, host tag + pid + boot + start
 * time; XXXXXX from `mkdtemp`). `sweepSpillDirs` removes those whose owner is gone, as far as this host can tell:
 * directories of another host (a shared temp dir) or of this process are kept. Directories of lo-migrate versions
 * before this naming (`lo-migrate-XXXXXX`) cannot be attributed and are only reported.
 */
import { currentOwner, ownerLiveness } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import type { PlatformError } from "effect/PlatformError"
import * as NodePath from "node:path"

export const spillDirPrefix = "lo-migrate-spill-"

const spillDirName = /^lo-migrate-spill-([0-9a-f]{12}-\d+-(?:[0-9a-f]{8}|0)-\d+)-[A-Za-z0-9]{6}$/
const legacyDirName = /^lo-migrate-[A-Za-z0-9]{6}$/

/** Creates this process's spill directory in `tempDir` (and `tempDir` itself if needed); returns its path. */
export const makeSpillDir: (tempDir: string) => Effect.Effect<string, PlatformError, FileSystem.FileSystem> = Effect
  .fnUntraced(function*(tempDir: string) {
    const fs = yield* FileSystem.FileSystem
    const owner = yield* currentOwner
    yield* fs.makeDirectory(tempDir, { recursive: true })
    return yield* fs.makeTempDirectory({ directory: tempDir, prefix: `${spillDirPrefix}${owner.id}-` })
  })

export interface SpillSweep {
  /** Paths removed: their owner is gone. */
  readonly removed: ReadonlyArray<string>
  /** Directories kept: their owner runs, or is on another host. */
  readonly kept: number
  /** Directories of older lo-migrate versions (`lo-migrate-XXXXXX`), left alone. */
  readonly legacy: ReadonlyArray<string>
}

/** Removes the spill directories in `tempDir` whose process is gone. Never fails: a problem is logged. */
export const sweepSpillDirs: (tempDir: string) => Effect.Effect<SpillSweep, never, FileSystem.FileSystem> = Effect
  .fnUntraced(function*(tempDir: string) {
    const fs = yield* FileSystem.FileSystem
    const entries = yield* fs.readDirectory(tempDir).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
    const removed: Array<string> = []
    const legacy: Array<string> = []
    let kept = 0
    for (const name of entries) {
      const path = NodePath.join(tempDir, name)
      if (legacyDirName.test(name)) legacy.push(path)
      const m = spillDirName.exec(name)
      if (m === null) continue
      if ((yield* ownerLiveness(m[1]!)) !== "gone") {
        kept++
        continue
      }
      const gone = yield* fs.remove(path, { recursive: true, force: true }).pipe(
        Effect.as(true),
        Effect.catch((e) => Effect.as(Effect.logWarning(`could not remove stale spill directory ${path}: ${String(e)}`), false))
      )
      if (gone) removed.push(path)
    }
    if (removed.length > 0) {
      yield* Effect.logInfo(`removed ${removed.length} spill director${removed.length === 1 ? "y" : "ies"} of ended runs in ${tempDir}`)
    }
    if (legacy.length > 0) {
      yield* Effect.logWarning(
        `${legacy.length} director${legacy.length === 1 ? "y" : "ies"} lo-migrate-XXXXXX in ${tempDir} are spill directories ` +
          "of an older lo-migrate version, which cannot be attributed to a process: remove them once no older lo-migrate runs"
      )
    }
    return { removed, kept, legacy }
  })

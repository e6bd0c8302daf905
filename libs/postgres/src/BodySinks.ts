/**
 * Where a streamed read puts the bytes of one large object while they are hashed: a buffer of the row's size, or a
 * `0600` spill file in the reader's private spill directory (created on first use, removed with everything in it when
 * the scope closes; named after the process, see SpillDirs.ts). A spill file can also digest its bytes along the
 * store's cut (`BodyCut`), so the one pass serves the upload's parts.
 */
import { type LocalFileError, type LoObject, makePartDigester } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Semaphore from "effect/Semaphore"
import * as NodePath from "node:path"
import { makeSpillDir } from "./SpillDirs.ts"
import { spillFileError } from "./SpillErrors.ts"

/** Where a streamed read puts the bytes while they are hashed. */
export interface BodySink {
  /** Called with each chunk while the total stays within the row's size. */
  readonly write: (chunk: Uint8Array) => Effect.Effect<void, LocalFileError>
  readonly finish: Effect.Effect<LoObject["body"], LocalFileError>
}

/**
 * The sinks of one reader, spilling under `tempDir`: `memorySink(size)`, `fileSink(name, partSize)` (scoped: the file
 * is closed when the read's scope closes) with the path it wrote, and `removeFile(path)`.
 */
export const makeBodySinks = Effect.fnUntraced(function*(tempDir: string) {
  const fs = yield* FileSystem.FileSystem
  /** Removes a file, treating "already gone" as success. */
  const removeFile = (path: string) =>
    fs.remove(path, { force: true }).pipe(
      Effect.catch((e) => Effect.logWarning(`could not remove spill file ${path}: ${String(e)}`))
    )

  // The private spill directory: created on first spill (a failure is not remembered: the next spill tries again),
  // removed recursively when the layer is released.
  let spillDir: string | undefined
  const spillDirLock = yield* Semaphore.make(1)
  const getSpillDir = Semaphore.withPermit(
    spillDirLock,
    Effect.suspend(() =>
      spillDir !== undefined ? Effect.succeed(spillDir) : makeSpillDir(tempDir).pipe(
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.tap((dir) => Effect.sync(() => void (spillDir = dir))),
        Effect.mapError((e) => spillFileError("create a spill directory in", tempDir, tempDir, e))
      )
    )
  )
  yield* Effect.addFinalizer(() =>
    Semaphore.withPermit(
      spillDirLock,
      Effect.suspend(() => {
        const dir = spillDir
        spillDir = undefined
        return dir === undefined ? Effect.void : fs.remove(dir, { recursive: true, force: true }).pipe(
          Effect.catch((e) => Effect.logWarning(`could not remove spill directory ${dir}: ${String(e)}`))
        )
      })
    )
  )
  let fileCounter = 0

  const memorySink = (size: number): BodySink => {
    const bytes = new Uint8Array(size)
    let offset = 0
    return {
      write: (chunk) =>
        Effect.sync(() => {
          bytes.set(chunk, offset)
          offset += chunk.byteLength
        }),
      finish: Effect.sync(() => ({ _tag: "InMemory", bytes }))
    }
  }

  /**
   * A spill file, closed when the read's scope closes; the caller removes the file unless the read succeeds. Each
   * chunk is written whole (`writeAll` goes on after a short write, as a filling disk makes: stopping there would let
   * space freed in between leave a hole in the file). With a part size, the bytes are also digested part by part.
   */
  const fileSink = Effect.fnUntraced(function*(path: string, partSize: number | undefined) {
    const file = yield* fs.open(path, { flag: "wx", mode: 0o600 }).pipe(
      Effect.mapError((e) => spillFileError("create spill file", tempDir, path, e))
    )
    const parts = partSize === undefined ? undefined : makePartDigester(partSize)
    const sink: BodySink = {
      write: (chunk) =>
        Effect.suspend(() => {
          parts?.update(chunk)
          return file.writeAll(chunk)
        }).pipe(Effect.mapError((e) => spillFileError("write spill file", tempDir, path, e))),
      finish: Effect.sync(() => ({ _tag: "Spilled" as const, path, parts: parts?.digest() }))
    }
    return sink
  })

  /** A fresh path in the spill directory for an object (created on first use). */
  const spillPath = (name: string) =>
    Effect.map(getSpillDir, (dir) => NodePath.join(dir, `${++fileCounter}-${name}.bin`))

  return { memorySink, fileSink, spillPath, removeFile }
})

/**
 * `LoReader` on `@effect/sql-pg`: reads a large object, verifies size and SHA-1 against its row and computes SHA-256
 * and MD5 in the same pass, holding small objects in memory and spilling bigger ones to a temp file.
 *
 * How an object is read (measured in bench/read-strategies.ts, see the numbers there and in the package README):
 * - Objects held in memory (up to `inMemMax`, and below 8 MiB): a single `lo_get(oid, 0, size + 1)`. One statement is
 *   one snapshot, so no transaction is needed; if more than `size` bytes come back the row's size was wrong and the
 *   object is read as a big one, which finds its real size.
 * - Spilled objects: `lo_open(oid, INV_READ)` + `loread(fd, chunkSize)` in a READ ONLY transaction. An INV_READ
 *   descriptor reads the object as of the transaction's snapshot, so a concurrent change cannot tear the bytes.
 *   Memory is bounded by one chunk: in-memory bodies are at most `inMemMax`, spilled ones go straight to disk.
 * - `readBatch`: one `lo_get` per oid over `unnest($oids, $lengths)` in ONE statement, with the oids checked against
 *   `pg_largeobject_metadata` so that a missing object yields NULL for its row instead of failing the statement.
 *   Measured for 1000 x 8 KiB: a transaction per object 351 ms, `lo_get` per object 93 ms, batches of 100 22 ms
 *   (~16x); through this adapter, 2000 x 8 KiB: `read` one by one 1594 obj/s, `readBatch` of 100 4536 obj/s, of
 *   250 5679 obj/s.
 *   pg + pg-large-object was measured too: 77-126 MiB/s on a 64 MiB object against 190-287 MiB/s for sql-pg loread
 *   at 256-512 KiB chunks (bench/read-strategies.ts), and it needs a second pool, so it is not used.
 *
 * A missing object is not simply a failure: the row is looked up again (same hash, same oid), and a row that is gone
 * was deleted by the application during the run (`RowVanished`, not a failure; ReadFailures.ts). Oids are sent as text and cast
 * `::oid` (Oids.ts) so that the whole unsigned range works. A role without SELECT on an object gets a per-row
 * `LargeObjectNotPermitted` naming the GRANT.
 *
 * Spill files live in a per-layer subdirectory of `tempDir` (created on first use, removed with everything in it when
 * the layer is released; named after the process, so a later run removes it if the process died: SpillDirs.ts).
 * Each file is removed by `LoObject.release`, and at once when the read fails or is interrupted.
 */
import {
  BodyCut,
  type CheckedRow,
  checkRow,
  DatabaseError,
  LocalFileError,
  type Digests,
  groupBySize,
  type LoObject,
  LoReader,
  makeDigester,
  RowFailed,
  type SourceRow,
  SizeMismatch,
  verifyDigests
} from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import { toDatabaseError, withTransaction } from "./DatabaseErrors.ts"
import { oidText, oidTexts } from "./Oids.ts"
import { type BodySink, makeBodySinks } from "./BodySinks.ts"
import { BodySlabs, bodySlabsOptions } from "./BodySlabs.ts"
import { isNotPermitted, makeReadFailures, rowFailed } from "./ReadFailures.ts"

export interface PgLoReaderOptions {
  /** Objects up to this many bytes are held in memory; bigger ones are spilled to a temp file. */
  readonly inMemMax: number
  /** Directory for spill files; a private subdirectory is created in it (and removed on release). */
  readonly tempDir: string
  /** Bytes per `loread` round trip. ~256 KiB (the default) measured fastest or near it in every run; 1 MiB and
   * more are slower with sql-pg (see bench/read-strategies.ts and bench/adapters.ts). See `defaultChunkSize`. */
  readonly chunkSize: number
  /**
   * The pipeline's in-memory budget (`maxInMemoryBytes`, `--max-in-memory`), which the reader's body slabs are sized
   * to and which bounds how many are in use (BodySlabs.ts). Default 32 MiB, the CLI's default.
   */
  readonly inMemoryBudget?: number | undefined
}

export const defaultInMemMax = 1024 * 1024
/**
 * 256 KiB less 64 bytes, so that one `loread` response (the chunk, the DataRow's 11 bytes of framing, CommandComplete
 * and ReadyForQuery) fits in 256 KiB. sql-pg grows its receive buffer for a message bigger than its 64 KiB pool by
 * doubling: a response of 256 KiB and a few bytes ended in a 512 KiB buffer (64 + 128 + 256 + 512 KiB allocated per
 * chunk read), one within 256 KiB ends in a 256 KiB one (64 + 128 + 256). V8 runs a major GC after every 64 MiB of new
 * `ArrayBuffer` memory, so this is GC work per spilled byte: 20 objects of 8-64 MiB, 33 -> 25-26 major GCs, -6% CPU;
 * two of 1 GiB, 149 -> 115 major GCs, -12 / -14% CPU (alternating pairs: tools/bench/README.md, "Issue 16, session 10").
 */
export const defaultChunkSize = 256 * 1024 - 64
/** Larger `chunkSize` values are lowered to this (one `loread` result must fit in one protocol message). */
export const maxChunkSize = 8 * 1024 * 1024

/** `INV_READ` from libpq-fs.h. */
const INV_READ = 0x40000

/**
 * Cap on the claimed bytes of one `readBatch` statement. The driver receives a whole result into one buffer (grown by
 * doubling, so up to twice this) and the bodies are views into it (they keep it alive until they are released): 8 MiB
 * made each reader hold ~24 MiB at once (peak RSS of the bench's default mix 305 MiB, when bodies were still copied
 * out); 2 MiB still puts ~40 average small objects in one statement.
 */
const batchBytesCap = 2 * 1024 * 1024

/** The reader over the `SqlClient`, `FileSystem` and `BodyCut` in context; its spill directory lives in the scope. */
export const make: (
  options: PgLoReaderOptions
) => Effect.Effect<LoReader["Service"], never, SqlClient.SqlClient | FileSystem.FileSystem | BodyCut | Scope.Scope> =
  Effect.fnUntraced(function*(options: PgLoReaderOptions) {
    const sql = yield* SqlClient.SqlClient
    // how the store will cut a spilled body: its parts are digested in the read pass (`Body.Spilled.parts`)
    const cut = yield* BodyCut
    const { fileSink, memorySink, removeFile, spillPath } = yield* makeBodySinks(options.tempDir)
    const { missing, readFailed } = yield* makeReadFailures
    // sql-pg refuses backend messages over 16 MiB (maxMessageSize) and drops the connection: keep a chunk well below.
    const chunkSize = Math.min(maxChunkSize, Math.max(1, Math.floor(options.chunkSize)))
    const inMemMax = Math.max(0, Math.floor(options.inMemMax))

    // small in-memory bodies are copied out of the driver's receive buffers into reused slabs (BodySlabs.ts)
    const slabs = new BodySlabs(bodySlabsOptions(options.inMemoryBudget))

    const toObject = (
      checked: CheckedRow,
      digests: Digests,
      body: LoObject["body"],
      releaseMemory?: () => void
    ): LoObject => {
      let released = false
      // an in-memory body gives its slab space back (idempotent: BodySlabs); a spilled one removes its file, once
      const release = body._tag === "InMemory"
        ? (releaseMemory === undefined ? Effect.void : Effect.sync(releaseMemory))
        : Effect.suspend(() => {
          if (released) return Effect.void
          released = true
          return removeFile(body.path)
        })
      return {
        row: checked.row,
        sha1: checked.sha1,
        sha256: digests.sha256,
        md5Base64: digests.md5Base64,
        size: digests.size,
        body,
        release
      }
    }

    /**
     * The streaming read inside a READ ONLY transaction. Stops storing as soon as the object proves longer than the
     * row says and asks the server for the real length instead of reading the rest. `wholeMd5: false` for a body the
     * sink digests part by part: the store sends each part with its own MD5, never the whole object's.
     */
    const readStreaming = (checked: CheckedRow, sink: BodySink, wholeMd5: boolean) =>
      withTransaction(sql, Effect.gen(function*() {
        // READ ONLY and lo_open in one round trip (set_config(..., true) is SET LOCAL)
        const [opened] = yield* sql<{ readonly fd: number }>`
          SELECT set_config('transaction_read_only', 'on', true) AS ro, lo_open(${oidText(checked.oid)}::oid, ${INV_READ}) AS fd`
        const fd = opened!.fd
        const digester = makeDigester({ wholeMd5 })
        const expected = checked.row.size
        let total = 0
        for (;;) {
          const [r] = yield* sql<{ readonly c: Uint8Array }>`SELECT loread(${fd}, ${chunkSize}) AS c`
          const chunk = r!.c
          if (total + chunk.byteLength > expected) {
            const [end] = yield* sql<{ readonly size: bigint | number }>`SELECT lo_lseek64(${fd}, 0, 2) AS size`
            return { _tag: "TooLong" as const, actual: Number(end!.size) }
          }
          if (chunk.byteLength > 0) {
            digester.update(chunk)
            yield* sink.write(chunk)
            total += chunk.byteLength
          }
          if (chunk.byteLength < chunkSize) break
        }
        return { _tag: "Read" as const, digests: digester.digest() }
      }))

    const finishStreaming = Effect.fnUntraced(function*(
      checked: CheckedRow,
      sink: BodySink,
      outcome: { readonly _tag: "TooLong"; readonly actual: number } | { readonly _tag: "Read"; readonly digests: Digests }
    ) {
      if (outcome._tag === "TooLong") {
        return yield* rowFailed(checked.row, new SizeMismatch({ expected: checked.row.size, actual: outcome.actual }))
      }
      yield* verifyDigests(checked.row, outcome.digests)
      const body = yield* sink.finish
      return toObject(checked, outcome.digests, body)
    })

    const readBig = (checked: CheckedRow): Effect.Effect<LoObject, RowFailed | DatabaseError | LocalFileError> => {
      if (checked.row.size <= inMemMax) {
        const sink = memorySink(checked.row.size)
        return readStreaming(checked, sink, true).pipe(
          Effect.catch(readFailed(checked)),
          Effect.flatMap((outcome) => finishStreaming(checked, sink, outcome))
        )
      }
      return Effect.gen(function*() {
        const path = yield* spillPath(checked.sha1)
        // The file is removed unless the read succeeds: on a bad row, a database error and on interruption.
        return yield* Effect.scoped(Effect.gen(function*() {
          const partSize = cut.partSizeFor(checked.row.size)
          const sink = yield* fileSink(path, partSize)
          const outcome = yield* readStreaming(checked, sink, partSize === undefined).pipe(Effect.catch(readFailed(checked)))
          return yield* finishStreaming(checked, sink, outcome)
        })).pipe(Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : removeFile(path)))
      })
    }

    /**
     * One statement for an object that is held in memory anyway: `lo_get(oid, 0, size + 1)` is one snapshot, so no
     * transaction is needed, and the extra byte shows an object longer than its row without reading all of it (that
     * rare case falls back to the streaming read, which finds the real size). A whole read replaces the 4-6 round
     * trips of BEGIN/lo_open/loread.../COMMIT: measured on the `inmem` bench mix (0.75-1 MiB objects), where the
     * streaming read was round-trip bound.
     */
    const readWhole = (checked: CheckedRow): Effect.Effect<LoObject, RowFailed | DatabaseError | LocalFileError> =>
      sql<{ readonly c: Uint8Array }>`SELECT lo_get(${oidText(checked.oid)}::oid, 0, ${checked.row.size + 1}) AS c`.pipe(
        Effect.catch(readFailed(checked)),
        Effect.flatMap(([r]) => {
          const bytes = r!.c
          if (bytes.byteLength > checked.row.size) return readBig(checked)
          return fromBytes(checked, bytes)
        })
      )

    // sql-pg decodes `bytea` as a view into its receive buffer, which it never overwrites (a full buffer is replaced,
    // not reused). A body up to `BodySlabs`' copy limit is copied into a reused slab (BodySlabs.ts says why: the views
    // pinned the driver's buffers into V8's old generation, each run's biggest share of garbage); a bigger one stays a
    // view (copying it into a buffer of its own costs an allocation per object: session 6 measured ~50-65 us more per
    // object for a bare PUT of bodies copied each into a buffer of its own). The digests are computed over the bytes
    // that will be uploaded. The pipeline charges `--max-in-memory` for the buffers the bodies lie in, each once
    // (libs/pipeline InFlight.ts), so that a small body pinning a big buffer counts what it holds.
    const fromBytes = (checked: CheckedRow, view: Uint8Array): Effect.Effect<LoObject, RowFailed> => {
      const copy = slabs.copy(view)
      const bytes = copy === undefined ? view : copy.bytes
      const digester = makeDigester()
      digester.update(bytes)
      const digests = digester.digest()
      return verifyDigests(checked.row, digests).pipe(
        Effect.tapError(() => Effect.sync(() => copy?.release())),
        Effect.flatMap(() => Effect.sync(() => toObject(checked, digests, { _tag: "InMemory", bytes }, copy?.release)))
      )
    }

    // One protocol message must hold the whole result (sql-pg's limit is 16 MiB; maxChunkSize keeps well below).
    const wholeReadMax = Math.min(inMemMax, maxChunkSize - 1)
    const readChecked = (checked: CheckedRow) => checked.row.size <= wholeReadMax ? readWhole(checked) : readBig(checked)

    // Untraced: once per object read alone (a traced Effect.fn costs tens of us per call: libs/s3/README.md "Spans")
    const read = Effect.fnUntraced(function*(row: SourceRow) {
      const checked = yield* checkRow(row)
      return yield* readChecked(checked)
    })

    /** Reads rows whose claimed sizes fit in memory with one statement each group; others one by one. */
    const readBatch = Effect.fn("PgLoReader.readBatch")(function*(rows: ReadonlyArray<SourceRow>) {
      const results: Array<Result.Result<LoObject, RowFailed> | undefined> = new Array(rows.length)
      const batchable: Array<{ readonly index: number; readonly checked: CheckedRow }> = []
      const single: Array<{ readonly index: number; readonly checked: CheckedRow }> = []
      for (let index = 0; index < rows.length; index++) {
        const checked = yield* Effect.result(checkRow(rows[index]!))
        if (Result.isFailure(checked)) {
          results[index] = Result.fail(checked.failure)
          continue
        }
        const size = checked.success.row.size
        const entry = { index, checked: checked.success }
        if (size > inMemMax || size > batchBytesCap) single.push(entry)
        else batchable.push(entry)
      }
      const groups = groupBySize(batchable, (e) => e.checked.row.size, { maxBytes: batchBytesCap })

      for (const g of groups) {
        // Asking for size + 1 bytes shows an object longer than its row without reading all of it. A role without
        // the right to read one of the objects fails the whole statement (42501): the group is then read row by row,
        // so that each row gets its own result.
        const found = yield* sql<{ readonly i: number; readonly present: boolean; readonly c: Uint8Array | null }>`
          SELECT t.i::int4 AS i, m.oid IS NOT NULL AS present,
                 CASE WHEN m.oid IS NOT NULL THEN lo_get(t.oid, 0, t.len) END AS c
          FROM unnest(${oidTexts(g.map((e) => e.checked.oid))}::text[]::oid[], ${g.map((e) => e.checked.row.size + 1)}::int4[])
               WITH ORDINALITY AS t(oid, len, i)
          LEFT JOIN pg_largeobject_metadata m ON m.oid = t.oid`.pipe(
            Effect.catchIf(isNotPermitted, () => Effect.succeed(undefined)),
            Effect.mapError((e) => toDatabaseError("read large objects (batch)", e))
          )
        if (found === undefined) {
          single.push(...g)
          continue
        }
        const absent: Array<{ readonly index: number; readonly checked: CheckedRow }> = []
        for (const r of found) {
          const entry = g[r.i - 1]!
          if (!r.present || r.c === null) {
            absent.push(entry)
          } else if (r.c.byteLength > entry.checked.row.size) {
            single.push(entry) // longer than the row says: the streaming read finds the real size
          } else {
            results[entry.index] = yield* Effect.result(fromBytes(entry.checked, r.c))
          }
        }
        if (absent.length > 0) {
          const failures = yield* missing(absent.map((e) => e.checked))
          absent.forEach((e, i) => results[e.index] = Result.fail(failures[i]!))
        }
      }
      for (const entry of single) {
        const outcome = yield* readChecked(entry.checked).pipe(
          Effect.map(Result.succeed),
          Effect.catchTag("RowFailed", (e) => Effect.succeed(Result.fail(e)))
        )
        results[entry.index] = outcome
      }
      const complete = results.filter((r): r is Result.Result<LoObject, RowFailed> => r !== undefined)
      if (complete.length !== rows.length) return yield* Effect.die(new Error("readBatch: a row got no result"))
      return complete
    })

    return LoReader.of({ read, readBatch })
  })

/** The reader. Needs `SqlClient`, `FileSystem` for the spill files, and the store's `BodyCut`. */
export const layer = (
  options: PgLoReaderOptions
): Layer.Layer<LoReader, never, SqlClient.SqlClient | FileSystem.FileSystem | BodyCut> =>
  Layer.effect(LoReader, make(options))

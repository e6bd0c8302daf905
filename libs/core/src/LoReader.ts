/**
 * The read port: one large object read and verified against its row, held in memory or spilled to a temp file.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Result from "effect/Result"
import type { LoObject, SourceRow } from "./Domain.ts"
import type { DatabaseError, LocalFileError, RowFailed } from "./Errors.ts"

/**
 * Reads one large object and verifies it against its row (size, SHA-1) while computing SHA-256 and MD5 in the same
 * pass. Objects up to the in-memory limit are held in memory; larger ones are spilled to a temp file that the
 * returned `LoObject.release` removes (and that the reader's layer removes on shutdown whatever happens).
 *
 * - `read` fails with `RowFailed` for a bad row, `DatabaseError` for database trouble and `LocalFileError` for trouble
 *   with the spill directory (ENOSPC is retryable: spills in flight free space when their uploads end).
 * - `readBatch` reads several (small) objects in as few round trips as the adapter can; each row gets its own
 *   result, so one bad row does not fail the others.
 */
export class LoReader extends Context.Service<LoReader, {
  readonly read: (row: SourceRow) => Effect.Effect<LoObject, RowFailed | DatabaseError | LocalFileError>
  readonly readBatch: (
    rows: ReadonlyArray<SourceRow>
  ) => Effect.Effect<ReadonlyArray<Result.Result<LoObject, RowFailed>>, DatabaseError | LocalFileError>
}>()("lo-migrate/LoReader") {}

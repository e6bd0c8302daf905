/** The `LoSource` port: the rows still to migrate, and their counts for progress. */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { RowCounts, SourceRow } from "./Domain.ts"
import type { DatabaseError } from "./Errors.ts"

/**
 * The rows still to migrate (`sha2 IS NULL`), each emitted once per run, in a stable order so that a rerun resumes
 * where the committed rows end. Rows the application inserts during a run may be picked up or left for the next run;
 * rows it deletes simply stop appearing.
 */
export class LoSource extends Context.Service<LoSource, {
  readonly rows: Stream.Stream<SourceRow, DatabaseError>
  readonly count: Effect.Effect<RowCounts, DatabaseError>
  /**
   * The rows still without sha2 now, and only them: a short statement where the index of pending rows exists, bounded
   * like a page (for the count after a pass: the rows the application inserted behind it).
   */
  readonly pending: Effect.Effect<number, DatabaseError>
}>()("lo-migrate/LoSource") {}

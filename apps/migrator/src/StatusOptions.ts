/**
 * `lo-migrate status`'s configuration, resolved from the shared options without loading the command itself (which
 * pulls in the PostgreSQL adapter: `StatusCommand.ts`, loaded by `main.ts` only when `status` runs).
 */
import * as Effect from "effect/Effect"
import { type DatabaseConfig, resolveDatabase, resolveReports } from "./Config.ts"
import { shardOptions } from "./ConfigShard.ts"
import type { UsageError } from "./ConfigValues.ts"
import type { RawOptions } from "./Options.ts"

export interface StatusConfig {
  readonly database: DatabaseConfig
  /** Shards to count (1: the whole table only). */
  readonly shards: number
  readonly reports: ReadonlyArray<string>
}

/** `--shards N`, else the N of `--shard I/N`, else 1; both given must agree (`shardOptions`, as for `migrate`). */
export const resolveStatus = Effect.fn("StatusOptions.resolveStatus")(function*(
  raw: RawOptions
): Effect.fn.Return<StatusConfig, UsageError> {
  const database = yield* resolveDatabase(raw)
  const reports = yield* resolveReports(raw)
  const { shard, shards } = yield* shardOptions(raw)
  return { database, shards: shards ?? shard?.count ?? 1, reports }
})

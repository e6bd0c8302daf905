/**
 * `lo-migrate status` from the database alone: rows, migrated, left and bytes left of `_nice_binary`, per shard of N,
 * plus where the rows of given failure reports stand.
 *
 * How it counts: exactly, in ONE sequential pass (`count(*) FILTER (...)` grouped by the shard), read-only, no lock
 * beyond the ACCESS SHARE every SELECT takes, so the application goes on. The shard of a row is
 * `width_bucket(hash, cuts)` over the N - 1 cuts of `Shard.ts`: a binary search per row, in the column's collation,
 * the very comparison `--shard` uses (ShardPredicate.ts), so the per-shard numbers are what each shard process sees.
 * An estimate (`pg_class.reltuples`) would be instant but cannot say how many rows are migrated; a full pass costs
 * about what a `count(*)` costs (measured: see the migrator README).
 *
 * The rows of the failure reports are looked up by primary key (`hash = ANY(...)`): still left, migrated meanwhile,
 * or gone from the table. And the state of the optional index of pending rows, whose cancelled build leaves an INVALID
 * index that the application's writes keep up to date until it is dropped.
 */
import { type DatabaseError, shardRange } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import { type IndexCondition, indexCondition, PendingIndex, sha2Column } from "./Catalog.ts"
import { mapSqlError } from "./DatabaseErrors.ts"
import { withoutStatementTimeoutOn } from "./LongStatement.ts"
import { checkSeesEveryRow } from "./Schema.ts"
import type { RowSecurityActive } from "./SchemaErrors.ts"

export interface ShardCounts {
  /** 0 .. N-1. */
  readonly shard: number
  readonly total: number
  readonly migrated: number
  readonly left: number
  readonly bytesLeft: number
}

export interface ReportedRows {
  readonly shard: number
  /** Rows of the reports found in the table. */
  readonly found: number
  /** Of those, still without `sha2`. */
  readonly left: number
}

export interface TableStatus {
  /** One entry per shard, 0 .. N-1 (a shard without rows has zeros). */
  readonly shards: ReadonlyArray<ShardCounts>
  /** Whether `_nice_binary.sha2` exists (if not, nothing is migrated yet). */
  readonly hasSha2: boolean
  /** The reported rows found in the table, per shard (zeros for none). */
  readonly reported: ReadonlyArray<ReportedRows>
  /** The optional index of pending rows (an INVALID one is replaced by the next run). */
  readonly pendingIndex: IndexCondition
}

const num = (n: bigint | number | string | null | undefined): number => (n === null || n === undefined ? 0 : Number(n))

/** The N - 1 cuts between the shards of `count` (empty for one shard). */
const shardCuts = (count: number): ReadonlyArray<string> =>
  Array.from({ length: count - 1 }, (_, i) => shardRange({ index: i + 1, count }).low!)

/**
 * Counts `_nice_binary` per shard of `count` (1: the whole table), and looks up `reportedHashes` (distinct hashes
 * from failure reports).
 */
export const tableStatus: (
  count: number,
  reportedHashes: ReadonlyArray<string>
) => Effect.Effect<TableStatus, DatabaseError | RowSecurityActive, SqlClient.SqlClient> = Effect.fn(
  "TableStatus.tableStatus"
)(function*(
  count: number,
  reportedHashes: ReadonlyArray<string>
) {
  const sql = yield* SqlClient.SqlClient
  // one transaction without a statement timeout (LongStatement.ts): the count is long, and under a pooler's tiny
  // default even the catalog reads around it could be cancelled
  return yield* withoutStatementTimeoutOn(sql)(passOver(sql, count, reportedHashes))
}, mapSqlError("count rows per shard"), Effect.withSpan("TableStatus.count"))

/** `tableStatus`'s statements, in the transaction it runs them in. */
const passOver = (sql: SqlClient.SqlClient, count: number, reportedHashes: ReadonlyArray<string>) => Effect.gen(function*() {
  // counts of only the rows a row-level security policy lets the role see would not be the table's
  yield* checkSeesEveryRow
  const cuts = shardCuts(count)
  const hasSha2 = (yield* sha2Column) !== undefined
  const pending = hasSha2 ? sql`sha2 IS NULL` : sql`TRUE`
  const bucket = sql`width_bucket(hash, ${cuts}::text[])`
  const counted = yield* sql<{
    readonly shard: number
    readonly total: bigint | number
    readonly left: bigint | number
    readonly bytesLeft: bigint | number | string | null
  }>`
    SELECT ${bucket} AS shard,
           count(*) AS total,
           count(*) FILTER (WHERE ${pending}) AS left,
           sum(size) FILTER (WHERE ${pending}) AS "bytesLeft"
    FROM _nice_binary
    GROUP BY 1`
  const found = reportedHashes.length === 0
    ? []
    : yield* sql<{ readonly shard: number; readonly found: bigint | number; readonly left: bigint | number }>`
        SELECT ${bucket} AS shard, count(*) AS found, count(*) FILTER (WHERE ${pending}) AS left
        FROM _nice_binary
        WHERE hash = ANY(${reportedHashes}::text[]::bpchar[])
        GROUP BY 1`
  const pendingIndex = yield* indexCondition(PendingIndex)
  const byShard = new Map(counted.map((r) => [num(r.shard), r]))
  const reportedByShard = new Map(found.map((r) => [num(r.shard), r]))
  return {
    hasSha2,
    pendingIndex,
    shards: Array.from({ length: count }, (_, shard): ShardCounts => {
      const r = byShard.get(shard)
      const total = num(r?.total)
      const left = num(r?.left)
      return { shard, total, migrated: total - left, left, bytesLeft: num(r?.bytesLeft) }
    }),
    reported: Array.from({ length: count }, (_, shard): ReportedRows => {
      const r = reportedByShard.get(shard)
      return { shard, found: num(r?.found), left: num(r?.left) }
    })
  }
})

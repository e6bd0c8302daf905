/**
 * The rows of `_nice_binary` with `sha2` set, in key order, as ONE streamed query (the driver pulls rows off the
 * socket as the merge consumes them and pauses the socket when it falls behind: no paging, no row-at-a-time round
 * trips, and bounded memory), in a transaction of its own whose `statement_timeout` is 0 (a long statement:
 * `LongStatement.ts` of @lo-migrate/postgres).
 *
 * The order is `sha2 COLLATE "C"` (byte order, the order S3 lists in), then `hash` for rows that share a sha2. Without
 * an index on `(sha2 COLLATE "C")` PostgreSQL sorts once (spilling to temp files beyond `work_mem`); the statement
 * only reads. `count` counts the rows of the range beside it, for progress and ETA.
 */
import { type DatabaseError, type Metrics, retryStreamInfrastructure } from "@lo-migrate/core"
import {
  mapSqlError,
  type MimeTypeBytes,
  mimeTypeBytes,
  mimeTypeOf,
  streamWithoutStatementTimeout,
  toDatabaseError,
  withoutStatementTimeoutOn
} from "@lo-migrate/postgres"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as SqlClient from "effect/sql/SqlClient"
import type { KeyRange, MigratedRow } from "./Domain.ts"

interface Row {
  readonly hash: string
  readonly sha2: string
  readonly oid: number | null
  readonly size: bigint | number | string
  /** `mimeTypeBytes`: a `SQL_ASCII` database may hold bytes that are not UTF-8 (MimeTypeColumn.ts). */
  readonly mimeType: MimeTypeBytes
}

const toNumber = (n: bigint | number | string): number => (typeof n === "number" ? n : Number(n))

const where = (sql: SqlClient.SqlClient, range: KeyRange) =>
  sql.and([
    sql`sha2 IS NOT NULL`,
    ...(range.from === undefined ? [] : [sql`sha2 COLLATE "C" >= ${range.from}`]),
    ...(range.to === undefined ? [] : [sql`sha2 COLLATE "C" < ${range.to}`])
  ])

/** Where a read stopped: the key of the last row it gave (`hash` orders the rows that share a `sha2`). */
interface Position {
  readonly sha2: string
  readonly hash: string
}

/** The rows of the range in key order, from the row at `at` on (that row included), as one streamed query. */
const rowsFrom = (sql: SqlClient.SqlClient, range: KeyRange, at: Position | undefined) =>
  streamWithoutStatementTimeout(sql, sql<Row>`
    SELECT hash, rtrim(sha2) AS sha2, data AS oid, size, ${mimeTypeBytes(sql, "mime_type")} AS "mimeType"
    FROM _nice_binary
    WHERE ${where(sql, range)}${
    at === undefined
      ? sql``
      : sql` AND (sha2 COLLATE "C" > ${at.sha2} OR (sha2 COLLATE "C" = ${at.sha2} AND hash >= ${at.hash}))`
  }
    ORDER BY sha2 COLLATE "C", hash`.stream).pipe(
    Stream.map((r): MigratedRow => ({
      hash: r.hash,
      sha2: r.sha2,
      oid: r.oid,
      size: toNumber(r.size),
      ...mimeTypeOf(r.mimeType)
    })),
    Stream.mapError((e) => toDatabaseError("stream migrated rows", e))
  )

/**
 * Every migrated row of the range, ordered by `sha2` in byte order. A connection lost under the read (a failover, a
 * terminated backend, a dropped flow: a retryable `DatabaseError`) does not end it: the query starts again at the
 * key (`sha2`, `hash`) of the last row given, past the rows of that key already given, per the retry policy in force
 * (its budget starts anew once a row passes). The merge with the bucket's listing goes on as if nothing happened.
 * Rows of the same `sha2` deleted or added meanwhile do not shift the resumption: only rows of the very same key
 * (a table without a primary key may repeat one) are counted.
 */
export const migratedRows = (range: KeyRange): Stream.Stream<MigratedRow, DatabaseError, SqlClient.SqlClient | Metrics> =>
  Stream.unwrap(Effect.map(SqlClient.SqlClient, (sql) => {
    // where the rows given so far end: the last key, and how many rows of it were given
    let last: Position | undefined
    let givenOfLast = 0
    return Stream.suspend(() => rowsFrom(sql, range, last).pipe(Stream.drop(givenOfLast))).pipe(
      Stream.map((row) => {
        if (last !== undefined && row.sha2 === last.sha2 && row.hash === last.hash) givenOfLast += 1
        else {
          last = { sha2: row.sha2, hash: row.hash }
          givenOfLast = 1
        }
        return row
      }),
      retryStreamInfrastructure("verify: read migrated rows")
    )
  }))

/** The number of migrated rows in the range. */
export const countMigrated: (range: KeyRange) => Effect.Effect<number, DatabaseError, SqlClient.SqlClient> = Effect.fn(
  "MigratedRows.countMigrated"
)(function*(range: KeyRange) {
  const sql = yield* SqlClient.SqlClient
  const [r] = yield* withoutStatementTimeoutOn(sql)(sql<{ readonly n: bigint | number | string }>`
    SELECT count(*) AS n FROM _nice_binary WHERE ${where(sql, range)}`)
  return r === undefined ? 0 : toNumber(r.n)
}, mapSqlError("count migrated rows"))

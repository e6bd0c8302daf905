/**
 * `LoSource` on `@effect/sql-pg`: the rows of `_nice_binary` whose `sha2` is NULL, as keyset pages.
 *
 * - Each page is its own short statement (no transaction, no cursor, no snapshot held for the run): rows the
 *   application inserts behind the cursor are left for the next run, rows it inserts ahead are picked up, rows it
 *   deletes (or that get their sha2 meanwhile) simply stop appearing; nothing is an error.
 * - Order and cursor are `(hash, ctid)`: `hash` uses the application's index on `hash` (or the optional partial index
 *   `(hash) WHERE sha2 IS NULL`, see `ensurePendingIndex`), `ctid` breaks ties when several rows share a hash, so a
 *   page boundary inside a group of duplicates neither skips nor repeats a row. (A row the application UPDATEs gets a
 *   new ctid; it may then be seen again or skipped within this run - harmless: the committer works by hash, and a
 *   pending row skipped now is found by the next run.)
 * - `hash` and `mime_type` are selected as bytes and decoded here (HashColumn.ts, MimeTypeColumn.ts), so that a value
 *   a `SQL_ASCII` database holds in another encoding fails its row, not the page.
 * - `size` is `bigint` in PostgreSQL and decoded as a JS `bigint`: converted to `number` (a value beyond 2^53 turns
 *   into an unsafe integer, which `checkRow` reports as `InvalidSize`).
 * - A page that fails with a retryable `DatabaseError` (a connection reset, a failover) is retried by itself with the
 *   project's policy, from the same cursor; the stream fails only when a page's retry budget is spent.
 * - Where the session has a server-side `statement_timeout` (a pooler refused the startup parameter that lifts it,
 *   and a database or role default applies: `PgDatabase.ts`), each page runs in a transaction of its own with
 *   `SET LOCAL statement_timeout = 0`, as the counts do (LongStatement.ts). A page is short with the index of pending
 *   rows, but without it (the role may not build it, or the same default cancelled its build) the first page of a
 *   resumed run walks the migrated rows of the hash index, which on tens of millions of rows outlasts a typical
 *   default: cancelled (57014) every time, it was retried until the retry budget ended, on every rerun. The client's
 *   own bound (`--pg-statement-timeout`) still applies. Read once, on the first page.
 */
import {
  DatabaseError,
  LoSource,
  Metrics,
  retryInfrastructure,
  type RowCounts,
  type ShardRange,
  type SourceRow
} from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as SqlClient from "effect/sql/SqlClient"
import type * as Statement from "effect/sql/Statement"
import { mapSqlError } from "./DatabaseErrors.ts"
import { hashAfter, hashBytes, hashOf } from "./HashColumn.ts"
import { type MimeTypeBytes, mimeTypeBytes, mimeTypeOf } from "./MimeTypeColumn.ts"
import { shardPredicate } from "./ShardPredicate.ts"
import { timedStatement } from "./StatementTimeout.ts"
import { withoutStatementTimeoutOn } from "./LongStatement.ts"

export interface PgLoSourceOptions {
  /** Rows per keyset page (one statement each). */
  readonly pageSize: number
  /** Only the rows whose `hash` falls in this range (`--shard I/N`, see ShardPredicate.ts); absent: every row. */
  readonly shard?: ShardRange | undefined
}

interface Cursor {
  /** The last row's `hashBytes`: the bytes, not their decoding, which may not be the value (HashColumn.ts). */
  readonly hash: Uint8Array
  readonly ctid: string
}

interface PageRow {
  /** `hashBytes`, decoded by `hashOf` (HashColumn.ts says why). */
  readonly hash: Uint8Array
  readonly oid: number | null
  readonly size: bigint | number | string
  /** `mimeTypeBytes`, decoded by `mimeTypeOf` (MimeTypeColumn.ts says why). */
  readonly mimeType: MimeTypeBytes
  /** `ctid` as text. (Not aliased `ctid`: ORDER BY would then sort by the text, where "(0,10)" < "(0,2)".) */
  readonly cursor: string
}

const toNumber = (n: bigint | number | string | null | undefined): number =>
  n === null || n === undefined ? 0 : typeof n === "number" ? n : Number(n)

const toSourceRow = (r: PageRow): SourceRow => ({
  ...hashOf(r.hash),
  oid: r.oid,
  size: toNumber(r.size),
  ...mimeTypeOf(r.mimeType)
})

/**
 * The statement of one keyset page: the rows after `after` (all of them from the start when it is undefined) whose
 * sha2 is NULL and that are in the shard (`inShard`), in `(hash, ctid)` order. The one place the source's page query
 * is built: a predicate restricting the rows belongs in its WHERE clause, on both branches.
 */
const pageQuery = (
  sql: SqlClient.SqlClient,
  pageSize: number,
  inShard: Statement.Fragment,
  after: Cursor | undefined
) => {
  const columns = sql`${hashBytes(sql)} AS hash, b.data AS oid, b.size,
    ${mimeTypeBytes(sql, "b.mime_type")} AS "mimeType", b.ctid::text AS cursor`
  if (after === undefined) {
    return sql<PageRow>`
        SELECT ${columns}
        FROM _nice_binary b
        WHERE b.sha2 IS NULL AND ${inShard}
        ORDER BY b.hash, b.ctid
        LIMIT ${pageSize}`
  }
  const from = hashAfter(sql, after.hash, after.ctid)
  return sql<PageRow>`
        SELECT ${columns}
        FROM _nice_binary b
        WHERE b.sha2 IS NULL AND b.hash >= ${from} AND (b.hash > ${from} OR b.ctid > ${after.ctid}::tid)
          AND ${inShard}
        ORDER BY b.hash, b.ctid
        LIMIT ${pageSize}`
}

export const make = Effect.fnUntraced(function*(
  options: PgLoSourceOptions
): Effect.fn.Return<LoSource["Service"], never, SqlClient.SqlClient | Metrics> {
  const sql = yield* SqlClient.SqlClient
  const metrics = yield* Metrics
  const pageSize = Math.max(1, Math.floor(options.pageSize))
  const inShard = shardPredicate(sql, options.shard)

  // whether the sessions run under a server-side statement_timeout (see the module's comment); read once
  let timeoutInForce: boolean | undefined = undefined
  /** `query`, in a transaction that lifts the server's statement_timeout where one is in force. */
  const lifted = <A, E, R>(query: Effect.Effect<A, E, R>) =>
    timeoutInForce === true ? withoutStatementTimeoutOn(sql)(query) : query
  const page = (after: Cursor | undefined) =>
    Effect.gen(function*() {
      if (timeoutInForce === undefined) {
        const [row] = yield* sql<{ readonly t: string }>`SELECT current_setting('statement_timeout') AS t`
        timeoutInForce = row !== undefined && row.t !== "0"
      }
      return yield* lifted(pageQuery(sql, pageSize, inShard, after))
    })

  // A page that fails with a retryable error is retried by itself (the `RetryPolicy` in force, each retry counted
  // as "source"), from the same cursor: the rows already emitted are neither lost nor emitted again.
  const fetchPage = Effect.fn("PgLoSource.page")(function*(after: Cursor | undefined) {
    return yield* page(after).pipe(
      mapSqlError("read pending rows"),
      timedStatement("read pending rows"),
      retryInfrastructure("source"),
      Effect.provideService(Metrics, metrics)
    )
  })

  const rows: Stream.Stream<SourceRow, DatabaseError> = Stream.paginate(
    undefined as Cursor | undefined,
    (after) =>
      Effect.map(fetchPage(after), (page) => {
        const last = page.at(-1)
        const next = page.length < pageSize || last === undefined
          ? Option.none<Cursor>()
          : Option.some<Cursor>({ hash: last.hash, ctid: last.cursor })
        return [page.map(toSourceRow), next] as const
      })
  )

  const count: Effect.Effect<RowCounts, DatabaseError> = sql<{
    readonly total: bigint
    readonly remaining: bigint
    readonly remainingBytes: string | bigint | null
    readonly largest: bigint | null
  }>`
    SELECT count(*) AS total,
           count(*) FILTER (WHERE sha2 IS NULL) AS remaining,
           sum(size) FILTER (WHERE sha2 IS NULL) AS "remainingBytes",
           max(size) FILTER (WHERE sha2 IS NULL) AS largest
    FROM _nice_binary
    WHERE ${inShard}`.pipe(
    withoutStatementTimeoutOn(sql), // a long statement (LongStatement.ts)
    Effect.map(([r]) => ({
      total: toNumber(r?.total),
      remaining: toNumber(r?.remaining),
      remainingBytes: toNumber(r?.remainingBytes),
      largest: toNumber(r?.largest)
    })),
    mapSqlError("count rows"),
    Effect.withSpan("PgLoSource.count")
  )

  // one statement, no retry: a caller that only reports it goes on without it
  const pending: Effect.Effect<number, DatabaseError> = Effect.suspend(() =>
    lifted(sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM _nice_binary b WHERE b.sha2 IS NULL AND ${inShard}`)
  ).pipe(
    Effect.map(([r]) => toNumber(r?.n)),
    mapSqlError("count rows left"),
    timedStatement("count rows left"),
    Effect.withSpan("PgLoSource.pending")
  )

  return LoSource.of({ rows, count, pending })
})

/** The source over the `SqlClient` and `Metrics` in context. */
export const layer = (options: PgLoSourceOptions): Layer.Layer<LoSource, never, SqlClient.SqlClient | Metrics> =>
  Layer.effect(LoSource, make(options))

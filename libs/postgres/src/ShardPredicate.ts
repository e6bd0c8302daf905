/**
 * The SQL predicate of a shard (`--shard I/N`) on `_nice_binary.hash`: `hash >= low AND hash < high`, each bound only
 * where the range has one (the first shard has no lower bound, the last no upper one).
 *
 * The comparison is in the column's own collation, on purpose: it is the order of the primary-key index on `hash`
 * (and of the partial index of pending rows), so each shard is one index range scan, whatever the database's
 * collation. (`hash COLLATE "C"` would not use an index built in another collation.) Because the N ranges follow each
 * other in that one total order with open ends, every row falls in exactly one shard whatever its spelling: upper-case
 * hashes included. Under "C" (byte order) an upper-case hash sorts by its bytes ('A'..'F' between '9' and 'a'), so it
 * may land in another shard than its lower-case spelling would; under linguistic collations (en_US, ICU) upper and
 * lower case compare equal at the first level, so it lands where its value says (see libs/postgres/README.md).
 */
import type { ShardRange } from "@lo-migrate/core"
import type * as Statement from "effect/sql/Statement"
import type * as SqlClient from "effect/sql/SqlClient"

/** `TRUE` for no shard (the whole table). */
export const shardPredicate = (
  sql: SqlClient.SqlClient,
  range: ShardRange | undefined,
  column = "hash"
): Statement.Fragment =>
  sql.and([
    ...(range?.low === undefined ? [] : [sql`${sql(column)} >= ${range.low}`]),
    ...(range?.high === undefined ? [] : [sql`${sql(column)} < ${range.high}`])
  ])

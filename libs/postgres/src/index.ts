/** `@lo-migrate/postgres`: the PostgreSQL adapters (source, reader, committer), the schema tasks and the pool. */
export * from "./DatabaseErrors.ts"
/** Adapter module, the connection pool: `PgDatabase.layer(config)`, `.make`. */
export * as PgDatabase from "./PgDatabase.ts"
/** The pool of a host list, which follows the cluster through a failover: `ClusterClient.make(choose, attrs)`. */
export * as ClusterClient from "./ClusterClient.ts"
/** libpq's reading of a connection URL: `PgUrl.resolve(url, environment)`, `PgUrlError`. */
export * as PgUrl from "./PgUrl.ts"
/** libpq's password file: `PgPass.lookup(text, target)`, `PgPass.readLookup(path, target)`. */
export * as PgPass from "./PgPass.ts"
/** libpq's `sslmode` table as TLS options: `PgTls.plan(inputs)`. */
export * as PgTls from "./PgTls.ts"
export * from "./Catalog.ts"
export * from "./Schema.ts"
export * from "./SchemaErrors.ts"
export * from "./SchemaLock.ts"
export * from "./SchemaTasks.ts"
/** Adapter module, the live `LoReader`: `PgLoReader.layer(options)`, `.make`, `.defaultChunkSize`. */
export * as PgLoReader from "./PgLoReader.ts"
/** Adapter module, the live `LoSource`: `PgLoSource.layer(options)`, `.make`. */
export * as PgLoSource from "./PgLoSource.ts"
/** Adapter module, the live `HashCommitter`: `PgHashCommitter.layer`, `.make`. */
export * as PgHashCommitter from "./PgHashCommitter.ts"
export * from "./SpillDirs.ts"
export * from "./ShardPredicate.ts"
export * from "./HashColumn.ts"
export * from "./MimeTypeColumn.ts"
export * from "./TableStatus.ts"
export * from "./StatementTimeout.ts"
export * from "./LongStatement.ts"

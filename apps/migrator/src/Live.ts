/**
 * The live services of one run, from its validated configuration: PostgreSQL (`@lo-migrate/postgres`), S3
 * (`@lo-migrate/s3`), the in-process metrics, and the failure report. This is the only place that wires adapters.
 */
import { Metrics, shardRange } from "@lo-migrate/core"
import {
  defaultChunkSize,
  PgDatabase,
  PgHashCommitter,
  PgLoReader,
  type PgLoReaderOptions,
  PgLoSource,
  StatementTimeout
} from "@lo-migrate/postgres"
import { defaultS3StoreConfig, multipartPartSize, S3ObjectStore, type S3StoreConfig } from "@lo-migrate/s3"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { DatabaseConfig, MigratorConfig } from "./Config.ts"
import { Leftovers } from "./Leftovers.ts"
import { FailureReport } from "./Report.ts"
import { SchemaTasks } from "./SchemaTasks.ts"

/** Rows fetched per keyset page of `sha2 IS NULL`. */
const pageSize = 1000

export const s3StoreConfigOf = (config: MigratorConfig): S3StoreConfig => ({
  ...defaultS3StoreConfig,
  bucket: config.bucket,
  endpoint: config.s3Url.toString().replace(/\/$/, ""),
  region: config.region,
  forcePathStyle: config.pathStyle,
  accessKeyId: config.accessKeyId === undefined ? undefined : Redacted.make(config.accessKeyId),
  secretAccessKey: config.secretAccessKey,
  partSize: config.uploadChunkSize,
  socketTimeoutMs: config.requestTimeout * 1000,
  connectionTimeoutMs: config.connectTimeout * 1000,
  // each storer uploads one object at a time, a multipart one with a few parts in flight
  maxSockets: config.storerThreads * (defaultS3StoreConfig.partConcurrency ?? 2)
})

/**
 * The large-object reader's options. It is told the part size the store will cut each spilled object into, so its one
 * pass over the bytes also digests the parts of a multipart upload (the store then does not read the file to hash it).
 */
export const readerOptionsOf = (config: MigratorConfig): PgLoReaderOptions => {
  const partSize = s3StoreConfigOf(config).partSize
  return {
    inMemMax: config.inMemMax,
    tempDir: config.tempDir,
    chunkSize: defaultChunkSize,
    partSizeFor: (size) => multipartPartSize(size, partSize)
  }
}

/** Readers and committers each hold a connection while working; the source, the counter and schema tasks one each. */
export const poolSizeOf = (config: MigratorConfig): number => config.receiverThreads + config.committerThreads + 3

/**
 * Two pools. Readers and committers run only short statements: their connections are cut when they stall for
 * --pg-statement-timeout (`StalledSockets`, which also cuts a stalled BEGIN/COMMIT). The source's page query is
 * bounded by the same timeout per statement (`StatementTimeout`); its row count and the schema tasks (an index build)
 * may run long, so their pool has no stall guard.
 */
export const migrateLayer = (config: MigratorConfig) => {
  const database = (maxConnections: number, guarded: boolean) =>
    PgDatabase.layer({
      url: config.pgUrl,
      maxConnections,
      connectTimeout: `${config.connectTimeout} seconds`,
      ...(guarded ? { stallTimeout: { millis: config.pgStatementTimeout * 1000, describe: "--pg-statement-timeout" } } : {})
    })
  const postgres = Layer.mergeAll(
    Layer.merge(
      PgLoSource.layer({ pageSize, shard: config.shard === undefined ? undefined : shardRange(config.shard) }),
      SchemaTasks.layer
    ).pipe(Layer.provide(database(3, false))),
    Layer.merge(PgLoReader.layer(readerOptionsOf(config)), PgHashCommitter.layer).pipe(
      Layer.provide(database(poolSizeOf(config) - 3, true))
    )
  )
  const statementTimeout = Layer.succeed(StatementTimeout, Duration.seconds(config.pgStatementTimeout))
  const report = config.report === undefined
    ? FailureReport.logOnly
    : FailureReport.file(config.report).pipe(Layer.provide(NodeServices.layer))
  const s3 = S3ObjectStore.layer(s3StoreConfigOf(config))
  const leftovers = Leftovers.layer(config.tempDir).pipe(Layer.provide(s3))
  // the source counts its own page retries: it needs the run's Metrics
  return Layer.mergeAll(postgres, Layer.merge(s3, leftovers), report, statementTimeout).pipe(
    Layer.provideMerge(Metrics.layer)
  )
}

export const finalizeLayer = (config: DatabaseConfig) =>
  SchemaTasks.layer.pipe(Layer.provide(PgDatabase.layer({ url: config.pgUrl, maxConnections: 2 })))

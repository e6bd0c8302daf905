/**
 * The live services of every command, from its validated configuration: PostgreSQL (`@lo-migrate/postgres`), S3
 * (`@lo-migrate/s3`), the in-process metrics, and the failure report. This is the only place that wires adapters:
 * `migrate`, `finalize`, `verify` and `status` (main.ts) and the bench's stage profile (tools/bench/src/stages.ts) all build
 * their services here (`status` and `finalize` through LiveDatabase.ts, re-exported here), so what is measured is what runs.
 */
import { Metrics, shardRange } from "@lo-migrate/core"
import {
  PgDatabase,
  PgHashCommitter,
  PgLoReader,
  PgLoSource,
  SchemaTasks,
  StatementTimeout
} from "@lo-migrate/postgres"
import {
  defaultS3StoreConfig,
  S3ClientService,
  S3ObjectStore,
  type S3StoreConfig
} from "@lo-migrate/s3"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { DatabaseConfig, MigratorConfig } from "./Config.ts"
import { Leftovers } from "./Leftovers.ts"
import { FailureReport } from "./Report.ts"
import type { VerifyConfig } from "./VerifyOptions.ts"

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

/** The large-object reader's options. How the store cuts a body into parts it learns from the store (`BodyCut`). */
export const readerOptionsOf = (config: MigratorConfig): PgLoReader.PgLoReaderOptions => ({
  inMemMax: config.inMemMax,
  tempDir: config.tempDir,
  chunkSize: PgLoReader.defaultChunkSize,
  inMemoryBudget: config.maxInMemoryBytes
})

/** The source's pool: one connection each for the page query, the row count and the schema tasks. */
const sourcePoolSize = 3

/** The workers' pool: readers and committers each hold a connection while working. */
const workerPoolSize = (config: MigratorConfig): number => config.receiverThreads + config.committerThreads

/**
 * The ports of a run (source, reader, store, committer), the schema tasks, the statement timeout and the metrics,
 * live; `migrate` adds the start-up clean-up and the failure report, the bench times each port call of exactly these.
 *
 * Two pools. Readers and committers run only short statements: their connections are cut when they stall for
 * --pg-statement-timeout (`StalledSockets`, which also cuts a stalled BEGIN/COMMIT). The source's page query is
 * bounded by the same timeout per statement (`StatementTimeout`); its row count and the schema tasks (an index build)
 * may run long, so their pool has no stall guard.
 */
export const portsLayer = (config: MigratorConfig) => {
  const database = (maxConnections: number, guarded: boolean) =>
    PgDatabase.layer({
      url: config.pgUrl,
      options: config.pgOptions,
      preparedStatements: !config.pgTransactionPooler,
      maxConnections,
      connectTimeout: `${config.connectTimeout} seconds`,
      ...(guarded ? { stallTimeout: { millis: config.pgStatementTimeout * 1000, describe: "--pg-statement-timeout" } } : {}),
      // one warning per run when a pooler refuses the startup parameter: the source's pool gives it
      warnWhenRefused: !guarded
    })
  const s3 = S3ObjectStore.layer(s3StoreConfigOf(config))
  const postgres = Layer.mergeAll(
    Layer.merge(
      PgLoSource.layer({ pageSize, shard: config.shard === undefined ? undefined : shardRange(config.shard) }),
      SchemaTasks.layer
    ).pipe(Layer.provide(database(sourcePoolSize, false))),
    // the reader digests parts along the cut the store announces (the one pass over the bytes serves both)
    Layer.merge(PgLoReader.layer(readerOptionsOf(config)), PgHashCommitter.layer).pipe(
      Layer.provide([database(workerPoolSize(config), true), NodeServices.layer, s3])
    )
  )
  const statementTimeout = Layer.succeed(StatementTimeout, Duration.seconds(config.pgStatementTimeout))
  // the source counts its own page retries: it needs the run's Metrics
  return Layer.mergeAll(postgres, s3, statementTimeout).pipe(Layer.provideMerge(Metrics.layer))
}

/** Everything `migrate` needs besides `Shutdown`: the ports, the clean-up of ended runs, the failure report. */
export const migrateLayer = (config: MigratorConfig) => {
  const report = config.report === undefined ? FailureReport.logOnly : FailureReport.file(config.report)
  return Layer.merge(Leftovers.layer(config.tempDir), report).pipe(
    Layer.provide(NodeServices.layer),
    Layer.provideMerge(portsLayer(config))
  )
}

/** `finalize` and `status` need PostgreSQL only: their layers live in LiveDatabase.ts (no AWS SDK to load). */
export { finalizeLayer, statusLayer } from "./LiveDatabase.ts"

/** `verify`: one streamed query, a count and repair batches; the listing and the checks; the metrics. */
export const verifyLayer = (config: VerifyConfig) =>
  Layer.mergeAll(
    PgDatabase.layer({
      url: config.connection.pgUrl,
      options: config.connection.pgOptions,
      preparedStatements: !config.connection.pgTransactionPooler,
      maxConnections: 3,
      connectTimeout: `${config.connection.connectTimeout} seconds`,
      applicationName: "lo-migrate verify"
    }),
    S3ClientService.layer({ ...s3StoreConfigOf(config.connection), maxSockets: config.concurrency + 2 }),
    Metrics.layer
  )

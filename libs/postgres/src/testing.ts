/**
 * Test support for code that talks to a real PostgreSQL (`@lo-migrate/postgres/testing`), one concept per module:
 *
 * - `ThrowawayDatabase`: uniquely named databases dropped when released, and the admin operations behind them.
 * - Seeding: `createNiceBinaryTable`, `insertBinary`, `createBatchJobTable`, generated content of any size.
 * - Data sets: `seedOriginalDataSet`, `seedInvalidDataSet`.
 * - `serverSocket`: the test server's Unix socket, as seen from this host.
 * - Roles: `throwawayRole` with `minimalGrants`, `inThrowawayDatabase`.
 * - `TlsServer`: a throwaway PostgreSQL 15 of its own that accepts TLS only (self-signed certificate).
 * - `PgBouncer`: a PgBouncer of its own in front of the test PostgreSQL (transaction pooling).
 * - `StandbyServer`: a throwaway PostgreSQL 15 of its own that is a standby (in recovery, read-only), seeded before.
 * - `ReplicatedCluster`: a throwaway primary and a streaming standby of it, to fail over from one to the other.
 * - `SilentDrop`: an nftables rule that silently drops a loopback port's packets (a forwarder's, of a test's own).
 */
export * from "./testing/DataSets.ts"
export * from "./testing/Roles.ts"
export * from "./testing/Seeding.ts"
export * from "./testing/ServerSocket.ts"
export * from "./testing/ThrowawayDatabase.ts"
export * as TlsServer from "./testing/TlsServer.ts"
export * as PgBouncer from "./testing/PgBouncer.ts"
export * as StandbyServer from "./testing/StandbyServer.ts"
export * as ReplicatedCluster from "./testing/ReplicatedCluster.ts"
export * as SilentDrop from "./testing/SilentDrop.ts"

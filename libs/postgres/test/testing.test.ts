import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Redacted, Scope } from "effect"
import { SqlClient } from "effect/sql"
import {
  createNiceBinaryTable,
  generateBytes,
  insertBinary,
  inThrowawayDatabase,
  largeObjectOids,
  seedInvalidDataSet,
  seedOriginalDataSet,
  testAdminUrl,
  ThrowawayDatabase
} from "../src/testing.ts"
import { readFileSync } from "node:fs"
import { resolve } from "node:path"
import { PgDatabase } from "../src/index.ts"

const databaseExists = (name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM pg_database WHERE datname = ${name}`
    return rows[0]!.n === 1n
  }).pipe(Effect.provide(PgDatabase.layer({ url: Redacted.make(testAdminUrl()), maxConnections: 1 })))

describe("ThrowawayDatabase", () => {
  it.live("creates a uniquely named database and drops it on release, even with open connections", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const a = yield* Scope.provide(ThrowawayDatabase.make, scope)
      const b = yield* Scope.provide(ThrowawayDatabase.make, scope)
      assert.notStrictEqual(a.name, b.name)
      assert.isTrue(yield* databaseExists(a.name))
      assert.include(Redacted.value(a.url), `/${a.name}`)
      // an open pool on it does not stop the drop (WITH (FORCE))
      const poolScope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(PgDatabase.layer({ url: a.url, maxConnections: 1 }), poolScope)
      const sqlA = Context.get(context, SqlClient.SqlClient)
      yield* sqlA`SELECT 1` // the pool keeps this connection open
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(yield* databaseExists(a.name))
      assert.isFalse(yield* databaseExists(b.name))
      yield* Scope.close(poolScope, Exit.void)
    }))
})

describe("seeding helpers", () => {
  it.live("insertBinary stores exactly the bytes it reports (checked by the server's own sha256)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createNiceBinaryTable()
      const literal = yield* insertBinary({ bytes: generateBytes({ size: 5000, seed: 3 }), mimeType: "a/b" })
      const generated = yield* insertBinary({ bytes: { size: 9 * 1024 * 1024 + 7, seed: 4 }, mimeType: "c/d" })
      for (const b of [literal, generated]) {
        const [r] = yield* sql<{ readonly sha256: string; readonly size: bigint; readonly hash: string }>`
          SELECT encode(sha256(lo_get(data)), 'hex') AS sha256, size, hash FROM _nice_binary WHERE hash = ${b.hash}`
        assert.strictEqual(r!.sha256, b.digests.sha256)
        assert.strictEqual(Number(r!.size), b.digests.size)
        assert.strictEqual(r!.hash, b.digests.sha1)
      }
      assert.deepStrictEqual(generateBytes({ size: 100, seed: 9 }), generateBytes({ size: 100, seed: 9 }))
    }).pipe(inThrowawayDatabase()))

  it.live("the data sets contain what they say", () =>
    Effect.gen(function*() {
      yield* createNiceBinaryTable()
      const original = yield* seedOriginalDataSet
      assert.strictEqual(original.big.size, 10 * 1024 * 1024)
      assert.strictEqual(original.empty.size, 0)
      assert.isNotNull(original.migrated.sha2)
      assert.notInclude(original.pending, original.migrated)
      const invalid = yield* seedInvalidDataSet
      const oids = yield* largeObjectOids
      assert.notInclude(oids, invalid.missingObject.oid)
      assert.isNull(invalid.nullOid.oid)
      assert.strictEqual(invalid.shortHash.hash.length, 40, "char(40) pads the short hash")
      assert.isTrue(invalid.shortHash.hash.endsWith(" "))
      assert.deepStrictEqual(
        invalid.all.map((r) => r.expected),
        ["MalformedHash", "Sha1Mismatch", "MalformedHash", "MissingLargeObject", "NullOid", "SizeMismatch"]
      )
    }).pipe(inThrowawayDatabase()))
})

describe("the sample database of docker/initdb", () => {
  it.live("its CREATE TABLE _nice_binary defines the table createNiceBinaryTable defines (before the sha2 column)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const file = readFileSync(resolve(import.meta.dirname, "../../../docker/initdb/01-nice-binary.sql"), "utf8")
      const ddl = /CREATE TABLE _nice_binary \([^;]*\);/.exec(file)
      assert.isNotNull(ddl, "docker/initdb/01-nice-binary.sql has no CREATE TABLE _nice_binary (...);")
      // the same statement in two schemas: the sample's, and the helper's
      const describe = (schema: string) =>
        sql<{ readonly definition: string }>`
          SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                 AS definition
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ${schema} AND c.relname = '_nice_binary' AND a.attnum > 0 AND NOT a.attisdropped
          UNION ALL
          SELECT con.conname || ' ' || pg_get_constraintdef(con.oid)
          FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ${schema} AND c.relname = '_nice_binary'
          ORDER BY 1`
      yield* sql`CREATE SCHEMA sample`
      yield* sql.unsafe(ddl![0].replace("CREATE TABLE _nice_binary", "CREATE TABLE sample._nice_binary"))
      yield* createNiceBinaryTable({ sha2Column: false })
      const sample = (yield* describe("sample")).map((r) => r.definition)
      const helper = (yield* describe("public")).map((r) => r.definition)
      assert.deepStrictEqual(sample, helper)
      assert.include(helper, "_nice_binary_pkey PRIMARY KEY (hash)")
      assert.include(helper, "mime_type character varying(255) NOT NULL")
    }).pipe(inThrowawayDatabase()))
})

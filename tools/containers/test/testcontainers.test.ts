/**
 * The testcontainers path, run by tools/containers/check.sh through podman's Docker-compatible socket (DOCKER_HOST,
 * TESTCONTAINERS_RYUK_DISABLED=true): a PostgreSQL container (the locally built stand-in, or any postgres image) with
 * the compose sample `_nice_binary`, migrated by the lo-migrate image as a one-shot container into the real Ceph RGW.
 * Both containers use the host network, bound to 127.0.0.1 only. Not part of `npm test`: it needs a container engine.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { resolve } from "node:path"
import { GenericContainer, type StartedTestContainer, Wait } from "testcontainers"

const need = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") {
    throw new Error(`${name} is not set: run this test through tools/containers/check.sh, which builds the images`)
  }
  return value
}

const started = (container: GenericContainer) =>
  Effect.acquireRelease(
    Effect.tryPromise(() => container.start()),
    (c: StartedTestContainer) => Effect.promise(() => c.stop({ remove: true, removeVolumes: true })).pipe(Effect.ignore)
  )

const psql = (pg: StartedTestContainer, port: number, sql: string) =>
  Effect.tryPromise(() =>
    pg.exec(["psql", "-h", "127.0.0.1", "-p", String(port), "-U", "app", "-d", "nice", "-Atc", sql], {
      env: { PGPASSWORD: "tc-password" }
    })
  ).pipe(Effect.map((r) => {
    if (r.exitCode !== 0) throw new Error(`psql failed (${r.exitCode}): ${r.output}`)
    return r.stdout.trim()
  }))

describe("testcontainers through the podman socket", () => {
  it.effect("a PostgreSQL container's _nice_binary is migrated by the lo-migrate image into Ceph RGW", () =>
    Effect.gen(function*() {
      const port = Number(need("TC_PG_PORT"))
      const pg = yield* started(
        new GenericContainer(need("TC_PG_IMAGE"))
          .withNetworkMode("host")
          .withEnvironment({ POSTGRES_USER: "app", POSTGRES_PASSWORD: "tc-password", POSTGRES_DB: "nice" })
          .withBindMounts([{
            source: resolve(import.meta.dirname, "../../../docker/initdb"),
            target: "/docker-entrypoint-initdb.d",
            mode: "ro"
          }])
          .withCommand(["postgres", "-p", String(port), "-c", "listen_addresses=127.0.0.1"])
          .withWaitStrategy(Wait.forLogMessage("database system is ready to accept connections"))
          .withStartupTimeout(120_000)
      )
      assert.strictEqual(yield* psql(pg, port, "SELECT count(*) FROM _nice_binary"), "303")
      // The three invalid rows would make the run exit 1; a one-shot container must exit 0 to count as started.
      yield* psql(pg, port, "DELETE FROM _nice_binary WHERE data IS NULL OR length(hash) <> 40 OR hash LIKE '00000000%'")

      yield* started(
        new GenericContainer(need("TC_APP_IMAGE"))
          .withNetworkMode("host")
          .withEnvironment({
            PG_URL: `postgresql://app:tc-password@127.0.0.1:${port}/nice`,
            S3_URL: need("S3_ENDPOINT"),
            S3_BUCKET: need("TC_BUCKET"),
            AWS_ACCESS_KEY_ID: need("S3_ACCESS_KEY_ID"),
            AWS_SECRET_ACCESS_KEY: need("S3_SECRET_ACCESS_KEY"),
            AWS_REGION: "us-east-1"
          })
          .withWaitStrategy(Wait.forOneShotStartup())
          .withStartupTimeout(180_000)
      )
      const [migrated, pending, wrong] = (yield* psql(
        pg,
        port,
        "SELECT count(*) FILTER (WHERE sha2 IS NOT NULL), count(*) FILTER (WHERE sha2 IS NULL), " +
          "count(*) FILTER (WHERE sha2 <> encode(digest(lo_get(data), 'sha256'), 'hex')) FROM _nice_binary"
      )).split("|")
      assert.deepStrictEqual({ migrated, pending, wrong }, { migrated: "300", pending: "0", wrong: "0" })
    }).pipe(Effect.scoped), { timeout: 300_000 })
})

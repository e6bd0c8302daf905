/**
 * S3 over https, against the real Ceph RGW: the fault proxy's TLS front (a throwaway CA and a certificate for
 * 127.0.0.1, made with openssl for the test and removed after it) in front of the gateway's plain HTTP port, the CLI
 * as a child process, as an operator runs it.
 *
 * - The CA trusted through `NODE_EXTRA_CA_CERTS`: a migration completes over https, every object right (a single PUT
 *   and a multipart upload); a byte flipped in two request bodies inside the TLS session is detected by the gateway
 *   (Content-MD5 / x-amz-content-sha256) and the body sent again.
 * - A reset connection under TLS is retried on a new TLS connection, as under http.
 * - The CA not trusted: exit 2 at start-up at once (a configuration error, not waited out through --retry-budget),
 *   the message says the server's certificate was not trusted, no secret in it. The same when NODE_EXTRA_CA_CERTS
 *   names a file that does not exist: Node only prints a warning at start (shown here), the CA is simply not there.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Fault, FaultProxy, type FaultStats, flipByte, makeTestCertificates, passThrough, reset } from "@lo-migrate/faults"
import { insertBinary } from "@lo-migrate/postgres/testing"
import { TestBucket } from "@lo-migrate/s3/testing"
import { Effect } from "effect"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assertInvariant, assertMigrated, committedCount, Env, listOpenUploads, runCli, settings, setUpSchema } from "./cli.ts"

/** 12 objects of 16-38 KiB and one of 5 MiB + 64 KiB (spilled with --in-mem-max 1024, 2 parts of 5 MiB). */
const seed = Effect.forEach(
  Array.from({ length: 13 }, (_, i) => i),
  (i) =>
    insertBinary({
      bytes: { size: i === 6 ? (5 * 1024 + 64) * 1024 : 16 * 1024 + ((i * 7919) % 23) * 1024, seed: 7100 + i },
      mimeType: "image/png"
    }),
  { concurrency: 4 }
)

const options = (tempDir: string) => [
  "--storer-threads", "2", "--receiver-threads", "2", "--in-mem-max", "1024", "--upload-chunk-size", "5120",
  "--commit-chunk", "4", "-i", "1", "--request-timeout", "5", "--retry-budget", "300", "--temp-dir", tempDir
]

/**
 * One CLI run against the bucket through the proxy's TLS front, with `fault` set from the start; `trust` gives the
 * child `NODE_EXTRA_CA_CERTS` (the throwaway CA). Returns the run and the proxy's counters.
 */
const overHttps = (fault: Fault, trust: boolean | "missing file") =>
  Effect.gen(function*() {
    yield* setUpSchema
    const rows = yield* seed
    const { env } = yield* settings
    const bucket = yield* TestBucket
    const certs = yield* makeTestCertificates
    const proxy = yield* FaultProxy.make({ targetPort: Number(new URL(bucket.config.endpoint!).port), tls: certs, maxStallMillis: 30_000 })
    assert.match(proxy.url, /^https:\/\/127\.0\.0\.1:\d+$/)
    yield* proxy.setFault(fault)
    const dir = mkdtempSync(join(tmpdir(), "lo-migrate-https-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const extraCa = trust === true ? { NODE_EXTRA_CA_CERTS: certs.caFile } :
      trust === "missing file" ? { NODE_EXTRA_CA_CERTS: join(certs.dir, "no-such-ca.pem") } :
      {}
    const run = yield* runCli(options(dir), { ...env, S3_URL: proxy.url, ...extraCa })
    const stats: FaultStats = yield* proxy.stats
    return { run, stats, rows, bucket, dir }
  })

/** Exit 0, every row's object right, nothing left open or on disk, every request over TLS. */
const assertComplete = (result: Effect.Success<ReturnType<typeof overHttps>>) =>
  Effect.gen(function*() {
    const { run, stats, rows, bucket, dir } = result
    assert.strictEqual(run.code, 0, run.stderr)
    yield* assertMigrated(rows)
    assert.strictEqual((yield* assertInvariant).left, 0)
    assert.deepStrictEqual(yield* listOpenUploads(bucket.client, bucket.name), [], "no multipart upload left open")
    assert.deepStrictEqual(readdirSync(dir), [], "no file left in --temp-dir")
    assert.isAtLeast(stats.multipartUploads, 1, "the large object went up in parts, over https")
    assert.isAtLeast(stats.handshakes, 1)
    assert.strictEqual(stats.handshakesFailed, 0, "the child trusted the certificate")
    assert.strictEqual(stats.handshakes, stats.connections, "every connection was TLS")
  })

/** A run whose child does not trust the certificate: refused at start-up. */
const untrusted = (trust: false | "missing file") =>
  Effect.gen(function*() {
    const { run, stats } = yield* overHttps(passThrough, trust)
    assert.strictEqual(run.code, 2, run.stderr)
    assert.include(run.stderr, "Refusing to start")
    assert.match(
      run.stderr,
      /bucket check: S3 HeadBucket .* UNABLE_TO_VERIFY_LEAF_SIGNATURE: the server's TLS certificate is not trusted: .*NODE_EXTRA_CA_CERTS/
    )
    assert.notInclude(run.stderr, "retrying")
    assert.isAtLeast(stats.handshakesFailed, 1, "the child refused the certificate")
    assert.strictEqual(stats.requests, 0, "no request reached the gateway")
    assert.strictEqual(yield* committedCount, 0)
    return run
  })

describe("S3 over https (the fault proxy's TLS front in front of Ceph RGW; PostgreSQL + Ceph RGW)", () => {
  it.live("CA trusted with NODE_EXTRA_CA_CERTS: migrated over https; 2 bodies corrupted inside TLS are detected and resent", () =>
    Effect.gen(function*() {
      const result = yield* overHttps(flipByte(2, 3), true)
      yield* assertComplete(result)
      assert.strictEqual(result.stats.flipped, 2, JSON.stringify(result.stats))
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("a reset connection under TLS (every 5th request) is retried on a new TLS connection", () =>
    Effect.gen(function*() {
      const result = yield* overHttps(reset(0.2), true)
      yield* assertComplete(result)
      assert.isAtLeast(result.stats.resets, 2, JSON.stringify(result.stats))
      assert.match(result.run.stdout, /Retries: [1-9]/)
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("CA not trusted: exit 2 at start-up at once, the certificate named as not trusted, nothing retried", () =>
    Effect.gen(function*() {
      yield* untrusted(false)
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)

  it.live("NODE_EXTRA_CA_CERTS naming a missing file: Node only warns, then the same exit 2 (not trusted)", () =>
    Effect.gen(function*() {
      const run = yield* untrusted("missing file")
      assert.match(run.stderr, /Warning: Ignoring extra certs from `[^`]*no-such-ca\.pem`, load failed/)
    }).pipe(Effect.scoped, Effect.provide(Env)), 120_000)
})

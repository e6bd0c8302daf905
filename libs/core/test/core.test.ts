import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Option, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { createHash } from "node:crypto"
import {
  checkRow,
  DatabaseError,
  digestBytes,
  isSha1Hex,
  isSha256Hex,
  makeDigester,
  makePartDigester,
  MalformedHash,
  Oid,
  Metrics,
  defaultRetry,
  retryInfrastructure,
  retrySchedule,
  RowFailed,
  type SourceRow,
  StorageError,
  verifyDigests
} from "../src/index.ts"

const row = (bytes: Uint8Array, over: Partial<SourceRow> = {}): SourceRow => ({
  hash: createHash("sha1").update(bytes).digest("hex"),
  oid: 1234,
  size: bytes.byteLength,
  mimeType: "text/plain",
  ...over
})

const failureTag = <A>(exit: Exit.Exit<A, RowFailed>) =>
  Exit.isFailure(exit) ? Option.map(Exit.findErrorOption(exit), (e) => e.reason._tag) : Option.none()

describe("runtime", () => {
  it("runs on Node.js 24 or newer (brought by the repo's own node package)", () => {
    const major = Number(process.versions.node.split(".")[0])
    assert.isAtLeast(major, 24)
  })
})

describe("digests", () => {
  it("computes size, SHA-1, SHA-256 and base64 MD5 in one pass", () => {
    const bytes = new TextEncoder().encode("hello world")
    const d = digestBytes(bytes)
    assert.strictEqual(d.size, 11)
    assert.strictEqual(d.sha1, "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed")
    assert.strictEqual(d.sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
    assert.strictEqual(d.md5Base64, createHash("md5").update(bytes).digest("base64"))
  })

  it("without the whole MD5 (a body sent in parts): the same size, SHA-1 and SHA-256, no MD5", () => {
    const bytes = new TextEncoder().encode("hello world")
    const d = makeDigester({ wholeMd5: false })
    d.update(bytes.subarray(0, 4))
    d.update(bytes.subarray(4))
    const { md5Base64, ...rest } = d.digest()
    assert.isUndefined(md5Base64)
    const { md5Base64: _, ...whole } = digestBytes(bytes)
    assert.deepStrictEqual(rest, whole)
  })

  it.effect("accepts a row whose size and SHA-1 match", () =>
    Effect.gen(function*() {
      const bytes = new Uint8Array([1, 2, 3])
      yield* verifyDigests(row(bytes), digestBytes(bytes))
    }))

  it.effect("reports a size mismatch before a SHA-1 mismatch", () =>
    Effect.gen(function*() {
      const bytes = new Uint8Array([1, 2, 3])
      const exit = yield* Effect.exit(verifyDigests(row(bytes, { size: 4 }), digestBytes(bytes)))
      assert.deepStrictEqual(failureTag(exit), Option.some("SizeMismatch"))
      const exit2 = yield* Effect.exit(verifyDigests(row(bytes, { hash: "0".repeat(40) }), digestBytes(bytes)))
      assert.deepStrictEqual(failureTag(exit2), Option.some("Sha1Mismatch"))
    }))
})

describe("part digests", () => {
  const slices = (bytes: Uint8Array, partSize: number) => {
    const out: Array<Uint8Array> = []
    for (let at = 0; at < bytes.byteLength; at += partSize) out.push(bytes.subarray(at, at + partSize))
    return out
  }

  it("digests every part of the bytes however they are cut into chunks", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }),
        fc.integer({ min: 1, max: 700 }),
        fc.array(fc.integer({ min: 0, max: 900 }), { maxLength: 12 }),
        (bytes, partSize, cuts) => {
          const d = makePartDigester(partSize)
          // feed the bytes in chunks of the given lengths (0 included), then the rest
          let at = 0
          for (const n of cuts) {
            d.update(bytes.subarray(at, Math.min(bytes.byteLength, at + n)))
            at = Math.min(bytes.byteLength, at + n)
          }
          d.update(bytes.subarray(at))
          const parts = d.digest()
          const expected = slices(bytes, partSize)
          assert.strictEqual(parts.partSize, partSize)
          assert.deepStrictEqual(parts.md5Base64, expected.map((p) => createHash("md5").update(p).digest("base64")))
          assert.deepStrictEqual(parts.sha256Hex, expected.map((p) => createHash("sha256").update(p).digest("hex")))
        }
      ),
      { numRuns: 300 }
    )
  })

  it("has one part per started part size, none for no bytes, and refuses a part size that is not positive", () => {
    const exact = makePartDigester(4)
    exact.update(new Uint8Array(8))
    assert.strictEqual(exact.digest().md5Base64.length, 2)
    const over = makePartDigester(4)
    over.update(new Uint8Array(9))
    assert.strictEqual(over.digest().sha256Hex.length, 3)
    assert.deepStrictEqual(makePartDigester(4).digest().md5Base64, [])
    assert.throws(() => makePartDigester(0), /positive integer/)
    assert.throws(() => makePartDigester(1.5), /positive integer/)
  })
})

describe("row checks", () => {
  it.effect("rejects malformed hashes, NULL oids and impossible sizes, naming the row", () =>
    Effect.gen(function*() {
      const ok = row(new Uint8Array([9]))
      const cases: ReadonlyArray<readonly [SourceRow, string]> = [
        [{ ...ok, hash: "abc" }, "MalformedHash"],
        [{ ...ok, hash: "G" + ok.hash.slice(1).toUpperCase() }, "MalformedHash"],
        [{ ...ok, hash: "g".repeat(40) }, "MalformedHash"],
        [{ ...ok, hash: `${ok.hash.slice(0, 39)} ` }, "MalformedHash"],
        [{ ...ok, oid: null }, "NullOid"],
        [{ ...ok, size: -1 }, "InvalidSize"],
        // bytes a SQL_ASCII database holds that are not UTF-8: named as such, before anything else about the row
        [{ ...ok, hash: "ab\uFFFD", hashNotUtf8: "6162e4", oid: null }, "HashNotUtf8"],
        [{ ...ok, mimeTypeNotUtf8: "e4" }, "MimeTypeNotUtf8"]
      ]
      for (const [bad, tag] of cases) {
        const exit = yield* Effect.exit(checkRow(bad))
        assert.deepStrictEqual(failureTag(exit), Option.some(tag), JSON.stringify(bad))
      }
      const checked = yield* checkRow(ok)
      assert.strictEqual(checked.oid, 1234)
      // upper (or mixed) case is the same SHA-1 written differently: valid, verified in lower case, row kept as is
      for (const hash of [ok.hash.toUpperCase(), ok.hash.slice(0, 20).toUpperCase() + ok.hash.slice(20)]) {
        const upper = yield* checkRow({ ...ok, hash })
        assert.strictEqual(upper.sha1, ok.hash)
        assert.strictEqual(upper.row.hash, hash)
        yield* verifyDigests(upper.row, digestBytes(new Uint8Array([9])))
      }
      // the domain's Oid covers the whole unsigned 32-bit range
      for (const oid of [1, 2147483647, 2147483648, 3000000000, 4294967295]) assert.isTrue(Schema.is(Oid)(oid), String(oid))
      for (const oid of [0, -1, 4294967296, 1.5]) assert.isFalse(Schema.is(Oid)(oid), String(oid))
      // any mime type passes: one that cannot be a header value is stored in metadata (ContentType.ts)
      const odd = ["text/plain\r\nX-Injected: 1", "text/\u0000plain", "image/\u20ac", "x".repeat(10_000)]
      for (const mimeType of [null, "", "application/pdf; charset=\"utf-8\"", "text/plain;\tq=1", "image/caf\u00e9", ...odd]) {
        yield* checkRow({ ...ok, mimeType })
      }
    }))

  it("error messages name the row and the reason", () => {
    const e = new RowFailed({ hash: "abc", oid: 7, reason: new MalformedHash() })
    assert.include(e.message, "\"abc\"")
    assert.include(e.message, "oid=7")
    assert.include(e.message, "40 hexadecimal")
    const s = new StorageError({ operation: "PutObject", bucket: "b", key: "k", detail: "SlowDown", retryable: true })
    assert.strictEqual(s.message, "S3 PutObject on b/k failed (retryable): SlowDown")
  })

  it("brands accept exactly lowercase hex of the right length", () => {
    assert.isTrue(isSha1Hex("a".repeat(40)))
    assert.isFalse(isSha1Hex("a".repeat(41)))
    assert.isTrue(isSha256Hex("0123456789abcdef".repeat(4)))
    assert.isFalse(isSha256Hex("0123456789ABCDEF".repeat(4)))
    assert.throws(() => Schema.decodeUnknownSync(Schema.String.pipe(Schema.brand("X")))(1))
  })
})

describe("retryInfrastructure", () => {
  const transient = new DatabaseError({ operation: "read", detail: "connection reset", retryable: true })
  const fatal = new DatabaseError({ operation: "read", detail: "permission denied", retryable: false })
  const storageDown = new StorageError({ operation: "PutObject", bucket: "b", detail: "SlowDown (HTTP 503)", retryable: true })

  it.effect("retries retryable errors until success and counts the retries", () =>
    Effect.gen(function*() {
      let calls = 0
      const op = Effect.suspend(() => ++calls < 3 ? Effect.fail(transient) : Effect.succeed("ok"))
      const fiber = yield* Effect.forkChild(op.pipe(retryInfrastructure("read")))
      yield* TestClock.adjust("1 minute")
      const result = yield* Fiber.join(fiber)
      assert.strictEqual(result, "ok")
      assert.strictEqual(calls, 3)
      const snap = yield* (yield* Metrics).snapshot
      assert.strictEqual(snap.retries, 2)
    }).pipe(Effect.provide(Metrics.layer)))

  it.effect("does not retry a fatal error and counts no retry for it", () =>
    Effect.gen(function*() {
      let calls = 0
      const exit = yield* Effect.exit(Effect.suspend(() => (calls++, Effect.fail(fatal))).pipe(retryInfrastructure("read")))
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(calls, 1)
      const snap = yield* (yield* Metrics).snapshot
      assert.strictEqual(snap.retries, 0)
      assert.deepStrictEqual(snap.unavailable, [])
    }).pipe(Effect.provide(Metrics.layer)))

  it.effect("keeps retrying for the whole budget, gives up right after it, and counts only the retries made", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const attempts: Array<number> = []
      const options = { budget: "5 minutes", base: "200 millis", cap: "10 seconds" } as const
      const fiber = yield* Effect.forkChild(Effect.exit(
        Effect.suspend(() => Effect.andThen(
          Effect.map(Clock.currentTimeMillis, (t) => attempts.push(t)),
          Effect.fail(transient)
        )).pipe(retryInfrastructure("read", options))
      ))
      // Not before the budget: after 4 min 59 s the operation is still being retried, and waits for PostgreSQL.
      yield* TestClock.adjust("299 seconds")
      assert.isUndefined(fiber.pollUnsafe())
      const during = yield* metrics.snapshot
      assert.strictEqual(during.unavailable.length, 1)
      assert.strictEqual(during.unavailable[0]!.dependency, "PostgreSQL")
      assert.strictEqual(during.unavailable[0]!.since, attempts[0])
      assert.strictEqual(during.unavailable[0]!.giveUpAt, attempts[0]! + 300_000)
      assert.strictEqual(during.retries, attempts.length, "the retry it sleeps for is counted once it is scheduled")
      // After it: the last attempt is made when the budget ends, then the error propagates.
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.join(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const last = attempts[attempts.length - 1]! - attempts[0]!
      assert.strictEqual(last, 300_000, "the last attempt lands at the end of the budget")
      for (let i = 1; i < attempts.length; i++) {
        assert.isAtMost(attempts[i]! - attempts[i - 1]!, 10_000, "each delay is capped")
      }
      assert.isAtLeast(attempts.length, 30)
      const after = yield* metrics.snapshot
      assert.strictEqual(after.retries, attempts.length - 1, "the failure that ends the budget is not a retry")
      assert.deepStrictEqual(after.unavailable, [], "cleared when the operation gives up")
    }).pipe(Effect.provide(Metrics.layer)))

  it.effect("a success within the budget clears the outage; an optional count bounds the retries too", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      let calls = 0
      const fiber = yield* Effect.forkChild(
        Effect.suspend(() => ++calls < 4 ? Effect.fail(storageDown) : Effect.succeed("ok")).pipe(retryInfrastructure("put"))
      )
      yield* TestClock.adjust("200 millis")
      const during = yield* metrics.snapshot
      assert.deepStrictEqual(during.unavailable.map((u) => u.dependency), ["S3"])
      assert.include(during.unavailable[0]!.detail, "SlowDown")
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), "ok")
      const after = yield* metrics.snapshot
      assert.strictEqual(after.retries, 3)
      assert.deepStrictEqual(after.unavailable, [])

      calls = 0
      const bounded = yield* Effect.forkChild(Effect.exit(
        Effect.suspend(() => (calls++, Effect.fail(transient))).pipe(
          retryInfrastructure("read", { budget: "1 hour", times: 2, base: "10 millis", cap: "1 second" })
        )
      ))
      yield* TestClock.adjust("1 minute")
      assert.isTrue(Exit.isFailure(yield* Fiber.join(bounded)))
      assert.strictEqual(calls, 3)
    }).pipe(Effect.provide(Metrics.layer)))

  it.effect("stopWhen ends the retries at once, leaving the error to the caller", () =>
    Effect.gen(function*() {
      let calls = 0
      const exit = yield* Effect.exit(
        Effect.suspend(() => (calls++, Effect.fail(transient))).pipe(retryInfrastructure("source", defaultRetry, () => true))
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(calls, 1)
      assert.strictEqual((yield* (yield* Metrics).snapshot).retries, 0)
    }).pipe(Effect.provide(Metrics.layer)))

  it.effect("the schedule itself: no retry with a zero budget, none for a non-retryable input", () =>
    Effect.gen(function*() {
      const step = yield* Schedule.toStep(retrySchedule({ budget: 0, base: "1 second", cap: "1 second" }))
      const stopped = yield* Effect.exit(step(0, { retryable: true }))
      assert.isTrue(Exit.isFailure(stopped))
      const step2 = yield* Schedule.toStep(retrySchedule())
      assert.isTrue(Exit.isFailure(yield* Effect.exit(step2(0, { retryable: false }))))
      const step3 = yield* Schedule.toStep(retrySchedule())
      const [, delay] = yield* step3(0, { retryable: true })
      assert.isTrue(Duration.toMillis(delay) >= 160 && Duration.toMillis(delay) <= 240, "first delay: 200 ms jittered")
    }))
})

describe("Metrics", () => {
  it.effect("counts objects and bytes per stage, failures by reason, and samples registered queues", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics
      yield* metrics.processed("read", 2, 300)
      yield* metrics.processed("read", 1, 100)
      yield* metrics.processed("commit", 1, 100)
      yield* metrics.failed(new RowFailed({ hash: "x", oid: null, reason: new MalformedHash() }))
      let size = 3
      yield* Effect.scoped(Effect.gen(function*() {
        yield* metrics.registerQueue("q", 10, Effect.sync(() => size))
        const inside = yield* metrics.snapshot
        assert.deepStrictEqual(inside.queues, [{ name: "q", used: 3, capacity: 10 }])
        size = 7
        assert.strictEqual((yield* metrics.snapshot).queues[0]?.used, 7)
      }))
      const snap = yield* metrics.snapshot
      assert.deepStrictEqual(snap.stages.read, { objects: 3, bytes: 400 })
      assert.deepStrictEqual(snap.stages.commit, { objects: 1, bytes: 100 })
      assert.deepStrictEqual(snap.stages.store, { objects: 0, bytes: 0 })
      assert.strictEqual(snap.failed, 1)
      assert.deepStrictEqual(snap.failuresByReason, { MalformedHash: 1 })
      // released: the last fill stays visible (the final status block is printed after the pipeline ends)
      size = 100
      assert.deepStrictEqual(snap.queues, [{ name: "q", used: 7, capacity: 10 }])
    }).pipe(Effect.provide(Metrics.layer)))
})

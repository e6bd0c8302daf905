/**
 * The fake `ObjectStore`: the world's bucket, content-addressed and idempotent, checking every body it receives.
 */
import { ObjectStore, type PutOutcome, type PutRequest, type Sha256Hex, StorageError } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { begin, crash, type FakeOptions } from "./FakeOperations.ts"
import { sha256Hex, type World } from "./World.ts"

/**
 * Idempotent content-addressed bucket: an object of the right size already under the key gives `AlreadyPresent`.
 * Rejects a body whose MD5 does not match `md5Base64` (as S3 does with Content-MD5). A body that is not the key's
 * content, has the wrong size or whose temp file is gone is a pipeline bug: recorded as a violation, and the put dies.
 */
export const makeObjectStore = (world: World, options: FakeOptions = {}): ObjectStore["Service"] => {
  const bucket = options.bucket ?? "fake-bucket"
  const storageError = (operation: string, key: string | undefined, detail: string, retryable: boolean) =>
    new StorageError({ operation, bucket, ...(key === undefined ? {} : { key }), detail, retryable })

  const log = (key: string, size: number, outcome: "Uploaded" | "AlreadyPresent" | "Failed") =>
    world.puts.push({ seq: world.nextSeq(), run: world.run, key, size, outcome })

  const bodyBytes = (request: PutRequest): Effect.Effect<Uint8Array> => {
    const body = request.body
    return body._tag === "InMemory"
      ? Effect.succeed(body.bytes)
      : Effect.try({
        try: () => new Uint8Array(readFileSync(body.path)),
        catch: () => world.violation(`put ${request.key}: spilled body ${body.path} is gone`)
      }).pipe(Effect.orDie)
  }

  const store = (request: PutRequest): Effect.Effect<PutOutcome, StorageError> =>
    Effect.flatMap(bodyBytes(request), (bytes) => {
      if (bytes.byteLength !== request.size) {
        return Effect.die(world.violation(`put ${request.key}: body has ${bytes.byteLength} bytes, request says ${request.size}`))
      }
      const md5Base64 = createHash("md5").update(bytes).digest("base64")
      // without one (a body digested part by part), the live store computes the MD5 it sends: nothing to compare
      if (request.md5Base64 !== undefined && md5Base64 !== request.md5Base64) {
        log(request.key, request.size, "Failed")
        return Effect.fail(storageError("put", request.key, "fake: BadDigest (Content-MD5 mismatch)", false))
      }
      if (sha256Hex(bytes) !== request.key) {
        return Effect.die(world.violation(`put ${request.key}: body hashes to ${sha256Hex(bytes)}`))
      }
      const existing = world.bucket.get(request.key)
      if (existing !== undefined && existing.bytes.byteLength === request.size) {
        log(request.key, request.size, "AlreadyPresent")
        return Effect.succeed<PutOutcome>("AlreadyPresent")
      }
      world.bucket.set(request.key, {
        bytes: bytes.slice(),
        contentType: request.contentType,
        md5Base64
      })
      log(request.key, request.size, "Uploaded")
      return Effect.succeed<PutOutcome>("Uploaded")
    })

  return ObjectStore.of({
    put: Effect.fn("FakeObjectStore.put")(function*(request: PutRequest) {
      yield* begin(world, "put")
      const faults = world.faults
      if (faults.storeBroken) {
        log(request.key, request.size, "Failed")
        return yield* storageError("put", request.key, "fake: AccessDenied", false)
      }
      if (faults.storeFailures > 0) {
        faults.storeFailures--
        log(request.key, request.size, "Failed")
        return yield* storageError("put", request.key, "fake: 503 SlowDown", true)
      }
      const outcome = yield* Effect.uninterruptible(store(request))
      if (faults.crashAfterPuts !== undefined && --faults.crashAfterPuts <= 0) {
        faults.crashAfterPuts = undefined
        return yield* crash(world, `put ${request.key}`)
      }
      return outcome
    }),
    head: (key: Sha256Hex) =>
      begin(world, "head").pipe(
        Effect.map(() =>
          Option.map(Option.fromNullishOr(world.bucket.get(key)), (o) => ({
            size: o.bytes.byteLength,
            contentType: o.contentType ?? undefined
          }))
        )
      ),
    check: Effect.suspend(() =>
      world.faults.storeBroken
        ? Effect.fail(storageError("check", undefined, "fake: AccessDenied", false))
        : Effect.void
    )
  })
}

export const fakeObjectStore = (world: World, options: FakeOptions = {}): Layer.Layer<ObjectStore> =>
  Layer.sync(ObjectStore, () => makeObjectStore(world, options))

/**
 * `--deep`: one object downloaded and hashed as it arrives. The body is consumed chunk by chunk into a SHA-256 (no
 * chunk is kept), so memory per check is the socket's buffer whatever the object's size; an interrupted check aborts
 * its request. `--content-type` without `--deep` uses `head` instead (one HEAD per object).
 */
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3"
import { retryInfrastructure, type Metrics, type StorageError } from "@lo-migrate/core"
import { classifyS3Error, S3ClientService } from "@lo-migrate/s3"
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import type { Readable } from "node:stream"

export interface ObjectFacts {
  /** SHA-256 hex of the bytes read (`undefined` for a HEAD). */
  readonly sha256: string | undefined
  /** Bytes read (GET) or Content-Length (HEAD). */
  readonly size: number
  readonly contentType: string | undefined
}

/** Hashes a readable to its end; destroys it if interrupted. */
const hashBody = (body: Readable) =>
  Effect.callback<{ readonly sha256: string; readonly size: number }, Error>((resume) => {
    const hash = createHash("sha256")
    let size = 0
    body.on("data", (chunk: Buffer) => {
      hash.update(chunk)
      size += chunk.byteLength
    })
    body.once("error", (error) => resume(Effect.fail(error)))
    body.once("end", () => resume(Effect.succeed({ sha256: hash.digest("hex"), size })))
    return Effect.sync(() => body.destroy())
  })

export const makeObjectReader = Effect.gen(function*() {
  const { client, config } = yield* S3ClientService
  const bucket = config.bucket
  const secrets = config.secretAccessKey === undefined ? [] : [config.secretAccessKey]

  /** GET + hash. */
  const download = (key: string): Effect.Effect<ObjectFacts, StorageError, Metrics> =>
    Effect.tryPromise({
      try: (signal) => client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }),
      catch: (error) => classifyS3Error(error, { operation: "GetObject", bucket, key, secrets })
    }).pipe(
      Effect.flatMap((out) =>
        hashBody(out.Body as Readable).pipe(
          Effect.map((read): ObjectFacts => ({ ...read, contentType: out.ContentType })),
          Effect.mapError((error) => classifyS3Error(error, { operation: "GetObject (body)", bucket, key, secrets }))
        )
      ),
      retryInfrastructure("GetObject")
    )

  /** HEAD: size and Content-Type. */
  const head = (key: string): Effect.Effect<ObjectFacts, StorageError, Metrics> =>
    Effect.tryPromise({
      try: (signal) => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }),
      catch: (error) => classifyS3Error(error, { operation: "HeadObject", bucket, key, secrets })
    }).pipe(
      Effect.map((out): ObjectFacts => ({ sha256: undefined, size: out.ContentLength ?? 0, contentType: out.ContentType })),
      retryInfrastructure("HeadObject")
    )

  return { download, head } as const
})

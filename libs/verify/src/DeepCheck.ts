/**
 * `--deep`: one object downloaded and hashed as it arrives. The body is consumed chunk by chunk into a SHA-256 (no
 * chunk is kept), so memory per check is the socket's buffer whatever the object's size; an interrupted check aborts
 * its request (which ends the body). `--content-type` without `--deep` uses `head` instead (one HEAD per object).
 * The GET and the read of its body are one attempt of the retry policy: a body cut off mid-way is fetched again.
 */
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3"
import { type Metrics, retryInfrastructure, type StorageError } from "@lo-migrate/core"
import { clientCalls, type S3ClientService, sendS3 } from "@lo-migrate/s3"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import type { Readable } from "node:stream"

export interface ObjectFacts {
  /** SHA-256 hex of the bytes read (`undefined` for a HEAD). */
  readonly sha256: string | undefined
  /** Bytes read (GET) or Content-Length (HEAD). */
  readonly size: number
  readonly contentType: string | undefined
  /** User metadata (where the migrator keeps a mime type it could not send as Content-Type). */
  readonly metadata: Readonly<Record<string, string>> | undefined
}

/** Hashes a body to its end, chunk by chunk (SDK interop: the body is a Node stream, destroyed when done). */
const hashBody = (body: Readable) =>
  NodeStream.fromReadable<Uint8Array, unknown>({ evaluate: () => body, onError: identity }).pipe(
    Stream.runFold(() => ({ hash: createHash("sha256"), size: 0 }), (acc, chunk) => {
      acc.hash.update(chunk)
      acc.size += chunk.byteLength
      return acc
    }),
    Effect.map(({ hash, size }) => ({ sha256: hash.digest("hex"), size }))
  )

export interface ObjectReader {
  /** GET + hash. */
  readonly download: (key: string) => Effect.Effect<ObjectFacts, StorageError, Metrics>
  /** HEAD: size and Content-Type. */
  readonly head: (key: string) => Effect.Effect<ObjectFacts, StorageError, Metrics>
}

export const makeObjectReader: Effect.Effect<ObjectReader, never, S3ClientService> = Effect.map(
  clientCalls,
  ({ bucket, call, classify, client }) => ({
    download: (key) =>
      call("GetObject", key, (signal) => sendS3(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }))
        .pipe(
          Effect.flatMap((out) =>
            hashBody(out.Body as Readable).pipe(
              Effect.mapError((error) => classify("GetObject", key, error)),
              Effect.map((read): ObjectFacts => ({ ...read, contentType: out.ContentType, metadata: out.Metadata }))
            )
          ),
          // the GET and the read of its body are one attempt: a body cut off mid-way is fetched again
          retryInfrastructure("GetObject")
        ),
    head: (key) =>
      call("HeadObject", key, (signal) =>
        sendS3(client, new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }).then((out): ObjectFacts => ({
          sha256: undefined,
          size: out.ContentLength ?? 0,
          contentType: out.ContentType,
          metadata: out.Metadata
        }))).pipe(retryInfrastructure("HeadObject"))
  })
)

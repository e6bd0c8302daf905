/**
 * What goes into one S3 request of the store: the Content-Type and metadata of an object, the SDK middlewares that set
 * the signed payload hash and keep the SDK's default Content-Type off, and file-range bodies with their digests.
 */
import { type PutRequest, storedContentType } from "@lo-migrate/core"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { createReadStream, ReadStream } from "node:fs"

/**
 * The Content-Type and user metadata of an object, by the rule of `storedContentType` (core ContentType.ts): a null
 * or empty mime type sends neither (the server's default applies), a plain one is sent as is, any other one as
 * `application/octet-stream` with the original, encoded, in `x-amz-meta-lo-migrate-mime-type`.
 */
export const objectHeadersOf = (request: PutRequest): { ContentType?: string; Metadata?: Record<string, string> } => {
  const stored = storedContentType(request.contentType)
  switch (stored._tag) {
    case "Default":
      return {}
    case "Plain":
      return { ContentType: stored.contentType }
    case "Replaced":
      return { ContentType: stored.contentType, Metadata: { ...stored.metadata } }
  }
}

/**
 * The SDK puts `application/octet-stream` on every PutObject without a ContentType. A row without a mime type must
 * get the server's own default (as the original uploader did), so the header is removed before signing.
 */
export const withoutDefaultContentType = <C extends { middlewareStack: { add: (...args: Array<any>) => void } }>(
  command: C
): C => {
  command.middlewareStack.add(
    (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => {
      const request = args.request as { headers?: Record<string, string> }
      if (request.headers !== undefined) delete request.headers["content-type"]
      return next(args)
    },
    { step: "build", name: "loMigrateNoDefaultContentType" }
  )
  return command
}

/**
 * Sends `sha256Hex` as the request's `x-amz-content-sha256`. The SigV4 signer then signs that value instead of hashing
 * the body itself (or sending UNSIGNED-PAYLOAD for a stream), and the server checks the body against it: Ceph RGW (and
 * AWS) reject a mismatch with XAmzContentSHA256Mismatch. For a whole object the value is its key, so the server
 * verifies that what it stores under the key really hashes to the key.
 */
export const withPayloadSha256 = <C extends { middlewareStack: { add: (...args: Array<any>) => void } }>(
  command: C,
  sha256Hex: string
): C => {
  command.middlewareStack.add(
    (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => {
      const request = args.request as { headers?: Record<string, string> }
      if (request.headers !== undefined) request.headers["x-amz-content-sha256"] = sha256Hex
      return next(args)
    },
    { step: "build", name: "loMigratePayloadSha256" }
  )
  return command
}

export interface RangeDigests {
  readonly md5: Buffer
  readonly sha256Hex: string
}

/**
 * Reads `length` bytes of `path` from `start`: their MD5 (raw) and SHA-256 (hex); fails if the file is shorter.
 * Interruption ends the read (the stream's iterator is returned, which destroys it).
 */
export const digestRange = (path: string, start: number, length: number): Effect.Effect<RangeDigests, unknown> =>
  Effect.suspend(() => {
    const md5 = createHash("md5")
    const sha256 = createHash("sha256")
    let read = 0
    const chunks = createReadStream(path, { start, end: start + length - 1 }) as AsyncIterable<Buffer>
    return Stream.fromAsyncIterable(chunks, (error) => error).pipe(
      Stream.runForEach((chunk) =>
        Effect.sync(() => {
          read += chunk.length
          md5.update(chunk)
          sha256.update(chunk)
        })
      ),
      Effect.flatMap(() =>
        read === length
          ? Effect.succeed({ md5: md5.digest(), sha256Hex: sha256.digest("hex") })
          : Effect.fail(new Error(`${path}: expected ${length} bytes at offset ${start}, read ${read}`))
      )
    )
  })

export const fileStream = (path: string, start: number, length: number): Effect.Effect<ReadStream> =>
  Effect.sync(() => createReadStream(path, { start, end: start + length - 1 }))

export const destroyStream = (stream: ReadStream) => Effect.sync(() => stream.destroy())

/** The body of one PutObject: bytes in memory or a stream over a file range (destroyed after the request). */
export type SingleBody = Uint8Array | ReadStream

export const releaseBody = (body: SingleBody) => body instanceof ReadStream ? destroyStream(body) : Effect.void

/**
 * What goes into one S3 request of the store: the Content-Type and metadata of an object, and file-range bodies with
 * their digests (how a request is sent, with its payload hash and abort signal: S3Send.ts).
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
 * The bytes a file-range body (and `digestRange`) reads at a time: 1 MiB, not the stream default of 64 KiB, so a part
 * of 8 MiB is 8 reads and 8 socket writes instead of 128 (tools/bench/README.md, issue 16).
 */
export const fileBodyReadSize = 1024 * 1024

/** The read stream's options for `length` bytes from `start`. */
const rangeOptions = (start: number, length: number) => ({
  start,
  end: start + length - 1,
  highWaterMark: Math.min(fileBodyReadSize, Math.max(1, length))
})

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
    const chunks = createReadStream(path, rangeOptions(start, length)) as AsyncIterable<Buffer>
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
  Effect.sync(() => createReadStream(path, rangeOptions(start, length)))

export const destroyStream = (stream: ReadStream) => Effect.sync(() => stream.destroy())

/** The body of one PutObject: bytes in memory or a stream over a file range (destroyed after the request). */
export type SingleBody = Uint8Array | ReadStream

export const releaseBody = (body: SingleBody) => body instanceof ReadStream ? destroyStream(body) : Effect.void

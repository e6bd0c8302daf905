/**
 * How the object store will cut a body into parts, announced by the store (a port of its own, so that no adapter
 * reaches into another): the reader digests each part in its one pass over the bytes (`Body.Spilled.parts`), and the
 * store then uploads a multipart body without reading its file once more to hash it (measured to pay, see
 * libs/s3/README.md). A store that never cuts announces `BodyCut.whole`.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"

export class BodyCut extends Context.Service<BodyCut, {
  /** The part size of the multipart upload for a body of `size` bytes, or `undefined` when it goes up whole. */
  readonly partSizeFor: (size: number) => number | undefined
}>()("lo-migrate/BodyCut") {
  /** Every body goes up whole: no part digests. */
  static readonly whole: Layer.Layer<BodyCut> = Layer.succeed(BodyCut, BodyCut.of({ partSizeFor: () => undefined }))
}

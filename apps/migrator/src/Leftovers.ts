/**
 * Start-up cleanup of what ended runs left behind: spill directories in `--temp-dir` of processes that are gone
 * (`@lo-migrate/postgres` SpillDirs) and the incomplete multipart uploads they had started (`@lo-migrate/s3`
 * S3UploadLedger). Both never touch what a running lo-migrate process (or anybody else) owns, and never fail the run.
 */
import { sweepSpillDirs } from "@lo-migrate/postgres"
import { S3UploadLedger } from "@lo-migrate/s3"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"

export class Leftovers extends Context.Service<Leftovers, {
  /** Removes the leftovers of ended runs. */
  readonly sweep: Effect.Effect<void>
}>()("lo-migrate/Leftovers") {
  /** Nothing to clean (fakes). */
  static readonly none: Layer.Layer<Leftovers> = Layer.succeed(Leftovers, Leftovers.of({ sweep: Effect.void }))

  /** Spill directories in `tempDir`, and the uploads recorded in the bucket's ledger. */
  static layer(tempDir: string): Layer.Layer<Leftovers, never, S3UploadLedger | FileSystem.FileSystem> {
    return Layer.effect(
      Leftovers,
      Effect.map(Effect.all([Effect.service(S3UploadLedger), FileSystem.FileSystem]), ([ledger, fs]) =>
        Leftovers.of({
          sweep: Effect.gen(function*() {
            yield* sweepSpillDirs(tempDir).pipe(Effect.provideService(FileSystem.FileSystem, fs))
            const uploads = yield* ledger.sweep
            if (uploads.aborted > 0) {
              yield* Effect.logInfo(
                `aborted ${uploads.aborted} incomplete multipart upload(s) of ${uploads.goneOwners} ended run(s)`
              )
            }
          }).pipe(Effect.withSpan("Leftovers.sweep"))
        }))
    )
  }
}

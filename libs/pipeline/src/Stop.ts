/**
 * The `stop` ending of a run: when the caller's `stop` completes, the intake stops pulling the source, the read stage
 * takes no more rows and drops the rows still waiting (they keep sha2 NULL for the next run); reads in flight finish
 * and the store and commit stages drain as usual. `rowsLeft` says whether rows were left behind (the source was not
 * exhausted yet, or rows were waiting).
 */
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import type * as Scope from "effect/Scope"
import type { ReadUnits } from "./ReadUnits.ts"

export class Stop {
  private readonly latch = Latch.makeUnsafe(false)
  private exhausted = false
  private left = false

  /** Completes when `stop` has come. */
  get requested(): Effect.Effect<void> {
    return this.latch.await
  }

  /** The intake says the source ended by itself. */
  get sourceExhausted(): Effect.Effect<void> {
    return Effect.sync(() => void (this.exhausted = true))
  }

  get rowsLeft(): boolean {
    return this.left
  }

  /** Watches `stop` (if any) for the life of the scope; when it completes, stops the read stage's intake of rows. */
  static readonly watch = Effect.fnUntraced(function*(
    stop: Effect.Effect<void> | undefined,
    units: ReadUnits
  ): Effect.fn.Return<Stop, never, Scope.Scope> {
    const self = new Stop()
    if (stop === undefined) return self
    yield* stop.pipe(
      Effect.andThen(Effect.suspend(() => {
        units.halt()
        self.latch.openUnsafe()
        return Effect.map(units.dropWaiting, (dropped) => {
          if (!self.exhausted || dropped.length > 0) self.left = true
        })
      })),
      Effect.forkScoped
    )
    return self
  })
}

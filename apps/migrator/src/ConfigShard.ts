/**
 * `--shards N` and `--shard I/N` as given (each `undefined` when absent), checked to agree: a `--shards` that
 * contradicts `--shard` is a usage error (`migrate` would otherwise take a shard of another split, `status` count
 * shards the process does not run).
 */
export const shardOptions = Effect.fn("ConfigShard.shardOptions")(function*(
  raw: RawOptions
): Effect.fn.Return<{ readonly shards: number | undefined; readonly shard: Shard | undefined }, UsageError> {
  const shards = Option.isNone(raw.shards)
    ? undefined
    : yield* fromResult("--shards")(parseShardCount(String(raw.shards.value)))
  if (Option.isNone(raw.shard)) return { shards, shard: undefined }
  const shard = yield* fromResult("--shard")(parseShard(raw.shard.value))
  if (shards !== undefined && shards !== shard.count) {
    return yield* new UsageError({
      option: "--shards",
      detail: `says ${shards} shards but --shard ${raw.shard.value} says ${shard.count}; give one of them`
    })
  }
  return { shards, shard }
})

/**
 * The shard of this process, from `--shard I/N`, or `--shards N` with a Kubernetes Indexed Job's
 * `JOB_COMPLETION_INDEX`, and how it is shown.
 */
import { parseShard, parseShardCount, parseShardIndex, renderShard, type Shard, shardRange } from "@lo-migrate/core"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { fromResult, UsageError } from "./ConfigValues.ts"
import { env, type RawOptions } from "./Options.ts"

/**
 * The shard of this process: `--shard I/N` (env `LO_MIGRATE_SHARD`); else, in a Kubernetes Indexed Job,
 * `JOB_COMPLETION_INDEX` of `--shards N` (env `LO_MIGRATE_SHARDS`); else none (the whole table). A `--shards` that
 * contradicts `--shard` (`shardOptions`), a `JOB_COMPLETION_INDEX` without a shard count, or an index out of range is
 * a usage error: a wrong shard silently skips or repeats a part of the table.
 */
export const resolveShard = Effect.fn("ConfigShard.resolveShard")(function*(
  raw: RawOptions
): Effect.fn.Return<Shard | undefined, UsageError> {
  const { shard, shards } = yield* shardOptions(raw)
  if (shard !== undefined) return shard
  const index = yield* Config.String(env.jobCompletionIndex).pipe(
    Config.option,
    Effect.mapError((e) => new UsageError({ option: env.jobCompletionIndex, detail: e.message }))
  )
  if (Option.isNone(index)) return undefined
  if (shards === undefined) {
    return yield* new UsageError({
      option: "--shards",
      detail: `${env.jobCompletionIndex}=${index.value} is set (a Kubernetes Indexed Job) but not the number of ` +
        `shards: set --shards N or ${env.shards} to the Job's completions (or --shard I/N)`
    })
  }
  const i = yield* fromResult(env.jobCompletionIndex)(parseShardIndex(index.value, shards))
  return { index: i, count: shards }
})

/** How the shard is shown: `2/4 (hash >= 8000..., < c000...)`. */
export const describeShard = (shard: Shard | undefined): string => {
  if (shard === undefined) return "none (the whole table)"
  const { high, low } = shardRange(shard)
  const bounds = [low === undefined ? [] : [`>= ${low}`], high === undefined ? [] : [`< ${high}`]].flat()
  return `${renderShard(shard)} (hash ${bounds.length === 0 ? "any" : bounds.join(", ")})`
}

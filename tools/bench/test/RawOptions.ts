/** The bench's flags as `Command.make` hands them over when none is given (with `only` set if named): for tests. */
import * as Option from "effect/Option"
import type { RawBenchOptions } from "../src/Options.ts"

export const rawOptions = (only?: string): RawBenchOptions => ({
  quick: false,
  mix: Option.none(),
  seed: 42,
  only: only === undefined ? Option.none() : Option.some(only),
  readConcurrency: Option.none(),
  s3Concurrency: Option.none(),
  tuned: [],
  migratorArg: [],
  db: Option.none(),
  keepDb: false,
  nodeArg: [],
  rounds: Option.none(),
  semiSpace: 8,
  oldSpaceFloor: 128,
  heapGrowing: 0,
  shardCounts: Option.none(),
  out: Option.none(),
  pgUrl: Option.none()
})

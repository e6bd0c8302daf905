import { Option, Redacted } from "effect"
import { defaultRawOptions, defaults, type RawOptions } from "../src/Options.ts"

/** Parsed options as the CLI would produce them, with every field settable. */
export const rawOptions = (overrides: Partial<RawOptions> = {}): RawOptions => ({
  // the rest (timeouts, budgets, switches, optional limits) as the CLI parses them when not given
  ...defaultRawOptions,
  pgUrl: Option.some(Redacted.make("postgresql://app:pg-hunter2@db.example:5433/nice?sslmode=require&password=q-hunter2")),
  s3Url: Option.some("https://rgw.example"),
  accessKey: Option.some("AKIAEXAMPLE"),
  secretKey: Option.some(Redacted.make("s3-hunter2")),
  bucket: Option.some("binaries"),
  region: defaults.region,
  pathStyle: true,
  receiverThreads: 2,
  storerThreads: 5,
  committerThreads: 2,
  receiverQueue: 8192,
  storerQueue: 1024,
  committerQueue: 8192,
  inMemMax: 1024,
  uploadChunkSize: 5120,
  commitChunk: 100,
  interval: 10,
  gracePeriod: 30,
  retryBudget: defaults.retryBudget,
  ...overrides
})

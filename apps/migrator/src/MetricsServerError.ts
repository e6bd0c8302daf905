/**
 * What the Prometheus endpoint is told (`MetricsServerOptions`) and how it fails (`MetricsServerError`), apart from the
 * endpoint itself (MetricsServer.ts), so that a run without `--metrics-port` never loads the HTTP server's modules
 * (about 0.1 s of start-up): `Migrate.ts` imports MetricsServer.ts only when the option is set.
 */
import * as Schema from "effect/Schema"

export interface MetricsServerOptions {
  readonly host: string
  /** 0: any free port (the bound one is in `MetricsServer.url`). */
  readonly port: number
  /** The `shard` label of `lo_migrate_shard_info`, `I/N`. */
  readonly shard: string
}

/** The endpoint could not listen (port taken, address not local, no permission). */
export class MetricsServerError extends Schema.TaggedError<MetricsServerError>()("MetricsServerError", {
  address: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `cannot serve metrics on ${this.address}: ${this.detail}`
  }
}

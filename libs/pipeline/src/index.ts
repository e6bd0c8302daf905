/** `@lo-migrate/pipeline`: the migration pipeline over the ports of `@lo-migrate/core`, its config and its monitor. */
export * from "./Config.ts"
export * from "./Pipeline.ts"
export * from "./Monitor.ts"
export * from "./ByteBudget.ts"
export * from "./AdaptiveLimit.ts"
export * from "./InFlightBytes.ts"
export * from "./StatusRecord.ts"
export * from "./Throttle.ts"

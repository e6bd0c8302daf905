export * from "./Config.ts"
export * from "./Pipeline.ts"
export * from "./Monitor.ts"
export * from "./ByteBudget.ts"

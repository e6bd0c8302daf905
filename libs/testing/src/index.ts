export * from "./Arbitraries.ts"
export * from "./Fakes.ts"
export * from "./World.ts"
export * from "./CommitOutcomes.ts"

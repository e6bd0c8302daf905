/** `@lo-migrate/testing`: in-memory fakes of the five ports, a `World` that checks them, and property generators. */
export * from "./Arbitraries.ts"
export * from "./Fakes.ts"
export * from "./World.ts"
export * from "./CommitOutcomes.ts"
export * from "./BuildWorld.ts"

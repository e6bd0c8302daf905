/**
 * The migrator as a library: the command tree with injectable handlers, configuration resolution, the live wiring
 * and the flows, for embedding or testing. The executable is `main.ts`.
 */
export * from "./Cli.ts"
export * from "./Config.ts"
export * from "./ConfigRender.ts"
export * from "./ConfigShard.ts"
export * from "./ConfigValues.ts"
export * from "./ExitCode.ts"
export * from "./Leftovers.ts"
export * from "./Live.ts"
export * from "./Migrate.ts"
export * from "./Outcomes.ts"
export * from "./RunSettings.ts"
export * from "./Options.ts"
export * from "./Flags.ts"
export * from "./Report.ts"
export * from "./Runner.ts"
export * from "./Shutdown.ts"
export * from "./VerifyCommand.ts"
export * from "./VerifyOptions.ts"
export * from "./VerifyReport.ts"
export * from "./MetricsServer.ts"

/**
 * Entry point: `node --max-semi-space-size=8 --initial-old-space-size=128 --conditions=development src/main.ts [options]`
 * (Node 24 strips the types), or the built `dist/main.js`; the V8 flags keep memory and GC work down (README). See `--help` and the README for options, environment variables and exit codes.
 *
 * Only the command line is loaded eagerly (effect/cli, the option modules): each command's implementation, with the
 * adapters it wires (the AWS SDK, the PostgreSQL driver, the pipeline, verify), is imported when that command runs,
 * so `--help`, a usage error, `status` and `finalize` do not load what they never use (tools/bench/README.md, issue 16).
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { runCli } from "./Cli.ts"
import { runMain } from "./Runner.ts"
import { Shutdown } from "./Shutdown.ts"

/** The modules of `migrate` and `finalize`: the pipeline, the commands and their live layers. */
const migrateModules = Effect.promise(() => Promise.all([import("./Migrate.ts"), import("./Live.ts")]))

runMain((shutdown) =>
  runCli(
    {
      migrate: (config) =>
        Effect.flatMap(migrateModules, ([{ migrate }, { migrateLayer }]) => migrate(config, migrateLayer(config))),
      finalize: (config) =>
        Effect.flatMap(migrateModules, ([{ finalizeCommand }, { finalizeLayer }]) =>
          finalizeCommand(config, finalizeLayer(config))),
      verify: (config) =>
        Effect.flatMap(Effect.promise(() => import("./VerifyCommand.ts")), ({ verifyCommand }) => verifyCommand(config)),
      status: (config) =>
        Effect.flatMap(Effect.promise(() => import("./StatusCommand.ts")), ({ statusCommand }) => statusCommand(config))
    },
    process.argv.slice(2)
  ).pipe(Effect.provide(Layer.mergeAll(NodeServices.layer, Layer.succeed(Shutdown, shutdown))))
)

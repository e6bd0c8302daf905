/**
 * Entry point: `node --max-semi-space-size=8 --conditions=development src/main.ts [options]` (Node 24 strips the
 * types), or the built `dist/main.js`; the V8 flag keeps memory down (README). See `--help` and the README for options, environment variables and exit codes.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { runCli } from "./Cli.ts"
import { finalizeLayer, migrateLayer } from "./Live.ts"
import { runMain } from "./Runner.ts"
import { finalizeCommand, migrate } from "./Migrate.ts"
import { Shutdown } from "./Shutdown.ts"
import { statusCommand } from "./StatusCommand.ts"
import { verifyCommand } from "./VerifyCommand.ts"

runMain((shutdown) =>
  runCli(
    {
      migrate: (config) => migrate(config, migrateLayer(config)),
      finalize: (config) => finalizeCommand(config, finalizeLayer(config)),
      verify: (config) => verifyCommand(config),
      status: (config) => statusCommand(config)
    },
    process.argv.slice(2)
  ).pipe(Effect.provide(Layer.mergeAll(NodeServices.layer, Layer.succeed(Shutdown, shutdown))))
)

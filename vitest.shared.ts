import { basename } from "node:path"
import { defineConfig } from "vitest/config"

// With VITEST_JSON_DIR set (tools/test/run-all.sh sets it), every project also writes vitest's JSON report there, so
// the test script can count passed and failed tests across the workspace.
const jsonDir = process.env["VITEST_JSON_DIR"]
const project = basename(process.cwd())

// Workspace packages export their TypeScript sources under the "development" condition;
// tests resolve them from source, so no build is needed before `vitest run`.
export const sharedConfig = defineConfig({
  resolve: { conditions: ["development"] },
  ssr: { resolve: { conditions: ["development"] } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: jsonDir === undefined ? ["default"] : ["default", "json"],
    ...(jsonDir === undefined ? {} : { outputFile: { json: `${jsonDir}/${project}.json` } })
  }
})

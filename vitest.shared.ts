import { basename, join } from "node:path"
import { defineConfig } from "vitest/config"

// With VITEST_JSON_DIR set (tools/test/run-all.sh sets it), every project also writes a summary of its tests there
// (tools/test/summary-reporter.mjs: each test's state, and for a test that did not run the setup error that stopped
// it), so the test script can count passed and failed tests across the workspace.
const jsonDir = process.env["VITEST_JSON_DIR"]
const project = basename(process.cwd())
const summaryReporter = join(import.meta.dirname, "tools/test/summary-reporter.mjs")

// Workspace packages export their TypeScript sources under the "development" condition;
// tests resolve them from source, so no build is needed before `vitest run`.
export const sharedConfig = defineConfig({
  resolve: { conditions: ["development"] },
  ssr: { resolve: { conditions: ["development"] } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: jsonDir === undefined ?
      ["default"] :
      ["default", [summaryReporter, { dir: jsonDir, project }]]
  }
})

import { basename, join } from "node:path"
import { defineConfig } from "vitest/config"

// With VITEST_JSON_DIR set (tools/test/run-all.sh sets it), every project also writes vitest's JSON report there
// (<project>.json: the counts) and a summary of its tests (tools/test/summary-reporter.mjs, <project>.summary.json:
// for a test that did not run, the setup error that stopped it), so the test script can count passed and failed
// tests across the workspace and say why a test did not run.
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
      ["default", "json", [summaryReporter, { dir: jsonDir, project }]],
    ...(jsonDir === undefined ? {} : { outputFile: { json: `${jsonDir}/${project}.json` } })
  }
})

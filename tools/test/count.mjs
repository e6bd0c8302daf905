// Sums vitest JSON reports (one per project) into the plain closing line CI reads: "N passed, N failed".
// A project whose report is missing (its vitest crashed before reporting) counts as one failure.
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const [dir, ...expected] = process.argv.slice(2)
let passed = 0
let failed = 0
let skipped = 0
const seen = new Set()
const failures = []
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
  const report = JSON.parse(readFileSync(join(dir, file), "utf8"))
  seen.add(file.replace(/\.json$/, ""))
  passed += report.numPassedTests
  failed += report.numFailedTests + (report.numRuntimeErrors ?? 0)
  skipped += report.numPendingTests + (report.numTodoTests ?? 0)
  for (const suite of report.testResults ?? []) {
    if (suite.status === "failed" && (suite.assertionResults ?? []).length === 0) {
      failed += 1 // a file that failed to load
      failures.push(`${suite.name}: ${(suite.message ?? "failed to load").split("\n")[0]}`)
    }
    for (const test of suite.assertionResults ?? []) {
      if (test.status === "failed") {
        failures.push(`${suite.name} > ${test.fullName}: ${(test.failureMessages?.[0] ?? "").split("\n")[0]}`)
      }
    }
  }
}
for (const project of expected) {
  if (!seen.has(project)) {
    console.error(`no test report from ${project}`)
    failed += 1
  }
}
// The failed tests by name (CI shows the end of the output, where this list is right above the closing line).
for (const f of failures) console.error(`FAILED ${f}`)
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`)
process.exit(failed > 0 ? 1 : 0)

// Sums vitest's JSON reports (one per project, <project>.json) into the plain closing line CI reads:
// "N passed, N failed". A test that did not run (skipped, todo, or stopped by a failed beforeAll such as a missing
// S3 server) is a defect here and counts as failed. Vitest's JSON report drops the error of a failed beforeAll, so
// the reasons come from tools/test/summary-reporter.mjs (<project>.summary.json). A project whose report is missing
// (its vitest crashed before reporting), a file that failed to load and an unhandled error count as one failure each.
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const [dir, ...expected] = process.argv.slice(2)
const readJson = (file) => JSON.parse(readFileSync(join(dir, file), "utf8"))
const firstLine = (text) => String(text ?? "").split("\n")[0]
// A failure's first line; for a fast-check property also its seed and counterexample (shortened), so the failing
// case can be replayed from CI's output: a property that fails one run in a thousand shows nothing else.
const failureLine = (text) => {
  const lines = String(text ?? "").split("\n")
  const replay = lines.filter((l) => /^\s*(\{ seed:|Counterexample:)/.test(l)).map((l) => {
    const t = l.trim()
    return t.length > 300 ? `${t.slice(0, 300)}…` : t
  })
  return [lines[0], ...replay].join(" ")
}
let passed = 0
let failed = 0
let notRun = 0
const failures = []
const seen = new Set()
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json") && !f.endsWith(".summary.json"))) {
  const project = file.replace(/\.json$/, "")
  const report = readJson(file)
  seen.add(project)
  passed += report.numPassedTests
  failed += report.numFailedTests + (report.numRuntimeErrors ?? 0)
  notRun += report.numPendingTests + (report.numTodoTests ?? 0)
  for (const suite of report.testResults ?? []) {
    if (suite.status === "failed" && (suite.assertionResults ?? []).length === 0) {
      failed += 1 // a file that failed to load
      failures.push(`${suite.name}: ${firstLine(suite.message ?? "failed to load")}`)
    }
    for (const test of suite.assertionResults ?? []) {
      if (test.status === "failed") failures.push(`${suite.name} > ${test.fullName}: ${failureLine(test.failureMessages?.[0])}`)
    }
  }
  // Why a test did not run: the setup error the summary reporter found for it.
  const summaryFile = `${project}.summary.json`
  if (existsSync(join(dir, summaryFile))) {
    const summary = readJson(summaryFile)
    for (const t of summary.skipped) {
      failures.push(`${t.name}: did not run (${t.mode === "run" ? "setup failed" : t.mode}): ${t.message}`)
    }
    for (const e of summary.errors) if (e.name === "unhandled error") failures.push(`${e.name}: ${e.message}`)
  }
}
for (const project of expected) {
  if (!seen.has(project)) {
    failures.push(`${project}: no test report (its vitest did not finish)`)
    failed += 1
  }
}
// The failed tests by name (CI shows the end of the output, where this list is right above the closing line).
for (const f of failures) console.error(`FAILED ${f}`)
if (notRun > 0) console.error(`${notRun} test(s) did not run; each is counted as failed (no test may be skipped)`)
const total = failed + notRun
console.log(`${passed} passed, ${total} failed`)
process.exit(total > 0 ? 1 : 0)

// Sums the per-project summaries that tools/test/summary-reporter.mjs writes into the plain closing line CI reads:
// "N passed, N failed". A test that did not run (skipped, todo, or stopped by a failed beforeAll such as a missing
// S3 server) is a defect here and counts as failed, listed with the reason. A project whose summary is missing (its
// vitest crashed before reporting), a file that failed to load and an unhandled error count as one failure each.
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const [dir, ...expected] = process.argv.slice(2)
let passed = 0
const failures = []
const notRun = []
const seen = new Set()
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
  const summary = JSON.parse(readFileSync(join(dir, file), "utf8"))
  seen.add(summary.project)
  passed += summary.passed
  for (const t of summary.failed) failures.push(`${t.name}: ${t.message}`)
  for (const e of summary.errors) failures.push(`${e.name}: ${e.message}`)
  for (const t of summary.skipped) notRun.push(`${t.name}: did not run (${t.mode === "run" ? "setup failed" : t.mode}): ${t.message}`)
}
for (const project of expected) {
  if (!seen.has(project)) failures.push(`${project}: no test report (its vitest did not finish)`)
}
// The failed tests by name (CI shows the end of the output, where this list is right above the closing line).
for (const f of failures) console.error(`FAILED ${f}`)
for (const f of notRun) console.error(`FAILED ${f}`)
if (notRun.length > 0) console.error(`${notRun.length} test(s) did not run; each is counted as failed (no test may be skipped)`)
const failed = failures.length + notRun.length
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed > 0 ? 1 : 0)

// A vitest reporter that writes one project's outcome to $VITEST_JSON_DIR/<project>.summary.json for tools/test/count.mjs:
// every test by state, with the first line of its error, and for a test that did not run (skipped) the error of the
// suite or module that stopped it. Vitest's own JSON report drops a failed beforeAll's error and lists the suite's
// tests only as "skipped" (that is how a missing S3 server once ended as "36 skipped" instead of 36 failures); here
// such a test carries the setup error, and count.mjs counts it as failed.
import { writeFileSync } from "node:fs"
import { basename, join } from "node:path"

const firstLine = (error) => String(error?.message ?? error ?? "").split("\n")[0]

/** The first error of the nearest suite or module above `entity` that has one. */
const setupError = (entity) => {
  for (let node = entity.parent; node !== undefined; node = node.parent) {
    const errors = typeof node.errors === "function" ? node.errors() : []
    if (errors.length > 0) return firstLine(errors[0])
    if (node.type === "module") break
  }
  return undefined
}

export default class SummaryReporter {
  constructor(options = {}) {
    this.dir = options.dir ?? process.env["VITEST_JSON_DIR"]
    this.project = options.project ?? basename(process.cwd())
  }

  onTestRunEnd(testModules, unhandledErrors = []) {
    if (this.dir === undefined) return
    const summary = { project: this.project, passed: 0, failed: [], skipped: [], errors: [] }
    for (const module of testModules) {
      const file = module.moduleId
      let tests = 0
      for (const test of module.children.allTests()) {
        tests += 1
        const result = test.result()
        const name = `${file} > ${test.fullName}`
        if (result.state === "passed") summary.passed += 1
        else if (result.state === "failed") summary.failed.push({ name, message: firstLine(result.errors?.[0]) })
        else {
          const cause = setupError(test)
          summary.skipped.push({
            name,
            mode: test.options.mode,
            message: cause ?? (result.note !== undefined ? `skipped: ${result.note}` : `marked ${test.options.mode}`)
          })
        }
      }
      // A file that failed to load has no tests; its error is its only trace. A file without tests is counted too.
      if (tests === 0) {
        summary.errors.push({ name: file, message: firstLine(module.errors()[0]) || "the file ran no test" })
      }
    }
    for (const error of unhandledErrors) summary.errors.push({ name: "unhandled error", message: firstLine(error) })
    writeFileSync(join(this.dir, `${this.project}.summary.json`), JSON.stringify(summary, null, 1))
  }
}

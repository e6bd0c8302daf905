/**
 * The V8 flags and malloc settings the migrator ships with are written in several places that start it: the start
 * target, the Docker image, the root README, the migrator's `NodeFlags.ts` (which the demo and the CLI tests spawn it
 * with), and the bench (whose defaults must measure what ships). A flag added or changed in one of them and not the
 * others would make the bench measure another program than users run.
 */
import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { resolveOptions } from "../src/Options.ts"
import { shippedMallocEnv, shippedNodeFlags } from "../src/Runs.ts"
import { rawOptions } from "./RawOptions.ts"

const root = join(import.meta.dirname, "..", "..", "..")
const read = (path: string) => readFileSync(join(root, path), "utf8")

/** The bench's defaults, as `bench.sh` without options resolves them. */
const defaults = (): ReturnType<typeof shippedNodeFlags> => {
  const options = resolveOptions(rawOptions())
  if ("usage" in options) throw new Error(options.usage)
  return shippedNodeFlags({ options })
}

/** The `--` flags given to node before the script in a command line or argument list. */
const nodeFlagsIn = (text: string, script: RegExp): ReadonlyArray<string> => {
  const match = script.exec(text)
  if (match === null) throw new Error(`no ${script} in the text`)
  return [...match[1]!.matchAll(/--[a-z-]+=\d+/g)].map((m) => m[0])
}

describe("the shipped node flags", () => {
  it("are the same in the start target, the Docker image, NodeFlags.ts (the demo, the CLI tests) and the bench's defaults", () => {
    const shipped = defaults()
    expect(shipped).toContain("--max-semi-space-size=8")
    expect(shipped).toContain("--initial-old-space-size=128")
    const start = JSON.parse(read("apps/migrator/project.json")).targets.start.options
    expect(nodeFlagsIn(start.command, /^node (.*) dist\/main\.js$/)).toEqual(shipped)
    expect(nodeFlagsIn(read("docker/Dockerfile"), /ENTRYPOINT \["node", (.*)"\/app\/apps\/migrator\/dist\/main\.js"\]/))
      .toEqual(shipped)
    expect(nodeFlagsIn(read("apps/migrator/src/NodeFlags.ts"), /shippedNodeFlags: ReadonlyArray<string> = \[(.*)\]/))
      .toEqual(shipped)
    expect(read("apps/migrator/demo/demo.ts")).toMatch(
      /spawn\(process\.execPath, \[\.\.\.shippedNodeFlags, "--conditions=development", main/
    )
    expect(read("apps/migrator/test/cli.ts")).toMatch(
      /spawn\(process\.execPath, \[\.\.\.shippedNodeFlags, "--conditions=development", "src\/main\.ts"/
    )
    expect(nodeFlagsIn(read("README.md"), /npx node ([^`]*)\s+apps\/migrator\/dist\/main\.js/)).toEqual(shipped)
  })

  it("and the malloc settings are the same in the start target, the Docker image and the bench", () => {
    const start = JSON.parse(read("apps/migrator/project.json")).targets.start.options
    expect(start.env).toEqual(shippedMallocEnv)
    const docker = /ENV (MALLOC_[^\n]*)/.exec(read("docker/Dockerfile"))?.[1] ?? ""
    expect(Object.fromEntries(docker.split(/\s+/).map((kv) => kv.split("=")))).toEqual(shippedMallocEnv)
  })
})

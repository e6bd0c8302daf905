/** Spill directories of ended processes are removed; those of live processes, other hosts and older versions stay. */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import { currentOwner } from "@lo-migrate/core"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { makeSpillDir, spillDirPrefix, sweepSpillDirs } from "../src/index.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "spill-dirs-test-"))),
  (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
)

/** The owner id of a running child process (read from /proc as the child itself would). */
const childOwnerId = (hostTag: string, boot: string, pid: number) => {
  const stat = NodeFs.readFileSync(`/proc/${pid}/stat`, "utf8")
  return `${hostTag}-${pid}-${boot}-${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`
}

describe("spill directories", () => {
  it.live("a sweep removes exactly the directories of processes that are gone", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const me = yield* currentOwner
      const mine = yield* makeSpillDir(NodePath.join(dir, "created"))
      assert.match(NodePath.basename(mine), new RegExp(`^${spillDirPrefix}${me.id}-[A-Za-z0-9]{6}$`))
      const live = spawn("sleep", ["30"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => void live.kill("SIGKILL")))
      const dead = spawn("true", [], { stdio: "ignore" })
      const deadId = childOwnerId(me.hostTag, me.boot, dead.pid!)
      yield* Effect.callback<void>((resume) => void dead.once("exit", () => resume(Effect.void)))
      const make = (name: string, withFile = true) => {
        const path = NodePath.join(dir, name)
        NodeFs.mkdirSync(path)
        if (withFile) NodeFs.writeFileSync(NodePath.join(path, "1-abc.bin"), "spilled bytes")
        return path
      }
      const ownDir = make(`${spillDirPrefix}${me.id}-aaaaaa`)
      const liveDir = make(`${spillDirPrefix}${childOwnerId(me.hostTag, me.boot, live.pid!)}-bbbbbb`)
      const deadDir = make(`${spillDirPrefix}${deadId}-cccccc`)
      const reusedPid = make(`${spillDirPrefix}${me.hostTag}-${process.pid}-${me.boot}-1-dddddd`)
      const earlierBoot = make(`${spillDirPrefix}${me.hostTag}-${process.pid}-00000000-${me.start}-eeeeee`)
      const otherHost = make(`${spillDirPrefix}${me.hostTag === "0".repeat(12) ? "1" : "0"}${"0".repeat(11)}-${deadId.split("-").slice(1).join("-")}-ffffff`)
      const legacy = make("lo-migrate-Gh3kL9")
      const unrelated = make("something-else")
      const result = yield* sweepSpillDirs(dir)
      assert.sameMembers([...result.removed], [deadDir, reusedPid, earlierBoot])
      assert.deepStrictEqual(result.legacy, [legacy])
      assert.strictEqual(result.kept, 3)
      for (const path of [ownDir, liveDir, otherHost, legacy, unrelated]) assert.isTrue(NodeFs.existsSync(path), path)
      for (const path of result.removed) assert.isFalse(NodeFs.existsSync(path), path)
      // a missing temp dir is nothing to sweep
      assert.deepStrictEqual(yield* sweepSpillDirs(NodePath.join(dir, "missing")), { removed: [], kept: 0, legacy: [] })
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))
})

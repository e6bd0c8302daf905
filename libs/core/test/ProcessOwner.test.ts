/** Owner ids and liveness, against real processes of this machine. */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { currentOwner, ownerIdPattern, ownerLiveness, parseOwnerId } from "../src/index.ts"

/** A child process that sleeps until killed; its owner id is read from /proc like the child would. */
const sleeper = Effect.acquireRelease(
  Effect.sync(() => spawn("sleep", ["30"], { stdio: "ignore" })),
  (child) => Effect.sync(() => void child.kill("SIGKILL"))
)

describe("ProcessOwner", () => {
  it.effect("this process: a well-formed id, seen as self", () =>
    Effect.gen(function*() {
      const me = yield* currentOwner
      assert.match(me.id, ownerIdPattern)
      assert.strictEqual(me.pid, process.pid)
      assert.notStrictEqual(me.start, "0", "Linux: the start time comes from /proc/self/stat")
      assert.deepStrictEqual(parseOwnerId(me.id), { hostTag: me.hostTag, pid: me.pid, boot: me.boot, start: me.start, id: me.id })
      assert.strictEqual(yield* ownerLiveness(me.id), "self")
      assert.strictEqual(me.id, (yield* currentOwner).id, "stable")
    }))

  it.live("another process: alive while it runs, gone after; a reused pid (other start time) is gone", () =>
    Effect.gen(function*() {
      const me = yield* currentOwner
      const child = yield* sleeper
      const stat = yield* Effect.promise(() => import("node:fs/promises").then((fs) => fs.readFile(`/proc/${child.pid}/stat`, "utf8")))
      const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!
      const id = `${me.hostTag}-${child.pid}-${me.boot}-${start}`
      assert.strictEqual(yield* ownerLiveness(id), "alive")
      assert.strictEqual(yield* ownerLiveness(`${me.hostTag}-${child.pid}-${me.boot}-${Number(start) + 1}`), "gone")
      assert.strictEqual(yield* ownerLiveness(`${me.hostTag}-${child.pid}-00000000-${start}`), "gone", "an earlier boot")
      child.kill("SIGKILL")
      yield* Effect.callback<void>((resume) => void child.once("exit", () => resume(Effect.void)))
      yield* Effect.sleep("50 millis")
      assert.strictEqual(yield* ownerLiveness(id), "gone")
    }).pipe(Effect.scoped))

  it.effect("an owner on another host (or pid namespace) cannot be checked here", () =>
    Effect.gen(function*() {
      const me = yield* currentOwner
      const other = me.hostTag === "000000000000" ? "111111111111" : "000000000000"
      assert.strictEqual(yield* ownerLiveness(`${other}-${me.pid}-${me.boot}-${me.start}`), "unknown")
      assert.strictEqual(yield* ownerLiveness("not an id"), "unknown")
    }))
})

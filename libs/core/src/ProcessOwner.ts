/**
 * Who owns a leftover (a spill directory, a multipart upload): this process, a live one, or one that is gone.
 *
 * An owner id is `<hostTag>-<pid>-<boot>-<start>`:
 * - `hostTag`: 12 hex digits of SHA-256(hostname, pid namespace). Two processes with the same tag see the same pids.
 * - `pid`, and `start`: the process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), so a pid
 *   reused by another process is told apart.
 * - `boot`: the first 8 hex digits of the kernel's boot id; an owner of an earlier boot is gone.
 * Without `/proc` (not Linux) `boot` and `start` are `0`, and when `/proc/<pid>` cannot be read (hidden by procfs
 * `hidepid`) liveness falls back to "does the pid exist" (a reused pid then counts as alive: leftovers are kept rather
 * than removed from under a live process).
 *
 * An owner with another `hostTag` cannot be checked here (`"unknown"`): callers use a lease (S3UploadLedger) or keep
 * its leftovers.
 */
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { readFile, readlink } from "node:fs/promises"
import { hostname } from "node:os"

export interface ProcessOwner {
  readonly hostTag: string
  readonly pid: number
  readonly boot: string
  readonly start: string
  /** `<hostTag>-<pid>-<boot>-<start>`: safe in file names and S3 keys. */
  readonly id: string
  /** The host name, for messages (not part of the id). */
  readonly host: string
}

export const ownerIdPattern = /^([0-9a-f]{12})-(\d+)-([0-9a-f]{8}|0)-(\d+)$/

/** Parses an owner id; `undefined` when it is not one. */
export const parseOwnerId = (id: string): Omit<ProcessOwner, "host"> | undefined => {
  const m = ownerIdPattern.exec(id)
  return m === null ? undefined : { hostTag: m[1]!, pid: Number(m[2]), boot: m[3]!, start: m[4]!, id }
}

const orUndefined = <A>(promise: Promise<A>): Effect.Effect<A | undefined> =>
  Effect.promise(() => promise.then((a): A | undefined => a, () => undefined))

/** Field 22 of `/proc/<pid>/stat` (after the command, which may hold spaces and parentheses). */
const startTicksOf = (pid: number | "self"): Effect.Effect<string | undefined> =>
  orUndefined(readFile(`/proc/${pid}/stat`, "utf8")).pipe(
    Effect.map((stat) => stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19])
  )

const bootId: Effect.Effect<string> = orUndefined(readFile("/proc/sys/kernel/random/boot_id", "utf8")).pipe(
  Effect.map((id) => id === undefined ? "0" : id.replace(/-/g, "").slice(0, 8))
)

const hostTagOf: Effect.Effect<string> = orUndefined(readlink("/proc/self/ns/pid")).pipe(
  Effect.map((ns) => createHash("sha256").update(`${hostname()}\u0000${ns ?? ""}`).digest("hex").slice(0, 12))
)

/** This process as an owner. */
export const currentOwner: Effect.Effect<ProcessOwner> = Effect.gen(function*() {
  const hostTag = yield* hostTagOf
  const boot = yield* bootId
  const start = (yield* startTicksOf("self")) ?? "0"
  const pid = process.pid
  return { hostTag, pid, boot, start, id: `${hostTag}-${pid}-${boot}-${start}`, host: hostname() }
})

/** Whether a pid exists (signal 0 checks without sending anything; EPERM means it exists under another user). */
const pidExists = (pid: number): Effect.Effect<boolean> =>
  Effect.try({ try: () => process.kill(pid, 0), catch: (e) => (e as { code?: string }).code }).pipe(
    Effect.as(true),
    Effect.catch((code) => Effect.succeed(code === "EPERM"))
  )

export type Liveness = "self" | "alive" | "gone" | "unknown"

/** Whether the owner with this id still runs, as far as this host can tell. */
export const ownerLiveness = Effect.fn("ProcessOwner.ownerLiveness")(function*(id: string): Effect.fn.Return<Liveness> {
  const owner = parseOwnerId(id)
  const me = yield* currentOwner
  if (owner === undefined || owner.hostTag !== me.hostTag) return "unknown"
  if (owner.id === me.id) return "self"
  if (owner.boot !== me.boot) return "gone"
  if (owner.start === "0") return (yield* pidExists(owner.pid)) ? "alive" : "gone"
  const start = yield* startTicksOf(owner.pid)
  if (start !== undefined) return start === owner.start ? "alive" : "gone"
  // /proc/<pid> unreadable: no such process, or hidden (procfs hidepid): ask the kernel whether the pid exists
  return (yield* pidExists(owner.pid)) ? "alive" : "gone"
})

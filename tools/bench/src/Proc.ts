/**
 * Process accounting on Linux: CPU of the PostgreSQL and Ceph daemons and of the whole machine (from /proc), and
 * running a child with its own peak RSS and CPU (`/usr/bin/time`, else /proc polling). `runMeasured` is the one
 * place that speaks Node's `child_process` (GNU time's output file, the 50 ms /proc polling and the stderr echo are
 * event callbacks); every bench step runs children through its Effect, `measureChild`.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { spawn } from "node:child_process"
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const TICK_MS = 10 // CLK_TCK = 100 on Linux

interface ProcStat {
  readonly pid: number
  readonly comm: string
  readonly ppid: number
  /** utime + stime, ms */
  readonly cpu: number
  /** cutime + cstime (waited-for children), ms */
  readonly childCpu: number
}

const readStat = (pid: string): ProcStat | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    const close = text.lastIndexOf(")")
    const comm = text.slice(text.indexOf("(") + 1, close)
    const f = text.slice(close + 2).split(" ")
    // f[0] = state (field 3); utime is field 14 -> f[11]
    return {
      pid: Number(pid),
      comm,
      ppid: Number(f[1]),
      cpu: (Number(f[11]) + Number(f[12])) * TICK_MS,
      childCpu: (Number(f[13]) + Number(f[14])) * TICK_MS
    }
  } catch {
    return undefined
  }
}

export interface CpuSample {
  /** CPU ms of all postgres processes, plus what the postmaster collected from exited backends. */
  readonly pg: number
  /** CPU ms of radosgw, ceph-osd and ceph-mon. */
  readonly ceph: number
  /** Machine-wide busy and total jiffies (all cores), from /proc/stat. */
  readonly busy: number
  readonly total: number
}

const cephNames = new Set(["radosgw", "ceph-osd", "ceph-mon", "ceph-mgr"])

export const sampleCpu = (): CpuSample | undefined => {
  if (!existsSync("/proc/stat")) return undefined
  let pg = 0
  let ceph = 0
  const stats: Array<ProcStat> = []
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const s = readStat(entry)
    if (s !== undefined) stats.push(s)
  }
  const pgPids = new Set(stats.filter((s) => s.comm === "postgres" || s.comm.startsWith("postgres:")).map((s) => s.pid))
  for (const s of stats) {
    if (pgPids.has(s.pid)) {
      pg += s.cpu
      // the postmaster (parent not a postgres process) accumulates its exited backends' CPU
      if (!pgPids.has(s.ppid)) pg += s.childCpu
    } else if (cephNames.has(s.comm)) ceph += s.cpu
  }
  const cpuLine = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = cpuLine.slice(0, 8).reduce((a, b) => a + b, 0)
  const idle = (cpuLine[3] ?? 0) + (cpuLine[4] ?? 0)
  return { pg, ceph, busy: total - idle, total }
}

export interface CpuDelta {
  readonly pgCpuMs: number | undefined
  readonly cephCpuMs: number | undefined
  readonly machineBusy: number | undefined
}

export const cpuDelta = (a: CpuSample | undefined, b: CpuSample | undefined): CpuDelta =>
  a === undefined || b === undefined
    ? { pgCpuMs: undefined, cephCpuMs: undefined, machineBusy: undefined }
    : {
      pgCpuMs: Math.max(0, b.pg - a.pg),
      cephCpuMs: Math.max(0, b.ceph - a.ceph),
      machineBusy: b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : undefined
    }

export interface ChildResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly wallMs: number
  /** Peak RSS of the child (the largest process of its tree that was waited for, per getrusage). */
  readonly peakRssBytes: number | undefined
  readonly cpuMs: number | undefined
}

const TIME = "/usr/bin/time"

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
  /** Echo the child's stderr lines (progress) with this prefix. */
  readonly echoStderr?: string
}

/**
 * Runs a command to completion, measuring wall time, peak RSS and CPU of that command only. With GNU time the figures
 * come from wait4's rusage; without it, /proc/<pid>/status VmHWM and /proc/<pid>/stat are polled every 50 ms.
 */
export const runMeasured = (command: string, args: ReadonlyArray<string>, options: RunOptions = {}): Promise<ChildResult> =>
  new Promise((resolve, reject) => {
    const useTime = existsSync(TIME)
    const timeFile = join(tmpdir(), `lo-bench-time-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`)
    const [cmd, argv] = useTime
      ? [TIME, ["-f", "%M %U %S", "-o", timeFile, command, ...args]]
      : [command, [...args]]
    const started = performance.now()
    const child = spawn(cmd, argv, { env: options.env ?? process.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let pending = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => { stdout += d })
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d
      if (options.echoStderr === undefined) return
      pending += d
      const lines = pending.split("\n")
      pending = lines.pop() ?? ""
      for (const l of lines) process.stderr.write(`${options.echoStderr}${l}\n`)
    })
    let polledHwm = 0
    let polledCpu = 0
    const poll = useTime ? undefined : setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8")
        const m = /VmHWM:\s+(\d+) kB/.exec(status)
        if (m !== null) polledHwm = Math.max(polledHwm, Number(m[1]) * 1024)
        const s = readStat(String(child.pid))
        if (s !== undefined) polledCpu = s.cpu
      } catch { /* exited */ }
    }, 50)
    child.on("error", reject)
    child.on("close", (code, signal) => {
      if (poll !== undefined) clearInterval(poll)
      const wallMs = performance.now() - started
      let peakRssBytes: number | undefined = polledHwm || undefined
      let cpuMs: number | undefined = polledCpu || undefined
      if (useTime && existsSync(timeFile)) {
        const last = readFileSync(timeFile, "utf8").trim().split("\n").pop() ?? ""
        const m = /^(\d+) ([\d.]+) ([\d.]+)$/.exec(last)
        if (m !== null) {
          peakRssBytes = Number(m[1]) * 1024
          cpuMs = (Number(m[2]) + Number(m[3])) * 1000
        }
        rmSync(timeFile, { force: true })
      }
      // GNU time exits with the child's status; a child killed by a signal shows as "Command terminated by signal"
      resolve({ code, signal, stdout, stderr, wallMs, peakRssBytes, cpuMs })
    })
  })

/** A child the bench could not start (command missing, not executable). */
export class SpawnError extends Schema.TaggedError<SpawnError>()("SpawnError", {
  command: Schema.String,
  cause: Schema.Defect()
}) {}

/** {@link runMeasured} as an Effect: what the bench's steps use to run a child to completion and measure it. */
export const measureChild = Effect.fn("Proc.measureChild")(
  function*(command: string, args: ReadonlyArray<string>, options: RunOptions = {}) {
    return yield* Effect.tryPromise({
      try: () => runMeasured(command, args, options),
      catch: (cause) => new SpawnError({ command, cause })
    })
  }
)

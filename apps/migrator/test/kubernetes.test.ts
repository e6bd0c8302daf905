/**
 * deploy/kubernetes/: the Indexed Job manifest is checked against the CLI itself. Every environment variable it sets
 * is one the CLI reads (the names come from Options.ts and VerifyOptions.ts, the tables the flags are built from, and
 * each also shows in `--help`), its plain values resolve to a valid configuration for every completion index (through
 * the real command line, with the Secret's keys filled in), the shard count agrees with completions and parallelism,
 * and the pod is non-root, read-only, bounded in memory and disk.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { TestConsole } from "effect/testing"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { parseAllDocuments } from "yaml"
import { type Handlers, runCli } from "../src/Cli.ts"
import type { MigratorConfig } from "../src/Config.ts"
import { ExitCode } from "../src/ExitCode.ts"
import { env as migrateEnv } from "../src/Options.ts"
import { flagEnv as verifyEnv, type VerifyConfig } from "../src/VerifyOptions.ts"

const dir = join(import.meta.dirname, "..", "..", "..", "deploy", "kubernetes")

interface EnvVar {
  readonly name: string
  readonly value?: string
  readonly valueFrom?: { readonly secretKeyRef?: { readonly name: string; readonly key: string } }
}

const documents = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJS() as Record<string, any>))

const named = (kind: string, name: string) =>
  documents.find((d) => d["kind"] === kind && d["metadata"]?.["name"] === name)!

/** One Job of the folder: its pod template, its one container, the container's environment and the Secret it reads. */
const jobParts = (name: string) => {
  const job = named("Job", name)
  const pod = job?.["spec"]?.["template"]?.["spec"]
  const container = pod?.["containers"]?.[0]
  const envVars: ReadonlyArray<EnvVar> = container?.["env"] ?? []
  const secretName = envVars.find((e) => e.valueFrom?.secretKeyRef !== undefined)?.valueFrom?.secretKeyRef?.name
  return { job, pod, container, envVars, secret: named("Secret", secretName ?? "") }
}

const { container, envVars, job, pod, secret } = jobParts("lo-migrate")
const verifyJob = jobParts("lo-migrate-verify")

/** What the CLI reads: the tables the flags (and Config.resolve) take their variable names from. */
const cliReads = new Set<string>([...Object.values(migrateEnv), ...Object.values(verifyEnv)])

/**
 * Peak RSS of `verify --deep` at 16 downloads in flight on the bench's default mix (`bash tools/bench/bench.sh --only
 * verify`, tools/bench/README.md, session 22).
 */
const verifyDeepPeakRssMiB = 274

const mebibytes = (quantity: string) => {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity)
  assert.isNotNull(m, `quantity ${quantity}`)
  return Number(m![1]) * (m![2] === "Gi" ? 1024 : 1)
}

/** The PostgreSQL URL and both S3 keys come from `secret` through the environment, never as values in the manifest. */
const credentialsFromSecret = (env: ReadonlyArray<EnvVar>, secret: Record<string, any>) => {
  for (const name of [migrateEnv.pgUrl, migrateEnv.accessKey, migrateEnv.secretKey]) {
    const e = env.find((v) => v.name === name)
    assert.isDefined(e, name)
    assert.isUndefined(e!.value, `${name} has a value in the manifest`)
    assert.strictEqual(e!.valueFrom?.secretKeyRef?.name, secret["metadata"]["name"], name)
    assert.property(secret["stringData"], e!.valueFrom!.secretKeyRef!.key, name)
  }
}

/** The port of the container's `metrics` port. */
const metricsPort = (): number => container["ports"].find((p: any) => p["name"] === "metrics")["containerPort"]

describe("deploy/kubernetes", () => {
  it("an Indexed Job: completions = parallelism = LO_MIGRATE_SHARDS, retries per index, exit 1 and 2 not retried", () => {
    assert.isDefined(job, "a Job in deploy/kubernetes/*.yaml")
    const spec = job["spec"]
    assert.strictEqual(spec["completionMode"], "Indexed")
    const shards = envVars.find((e) => e.name === migrateEnv.shards)?.value
    assert.strictEqual(spec["completions"], Number(shards))
    assert.strictEqual(spec["parallelism"], Number(shards))
    assert.isAbove(spec["backoffLimitPerIndex"], 0)
    assert.strictEqual(pod["restartPolicy"], "Never") // required by backoffLimitPerIndex
    const failIndex = spec["podFailurePolicy"]["rules"].find((r: any) => r["action"] === "FailIndex")
    assert.sameMembers(failIndex["onExitCodes"]["values"], [ExitCode.RowsFailed, ExitCode.Usage])
    assert.strictEqual(failIndex["onExitCodes"]["containerName"], container["name"])
    // the grace period of the pod outlasts the migrator's own
    const grace = Number(envVars.find((e) => e.name === migrateEnv.gracePeriod)?.value ?? 30)
    assert.isAbove(pod["terminationGracePeriodSeconds"], grace)
  })

  it.effect("every environment variable it sets is one the CLI reads, and each shows in --help", () =>
    Effect.gen(function*() {
      yield* runCli({ migrate: () => Effect.succeed(ExitCode.Ok), finalize: () => Effect.succeed(ExitCode.Ok) }, ["--help"])
      const help = (yield* TestConsole.logLines).map(String).join("\n")
      assert.isAbove(envVars.length, 5)
      for (const e of envVars) {
        assert.isTrue(cliReads.has(e.name), `${e.name} is not an environment variable of lo-migrate`)
        assert.include(help, e.name, `--help does not mention ${e.name}`)
      }
      // Kubernetes sets JOB_COMPLETION_INDEX itself; the manifest must not
      assert.isFalse(envVars.some((e) => e.name === migrateEnv.jobCompletionIndex))
    }).pipe(Effect.provide(NodeServices.layer)))

  it("secrets come from the Secret through the environment, never as values in the manifest", () => {
    credentialsFromSecret(envVars, secret)
  })

  it.effect("pod I of the Job resolves to shard I/N through the real command line, for every index", () =>
    Effect.gen(function*() {
      const shards = job["spec"]["completions"] as number
      const fromSecret = (key: string) => secret["stringData"][key] as string
      for (let index = 0; index < shards; index++) {
        const env: Record<string, string> = { JOB_COMPLETION_INDEX: String(index) }
        for (const e of envVars) {
          env[e.name] = e.value ?? fromSecret(e.valueFrom!.secretKeyRef!.key)
        }
        const seen: Array<MigratorConfig> = []
        const handlers: Handlers<never> = {
          migrate: (config) => Effect.sync(() => seen.push(config)).pipe(Effect.as(ExitCode.Ok)),
          finalize: () => Effect.succeed(ExitCode.Ok)
        }
        const code = yield* runCli(handlers, []).pipe(
          Effect.provide(Layer.mergeAll(NodeServices.layer, ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
        )
        assert.strictEqual(code, ExitCode.Ok, (yield* TestConsole.errorLines).map(String).join("\n"))
        assert.deepStrictEqual(seen[0]!.shard, { index, count: shards })
        // the metrics endpoint listens on the pod's IP, at the port the container and the scrape annotation name
        assert.deepStrictEqual(seen[0]!.metrics, { host: "0.0.0.0", port: metricsPort() })
        assert.strictEqual(seen[0]!.tempDir, container["volumeMounts"].find((m: any) => m["name"] === "spill")["mountPath"])
      }
    }))

  it("non-root (uid 1000), read-only root, the temp dir on a bounded emptyDir, memory for the measured peak", () => {
    const sc = pod["securityContext"]
    assert.strictEqual(sc["runAsNonRoot"], true)
    assert.strictEqual(sc["runAsUser"], 1000)
    const csc = container["securityContext"]
    assert.strictEqual(csc["readOnlyRootFilesystem"], true)
    assert.strictEqual(csc["allowPrivilegeEscalation"], false)
    assert.deepStrictEqual(csc["capabilities"]["drop"], ["ALL"])
    // --temp-dir is a mounted emptyDir with a size limit that holds --max-in-flight
    const tempDir = envVars.find((e) => e.name === migrateEnv.tempDir)!.value!
    const mount = container["volumeMounts"].find((m: any) => m["mountPath"] === tempDir)
    const volume = pod["volumes"].find((v: any) => v["name"] === mount["name"])
    assert.isDefined(volume["emptyDir"])
    const maxInFlight = Number(envVars.find((e) => e.name === migrateEnv.maxInFlight)!.value)
    assert.isAtLeast(mebibytes(volume["emptyDir"]["sizeLimit"]), maxInFlight)
    // README (tools/bench): peak RSS <= 300 MiB on the default mix
    const requests = container["resources"]["requests"]
    assert.isAtLeast(mebibytes(requests["memory"]), 300)
    assert.isAtLeast(mebibytes(container["resources"]["limits"]["memory"]), mebibytes(requests["memory"]))
    // every other path the process may write is a volume too (/tmp)
    assert.isDefined(container["volumeMounts"].find((m: any) => m["mountPath"] === "/tmp"))
  })

  it("Prometheus scrapes every pod's metrics endpoint: one port in the env, the container and the annotations", () => {
    const port = metricsPort()
    assert.strictEqual(envVars.find((e) => e.name === migrateEnv.metricsPort)?.value, String(port))
    const annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert.strictEqual(annotations["prometheus.io/scrape"], "true")
    assert.strictEqual(annotations["prometheus.io/port"], String(port))
    assert.strictEqual(annotations["prometheus.io/path"], "/metrics")
    // the endpoint lingers for a last scrape, within the pod's grace period beyond the migrator's own
    const linger = Number(envVars.find((e) => e.name === migrateEnv.metricsLinger)?.value ?? 0)
    const grace = Number(envVars.find((e) => e.name === migrateEnv.gracePeriod)?.value ?? 30)
    assert.isAbove(linger, 0)
    assert.isBelow(linger + grace, pod["terminationGracePeriodSeconds"])
  })
})

describe("deploy/kubernetes: the verify Job", () => {
  const { container: vContainer, envVars: vEnv, job: vJob, pod: vPod, secret: vSecret } = verifyJob
  const valueOf = (name: string) => vEnv.find((e) => e.name === name)?.value

  it("an Indexed Job of `verify`: completions = parallelism = LO_MIGRATE_SHARDS, exit 1 and 2 fail the index at once", () => {
    assert.isDefined(vJob, "the Job lo-migrate-verify in deploy/kubernetes/*.yaml")
    const spec = vJob["spec"]
    assert.strictEqual(spec["completionMode"], "Indexed")
    assert.deepStrictEqual(vContainer["args"], ["verify"])
    const shards = Number(valueOf(migrateEnv.shards))
    assert.isAbove(shards, 1)
    assert.strictEqual(spec["completions"], shards)
    assert.strictEqual(spec["parallelism"], shards)
    assert.isAbove(spec["backoffLimitPerIndex"], 0)
    assert.strictEqual(vPod["restartPolicy"], "Never")
    const failIndex = spec["podFailurePolicy"]["rules"].find((r: any) => r["action"] === "FailIndex")
    assert.sameMembers(failIndex["onExitCodes"]["values"], [ExitCode.RowsFailed, ExitCode.Usage])
    assert.strictEqual(failIndex["onExitCodes"]["containerName"], vContainer["name"])
  })

  it.effect("every environment variable it sets is one `verify` reads, and each shows in `verify --help`", () =>
    Effect.gen(function*() {
      const handlers: Handlers<never> = {
        migrate: () => Effect.succeed(ExitCode.Ok),
        finalize: () => Effect.succeed(ExitCode.Ok),
        verify: () => Effect.succeed(ExitCode.Ok)
      }
      yield* runCli(handlers, ["verify", "--help"])
      const help = (yield* TestConsole.logLines).map(String).join("\n")
      assert.isAbove(vEnv.length, 5)
      for (const e of vEnv) {
        assert.isTrue(cliReads.has(e.name), `${e.name} is not an environment variable of lo-migrate`)
        assert.include(help, e.name, `verify --help does not mention ${e.name}`)
      }
      assert.isFalse(vEnv.some((e) => e.name === migrateEnv.jobCompletionIndex))
    }).pipe(Effect.provide(NodeServices.layer)))

  it("its credentials come from a Secret of its own (read-only ones), never as values in the manifest", () => {
    assert.isDefined(vSecret, "the Secret the verify Job names, in deploy/kubernetes/*.yaml")
    assert.notStrictEqual(vSecret["metadata"]["name"], secret["metadata"]["name"])
    credentialsFromSecret(vEnv, vSecret)
  })

  it.effect("pod I runs `verify --deep --content-type` on shard I/N through the real command line; the shards tile the keys", () =>
    Effect.gen(function*() {
      const shards = vJob["spec"]["completions"] as number
      const ranges: Array<{ readonly from: string | undefined; readonly to: string | undefined }> = []
      for (let index = 0; index < shards; index++) {
        const env: Record<string, string> = { JOB_COMPLETION_INDEX: String(index) }
        for (const e of vEnv) env[e.name] = e.value ?? vSecret["stringData"][e.valueFrom!.secretKeyRef!.key]
        const seen: Array<VerifyConfig> = []
        const handlers: Handlers<never> = {
          migrate: () => Effect.succeed(ExitCode.Usage),
          finalize: () => Effect.succeed(ExitCode.Usage),
          verify: (config) => Effect.sync(() => seen.push(config)).pipe(Effect.as(ExitCode.Ok))
        }
        const code = yield* runCli(handlers, vContainer["args"]).pipe(
          Effect.provide(Layer.mergeAll(NodeServices.layer, ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
        )
        assert.strictEqual(code, ExitCode.Ok, (yield* TestConsole.errorLines).map(String).join("\n"))
        assert.strictEqual(seen.length, 1, `pod ${index} did not run verify`)
        const config = seen[0]!
        assert.deepStrictEqual(config.shard, { index, count: shards })
        assert.isTrue(config.deep)
        assert.isTrue(config.contentType)
        assert.isFalse(config.repair, "the verify Job only reads")
        assert.strictEqual(config.sample, 1)
        // the report lands on a mounted volume (the root filesystem is read-only)
        const report = config.connection.report!
        assert.isDefined(
          vContainer["volumeMounts"].find((m: any) => report.startsWith(`${m["mountPath"]}/`)),
          `${report} is not on a mounted volume`
        )
        ranges.push({ from: config.fromSha2, to: config.toSha2 })
      }
      // every key is checked by exactly one pod: the first range starts at the beginning, each ends where the next one
      // starts, the last runs to the end
      assert.isUndefined(ranges[0]!.from)
      assert.isUndefined(ranges[shards - 1]!.to)
      for (let i = 1; i < shards; i++) {
        assert.isDefined(ranges[i]!.from)
        assert.strictEqual(ranges[i - 1]!.to, ranges[i]!.from)
      }
    }))

  it("non-root (uid 1000), read-only root, the report and /tmp on bounded emptyDirs, memory for the measured peak", () => {
    const sc = vPod["securityContext"]
    assert.strictEqual(sc["runAsNonRoot"], true)
    assert.strictEqual(sc["runAsUser"], 1000)
    assert.isFalse(vPod["automountServiceAccountToken"])
    const csc = vContainer["securityContext"]
    assert.strictEqual(csc["readOnlyRootFilesystem"], true)
    assert.strictEqual(csc["allowPrivilegeEscalation"], false)
    assert.deepStrictEqual(csc["capabilities"]["drop"], ["ALL"])
    for (const mount of vContainer["volumeMounts"]) {
      const volume = vPod["volumes"].find((v: any) => v["name"] === mount["name"])
      assert.isDefined(volume["emptyDir"]["sizeLimit"], `${mount["mountPath"]} is not bounded`)
    }
    assert.isDefined(vContainer["volumeMounts"].find((m: any) => m["mountPath"] === "/tmp"))
    const requests = vContainer["resources"]["requests"]
    assert.isAtLeast(mebibytes(requests["memory"]), verifyDeepPeakRssMiB)
    assert.isAtLeast(mebibytes(vContainer["resources"]["limits"]["memory"]), mebibytes(requests["memory"]))
  })
})

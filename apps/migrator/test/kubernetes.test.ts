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
import { flagEnv as verifyEnv } from "../src/VerifyOptions.ts"

const dir = join(import.meta.dirname, "..", "..", "..", "deploy", "kubernetes")

interface EnvVar {
  readonly name: string
  readonly value?: string
  readonly valueFrom?: { readonly secretKeyRef?: { readonly name: string; readonly key: string } }
}

const documents = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJS() as Record<string, any>))

const job = documents.find((d) => d["kind"] === "Job")!
const secret = documents.find((d) => d["kind"] === "Secret")!
const pod = job?.["spec"]?.["template"]?.["spec"]
const container = pod?.["containers"]?.[0]
const envVars: ReadonlyArray<EnvVar> = container?.["env"] ?? []

/** What the CLI reads: the tables the flags (and Config.resolve) take their variable names from. */
const cliReads = new Set<string>([...Object.values(migrateEnv), ...Object.values(verifyEnv)])

const mebibytes = (quantity: string) => {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity)
  assert.isNotNull(m, `quantity ${quantity}`)
  return Number(m![1]) * (m![2] === "Gi" ? 1024 : 1)
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
    for (const name of [migrateEnv.pgUrl, migrateEnv.accessKey, migrateEnv.secretKey]) {
      const e = envVars.find((v) => v.name === name)
      assert.isDefined(e, name)
      assert.isUndefined(e!.value, `${name} has a value in the manifest`)
      assert.strictEqual(e!.valueFrom?.secretKeyRef?.name, secret["metadata"]["name"], name)
      assert.property(secret["stringData"], e!.valueFrom!.secretKeyRef!.key, name)
    }
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

import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"
import { TestConsole } from "effect/testing"
import { type Handlers, runCli } from "../src/Cli.ts"
import type { DatabaseConfig, MigratorConfig } from "../src/Config.ts"
import { render } from "../src/ConfigRender.ts"
import { ExitCode } from "../src/ExitCode.ts"
import type { StatusConfig } from "../src/StatusOptions.ts"
import { printStderr, stderrLineUnsafe } from "../src/Stderr.ts"
import type { VerifyConfig } from "../src/VerifyOptions.ts"
import { verifyOptionsOf } from "../src/VerifyCommand.ts"

/** Handlers that record what they were given instead of connecting anywhere. */
const recording = (code: ExitCode = ExitCode.Ok) => {
  const calls: Array<{ readonly command: "migrate" | "finalize"; readonly config: MigratorConfig | DatabaseConfig }> = []
  const handlers: Handlers<never> = {
    migrate: (config) => Effect.sync(() => calls.push({ command: "migrate", config })).pipe(Effect.as(code)),
    finalize: (config) => Effect.sync(() => calls.push({ command: "finalize", config })).pipe(Effect.as(code))
  }
  return { calls, handlers }
}

const base = ["-p", "postgresql://app@db.example/nice", "-u", "https://rgw.example", "-b", "binaries"]

const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}, code: ExitCode = ExitCode.Ok) =>
  Effect.gen(function*() {
    const { calls, handlers } = recording(code)
    const exit = yield* runCli(handlers, args)
    const errors = (yield* TestConsole.errorLines).map(String).join("\n")
    const logs = (yield* TestConsole.logLines).map(String).join("\n")
    return { exit, calls, errors, logs }
  }).pipe(
    Effect.provide(Layer.mergeAll(NodeServices.layer, ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
  )

const migrateConfig = (calls: ReturnType<typeof recording>["calls"]): MigratorConfig => {
  assert.strictEqual(calls.length, 1)
  assert.strictEqual(calls[0]!.command, "migrate")
  return calls[0]!.config as MigratorConfig
}

describe("command line", () => {
  it.effect("the original options with their defaults; migrate is the default command", () =>
    Effect.gen(function*() {
      const { exit, calls } = yield* run(base)
      assert.strictEqual(exit, ExitCode.Ok)
      const c = migrateConfig(calls)
      assert.strictEqual(Redacted.value(c.pgUrl), "postgresql://app@db.example/nice")
      assert.strictEqual(c.s3Url.toString(), "https://rgw.example/")
      assert.strictEqual(c.bucket, "binaries")
      assert.deepStrictEqual(
        [c.receiverThreads, c.storerThreads, c.committerThreads, c.receiverQueue, c.storerQueue, c.committerQueue],
        [2, 32, 2, 8192, 1024, 8192]
      )
      assert.strictEqual(c.inMemMax, 1024 * 1024)
      assert.strictEqual(c.maxInMemoryBytes, 32 * 1024 * 1024)
      assert.strictEqual(c.commitChunk, 100)
      assert.strictEqual(c.interval, 10)
      assert.strictEqual(c.finalize, false)
      assert.strictEqual(c.dryRun, false)
      assert.strictEqual(c.accessKeyId, undefined)
      assert.strictEqual(c.secretSource, "default chain")
      assert.strictEqual(c.maxInFlightBytes, undefined)
      assert.strictEqual(c.gracePeriod, 30)
      assert.deepStrictEqual([c.retryBudget, c.requestTimeout, c.pgStatementTimeout, c.connectTimeout], [300, 20, 60, 5])
      assert.isFalse(c.pgTransactionPooler) // prepared statements, unless a pooler is declared or detected
    }))

  it.effect("long and short forms, KiB units, before or after the subcommand", () =>
    Effect.gen(function*() {
      const { exit, calls } = yield* run([
        "--receiver-threads", "3", "migrate", ...base, "--storer-threads", "7", "--committer-threads", "4",
        "--receiver-queue", "10", "--storer-queue", "11", "--committer-queue", "12", "--in-mem-max", "2048",
        "--upload-chunk-size", "6144", "--commit-chunk", "50", "-i", "2", "-f", "--dry-run", "--report", "/tmp/r.jsonl",
        "--log-format", "json", "--temp-dir", "/var/tmp", "--no-path-style", "--region", "eu-central-1",
        "--skip-batch-job-check", "--max-in-flight", "256", "--grace-period", "5",
        "--max-in-memory", "32", "--retry-budget", "60", "--request-timeout", "7", "--connect-timeout", "2",
        "--pg-statement-timeout", "9"
      ])
      assert.strictEqual(exit, ExitCode.Ok)
      const c = migrateConfig(calls)
      assert.deepStrictEqual(
        [c.receiverThreads, c.storerThreads, c.committerThreads, c.receiverQueue, c.storerQueue, c.committerQueue],
        [3, 7, 4, 10, 11, 12]
      )
      assert.strictEqual(c.inMemMax, 2048 * 1024)
      assert.strictEqual(c.uploadChunkSize, 6144 * 1024)
      assert.strictEqual(c.commitChunk, 50)
      assert.strictEqual(c.interval, 2)
      assert.isTrue(c.finalize)
      assert.isTrue(c.dryRun)
      assert.strictEqual(c.report, "/tmp/r.jsonl")
      assert.strictEqual(c.logFormat, "json")
      assert.strictEqual(c.tempDir, "/var/tmp")
      assert.isFalse(c.pathStyle)
      assert.strictEqual(c.region, "eu-central-1")
      assert.isTrue(c.skipBatchJobCheck)
      assert.strictEqual(c.maxInFlightBytes, 256 * 1024 * 1024)
      assert.strictEqual(c.maxInMemoryBytes, 32 * 1024 * 1024)
      assert.strictEqual(c.gracePeriod, 5)
      assert.deepStrictEqual([c.retryBudget, c.requestTimeout, c.pgStatementTimeout, c.connectTimeout], [60, 7, 9, 2])
    }))

  it.effect("every option reads its environment variable; the command line wins", () =>
    Effect.gen(function*() {
      const env = {
        PG_URL: "postgres://env@db/nice",
        S3_URL: "http://127.0.0.1:7480",
        S3_BUCKET: "from-env",
        AWS_ACCESS_KEY_ID: "AKIAENV",
        AWS_SECRET_ACCESS_KEY: "env-secret",
        AWS_REGION: "eu-west-1",
        LO_MIGRATE_STORER_THREADS: "9",
        LO_MIGRATE_IN_MEM_MAX: "64",
        LO_MIGRATE_COMMIT_CHUNK: "500",
        LO_MIGRATE_MAX_IN_MEMORY: "16",
        LO_MIGRATE_INTERVAL: "1",
        LO_MIGRATE_FINALIZE: "true",
        LO_MIGRATE_LOG_FORMAT: "json",
        LO_MIGRATE_PATH_STYLE: "false",
        LO_MIGRATE_RETRY_BUDGET: "900",
        LO_MIGRATE_REQUEST_TIMEOUT: "45",
        LO_MIGRATE_PG_STATEMENT_TIMEOUT: "33",
        LO_MIGRATE_CONNECT_TIMEOUT: "3",
        LO_MIGRATE_PG_TRANSACTION_POOLER: "true"
      }
      const { exit, calls } = yield* run(["--commit-chunk", "7"], env)
      assert.strictEqual(exit, ExitCode.Ok)
      const c = migrateConfig(calls)
      assert.strictEqual(Redacted.value(c.pgUrl), "postgres://env@db/nice")
      assert.strictEqual(c.s3Url.toString(), "http://127.0.0.1:7480/")
      assert.strictEqual(c.bucket, "from-env")
      assert.strictEqual(c.accessKeyId, "AKIAENV")
      assert.strictEqual(Redacted.value(c.secretAccessKey!), "env-secret")
      assert.strictEqual(c.secretSource, "environment")
      assert.strictEqual(c.region, "eu-west-1")
      assert.strictEqual(c.storerThreads, 9)
      assert.strictEqual(c.inMemMax, 64 * 1024)
      assert.strictEqual(c.maxInMemoryBytes, 16 * 1024 * 1024)
      assert.strictEqual(c.commitChunk, 7)
      assert.strictEqual(c.interval, 1)
      assert.isTrue(c.finalize)
      assert.strictEqual(c.logFormat, "json")
      assert.isFalse(c.pathStyle)
      assert.deepStrictEqual([c.retryBudget, c.requestTimeout, c.pgStatementTimeout, c.connectTimeout], [900, 45, 33, 3])
      assert.isTrue(c.pgTransactionPooler)
      assert.deepStrictEqual(c.warnings, [])
    }))

  it.effect("a secret on the command line works and warns, without printing the secret", () =>
    Effect.gen(function*() {
      const { exit, calls, errors } = yield* run([
        ...base.slice(2), "-p", "postgresql://app:pg-hunter2@db.example/nice", "-k", "AKIA1", "-s", "s3-hunter2"
      ])
      assert.strictEqual(exit, ExitCode.Ok)
      const c = migrateConfig(calls)
      assert.strictEqual(Redacted.value(c.secretAccessKey!), "s3-hunter2")
      assert.strictEqual(c.secretSource, "command line")
      assert.strictEqual(c.pgPasswordSource, "command line")
      assert.strictEqual(c.warnings.length, 2)
      assert.match(c.warnings.join("\n"), /--secret-key on the command line is visible/)
      assert.match(c.warnings.join("\n"), /--pg-url carries a password on the command line/)
      assert.notInclude(c.warnings.join("\n"), "hunter2")
      assert.notInclude(errors, "hunter2")
    }))

  it.effect("LO_MIGRATE_LOG_LEVEL stands in for --log-level", () =>
    Effect.gen(function*() {
      const { exit, calls } = yield* run(base, { LO_MIGRATE_LOG_LEVEL: "error" })
      assert.strictEqual(exit, ExitCode.Ok)
      assert.strictEqual(calls.length, 1)
      // the flag wins over the variable (an invalid variable is ignored when the flag is given)
      assert.strictEqual((yield* run([...base, "--log-level", "warn"], { LO_MIGRATE_LOG_LEVEL: "chatty" })).exit, ExitCode.Ok)
    }))

  it.effect("finalize needs only the database", () =>
    Effect.gen(function*() {
      const { exit, calls } = yield* run(["finalize", "-p", "postgres://app@db/nice"])
      assert.strictEqual(exit, ExitCode.Ok)
      assert.strictEqual(calls.length, 1)
      assert.strictEqual(calls[0]!.command, "finalize")
      assert.strictEqual(Redacted.value(calls[0]!.config.pgUrl), "postgres://app@db/nice")
    }))

  it.effect("the handler's exit code is the process's", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* run(base, {}, ExitCode.RowsFailed)).exit, ExitCode.RowsFailed)
      assert.strictEqual((yield* run(base, {}, ExitCode.Fatal)).exit, ExitCode.Fatal)
      assert.strictEqual((yield* run(["finalize", ...base], {}, ExitCode.RowsFailed)).exit, ExitCode.RowsFailed)
    }))

  it.effect("--help lists every option with its default and environment variable, and exits 0", () =>
    Effect.gen(function*() {
      const { exit, calls, logs, errors } = yield* run(["--help"])
      assert.strictEqual(exit, ExitCode.Ok)
      assert.strictEqual(calls.length, 0)
      const help = `${logs}\n${errors}`
      for (
        const option of [
          "--pg-url", "-p", "--s3-url", "-u", "--access-key", "-k", "--secret-key", "-s", "--bucket", "-b",
          "--receiver-threads", "--storer-threads", "--committer-threads", "--receiver-queue", "--storer-queue",
          "--committer-queue", "--in-mem-max", "--upload-chunk-size", "--commit-chunk", "--interval", "-i",
          "--finalize", "-f", "--dry-run", "--report", "--log-format", "--log-level", "--temp-dir", "--path-style",
          "--region", "--skip-batch-job-check", "--retry-budget", "--request-timeout", "--connect-timeout",
          "--metrics-port", "--metrics-host", "--metrics-linger", "--max-objects-per-second", "--max-bandwidth",
          "--shard", "--shards",
          "migrate", "finalize"
        ]
      ) {
        assert.include(help, option)
      }
      assert.include(help, "LO_MIGRATE_RECEIVER_THREADS")
      assert.include(help, "(default: 8192)")
      assert.include(help, "AWS_SECRET_ACCESS_KEY")
      assert.include(help, "LO_MIGRATE_RETRY_BUDGET] (default: 300)")
      assert.include(help, "LO_MIGRATE_REQUEST_TIMEOUT] (default: 20)")
      assert.include(help, "LO_MIGRATE_PG_STATEMENT_TIMEOUT] (default: 60)")
      assert.include(help, "LO_MIGRATE_CONNECT_TIMEOUT] (default: 5)")
      assert.include(help, "LO_MIGRATE_METRICS_PORT")
      assert.include(help, "LO_MIGRATE_METRICS_HOST] (default: 127.0.0.1)")
      assert.include(help, "LO_MIGRATE_SHARD]")
      assert.include(help, "LO_MIGRATE_SHARDS]")
    }))
})

describe("--shard", () => {
  const shardOf = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
    Effect.map(run(args, env), ({ calls, exit }) => {
      assert.strictEqual(exit, ExitCode.Ok)
      return migrateConfig(calls).shard
    })

  it.effect("none by default: the whole table", () =>
    Effect.gen(function*() {
      assert.isUndefined(yield* shardOf(base))
      assert.isUndefined(yield* shardOf([...base, "--shards", "4"]))
      const { calls } = yield* run([...base, "--shards", "4"])
      assert.deepStrictEqual(migrateConfig(calls).warnings, [
        "--shards 4 without --shard I/N or JOB_COMPLETION_INDEX: this process takes the whole table"
      ])
    }))

  it.effect("--shard I/N or LO_MIGRATE_SHARD; the command line wins; a matching --shards is fine", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* shardOf([...base, "--shard", "3/4"]), { index: 3, count: 4 })
      assert.deepStrictEqual(yield* shardOf(base, { LO_MIGRATE_SHARD: "1/8" }), { index: 1, count: 8 })
      assert.deepStrictEqual(yield* shardOf([...base, "--shard", "0/2"], { LO_MIGRATE_SHARD: "1/8" }), { index: 0, count: 2 })
      assert.deepStrictEqual(yield* shardOf([...base, "--shard", "2/4", "--shards", "4"]), { index: 2, count: 4 })
    }))

  it.effect("a Kubernetes Indexed Job: JOB_COMPLETION_INDEX of --shards / LO_MIGRATE_SHARDS; --shard wins", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* shardOf(base, { JOB_COMPLETION_INDEX: "5", LO_MIGRATE_SHARDS: "6" }),
        { index: 5, count: 6 }
      )
      assert.deepStrictEqual(yield* shardOf([...base, "--shards", "3"], { JOB_COMPLETION_INDEX: "0" }), { index: 0, count: 3 })
      assert.deepStrictEqual(
        yield* shardOf([...base, "--shard", "1/2"], { JOB_COMPLETION_INDEX: "0", LO_MIGRATE_SHARDS: "2" }),
        { index: 1, count: 2 }
      )
    }))

  it.effect("the configuration block shows the shard and its hash range", () =>
    Effect.gen(function*() {
      const { logs } = yield* run([...base, "--shard", "1/4"])
      assert.strictEqual(logs, "")
      const config = (yield* run([...base, "--shard", "1/4"])).calls[0]!.config as MigratorConfig
      assert.include(render(config), `shard:               1/4 (hash >= 4${"0".repeat(39)}, < 8${"0".repeat(39)})`)
      assert.include(render({ ...config, shard: undefined }), "shard:               none (the whole table)")
    }))
})

describe("status", () => {
  const status = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
    Effect.gen(function*() {
      const seen: Array<StatusConfig> = []
      const handlers: Handlers<never> = {
        ...recording().handlers,
        status: (config) => Effect.sync(() => seen.push(config)).pipe(Effect.as(ExitCode.Ok))
      }
      const exit = yield* runCli(handlers, args)
      const errors = (yield* TestConsole.errorLines).map(String).join("\n")
      return { exit, config: seen[0], errors }
    }).pipe(
      Effect.provide(Layer.mergeAll(NodeServices.layer, ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
    )

  it.effect("needs only the database; shards from --shards or --shard's N; reports repeatable or from the env", () =>
    Effect.gen(function*() {
      const plain = yield* status(["status", "-p", "postgresql://app@db.example/nice"])
      assert.strictEqual(plain.exit, ExitCode.Ok, plain.errors)
      assert.deepStrictEqual([plain.config!.shards, plain.config!.reports], [1, []])
      const many = yield* status(["status", "--shards", "4", "--report", "a.jsonl", "--report", "b.jsonl"], {
        PG_URL: "postgresql://app@db.example/nice"
      })
      assert.deepStrictEqual([many.config!.shards, many.config!.reports], [4, ["a.jsonl", "b.jsonl"]])
      const ofShard = yield* status(["status", "--shard", "3/8"], {
        PG_URL: "postgresql://app@db.example/nice",
        LO_MIGRATE_REPORT: "r.jsonl"
      })
      assert.deepStrictEqual([ofShard.config!.shards, ofShard.config!.reports], [8, ["r.jsonl"]])
    }))

  it.effect("--log-format of status, finalize and verify: the flag (before or after the subcommand) and the env", () =>
    Effect.gen(function*() {
      const pg = { PG_URL: "postgresql://app@db.example/nice" }
      assert.strictEqual((yield* status(["status", "--log-format", "json"], pg)).config!.database.logFormat, "json")
      assert.strictEqual((yield* status(["--log-format", "line", "status"], pg)).config!.database.logFormat, "line")
      assert.strictEqual((yield* status(["status"], { ...pg, LO_MIGRATE_LOG_FORMAT: "json" })).config!.database.logFormat, "json")
      const finalize = yield* run(["finalize", "--log-format", "json"], pg)
      assert.strictEqual((finalize.calls[0]!.config as DatabaseConfig).logFormat, "json")
      const verified: Array<VerifyConfig> = []
      const handlers: Handlers<never> = {
        ...recording().handlers,
        verify: (config) => Effect.sync(() => verified.push(config)).pipe(Effect.as(ExitCode.Ok))
      }
      const exit = yield* runCli(handlers, ["verify", ...base]).pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { LO_MIGRATE_LOG_FORMAT: "json" } })))
      )
      assert.strictEqual(exit, ExitCode.Ok)
      assert.strictEqual(verified[0]!.connection.logFormat, "json")
      const bad = yield* status(["status", "--log-format", "yaml"], pg)
      assert.strictEqual(bad.exit, ExitCode.Usage)
    }).pipe(Effect.provide(NodeServices.layer)))

  it.effect("verify takes --max-objects-per-second and --max-bandwidth (flag or env) as limits on its downloads", () =>
    Effect.gen(function*() {
      const verified: Array<VerifyConfig> = []
      const handlers: Handlers<never> = {
        ...recording().handlers,
        verify: (config) => Effect.sync(() => verified.push(config)).pipe(Effect.as(ExitCode.Ok))
      }
      const exit = yield* runCli(handlers, ["verify", "--deep", "--max-objects-per-second", "50", ...base]).pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { LO_MIGRATE_MAX_BANDWIDTH: "8" } })))
      )
      assert.strictEqual(exit, ExitCode.Ok)
      assert.deepStrictEqual(verifyOptionsOf(verified[0]!).throttle, { objectsPerSecond: 50, bytesPerSecond: 8 * 1024 * 1024 })
      const none = yield* runCli(handlers, ["verify", ...base])
      assert.strictEqual(none, ExitCode.Ok)
      assert.deepStrictEqual(verifyOptionsOf(verified[1]!).throttle, { objectsPerSecond: undefined, bytesPerSecond: undefined })
    }).pipe(Effect.provide(NodeServices.layer)))

  it.effect("contradicting or invalid shard counts are usage errors", () =>
    Effect.gen(function*() {
      const pg = { PG_URL: "postgresql://app@db.example/nice" }
      const both = yield* status(["status", "--shards", "4", "--shard", "1/8"], pg)
      assert.strictEqual(both.exit, ExitCode.Usage)
      assert.include(both.errors, "--shards: says 4 shards but --shard 1/8 says 8; give one of them")
      const zero = yield* status(["status", "--shards", "0"], pg)
      assert.strictEqual(zero.exit, ExitCode.Usage)
      assert.include(zero.errors, "--shards: must be a whole number from 1 to 65536")
      const noDb = yield* status(["status"])
      assert.strictEqual(noDb.exit, ExitCode.Usage)
      assert.include(noDb.errors, "--pg-url")
    }))
})

describe("the PostgreSQL URL as libpq reads it", () => {
  it.effect("an unreadable or missing root certificate or an unsupported parameter is exit 2 naming it, for every command", () =>
    Effect.gen(function*() {
      const cases = [
        ["sslmode=verify-full&sslrootcert=/nonexistent/ca.crt", "sslrootcert: cannot read /nonexistent/ca.crt"],
        // no root certificate at all (HOME has no .postgresql/root.crt): refused as libpq refuses it
        [
          "sslmode=verify-full",
          "sslrootcert: sslmode=verify-full verifies the server's certificate but there is no root certificate: neither " +
          "sslrootcert nor PGSSLROOTCERT is set and the default /nonexistent/.postgresql/root.crt does not exist; give " +
          "sslrootcert=<file>"
        ],
        ["keepalives=on", "keepalives: must be 0 or 1"],
        ["sslmode=verify", "sslmode: unknown value"]
      ] as const
      for (const [query, message] of cases) {
        const url = `postgresql://app:Pw-In-Url@db.example/nice?${query}`
        for (const command of [[], ["finalize"], ["status"], ["verify"]]) {
          const { calls, errors, exit } = yield* run([...command, ...base.slice(2)], { PG_URL: url, HOME: "/nonexistent" })
          assert.strictEqual(exit, ExitCode.Usage, `${command.join(" ")} ${query}`)
          assert.strictEqual(calls.length, 0)
          assert.include(errors, `--pg-url: ${message}`)
          assert.notInclude(errors, "Pw-In-Url")
        }
      }
    }))

  it.effect("sslmode, PGPASSWORD and PGSSLMODE reach the pool's options; the password is in no output", () =>
    Effect.gen(function*() {
      const { calls, errors, exit, logs } = yield* run(base, { PGPASSWORD: "Env-Pw-42", PGSSLMODE: "require" })
      assert.strictEqual(exit, ExitCode.Ok)
      const c = migrateConfig(calls)
      assert.strictEqual(Redacted.value(c.pgOptions.password!), "Env-Pw-42")
      assert.strictEqual(c.pgOptions.passwordSource, "PGPASSWORD")
      assert.strictEqual(c.pgOptions.tls.mode, "require")
      assert.notInclude(errors + logs + render(c) + JSON.stringify(c), "Env-Pw-42")
      assert.include(render(c), "PostgreSQL TLS:      sslmode=require: TLS, certificate not verified")
      assert.include(render(c), "PostgreSQL password: from the PGPASSWORD")
      const plain = yield* run(["-p", "postgresql://app@db.example/nice?sslmode=disable", ...base.slice(2)])
      assert.strictEqual(migrateConfig(plain.calls).pgOptions.tls.first, false)
    }))
})

describe("log format, throttle and metrics options", () => {
  it.effect("--log-format text|json|line, from the flag and from LO_MIGRATE_LOG_FORMAT", () =>
    Effect.gen(function*() {
      assert.strictEqual(migrateConfig((yield* run(base)).calls).logFormat, "text")
      assert.strictEqual(migrateConfig((yield* run([...base, "--log-format", "line"])).calls).logFormat, "line")
      assert.strictEqual(migrateConfig((yield* run(base, { LO_MIGRATE_LOG_FORMAT: "json" })).calls).logFormat, "json")
    }))

  it.effect("closing messages on stderr: text as written; under --log-format json, JSON log lines with their level", () =>
    Effect.gen(function*() {
      const closing = "fatal: the server went away\n  at PostgreSQL postgresql://app@db.example/nice"
      const handlers: Handlers<never> = {
        migrate: () =>
          printStderr(closing).pipe(
            Effect.andThen(printStderr("interrupted; run again to resume", "Warn")),
            Effect.as(ExitCode.Fatal)
          ),
        finalize: () => Effect.succeed(ExitCode.Ok)
      }
      const stderrOf = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
        Effect.gen(function*() {
          const before = (yield* TestConsole.errorLines).length
          const exit = yield* runCli(handlers, args)
          assert.strictEqual(exit, ExitCode.Fatal)
          return (yield* TestConsole.errorLines).slice(before).map(String)
        }).pipe(Effect.provide(Layer.mergeAll(NodeServices.layer, ConfigProvider.layer(ConfigProvider.fromEnv({ env })))))

      const text = yield* stderrOf(base)
      assert.deepStrictEqual(text, [closing, "interrupted; run again to resume"])
      assert.strictEqual(stderrLineUnsafe("SIGINT: stopping.", "Warn", true), "\nSIGINT: stopping.\n")

      for (const json of [yield* stderrOf([...base, "--log-format", "json"]), yield* stderrOf(base, { LO_MIGRATE_LOG_FORMAT: "json" })]) {
        // every line of stderr is one JSON object: the messages are whole, newlines inside escaped
        const lines = json.flatMap((l) => l.split("\n"))
        const records = lines.map((l) => JSON.parse(l) as { readonly message: string; readonly level: string })
        assert.deepStrictEqual(records.map((r) => [r.level, r.message]), [
          ["ERROR", closing],
          ["WARN", "interrupted; run again to resume"]
        ])
        // the process runner's own notices (signals, a crash) follow the command's format
        const notice = JSON.parse(stderrLineUnsafe("SIGINT: stopping.", "Warn", true)) as Record<string, unknown>
        assert.deepStrictEqual([notice["level"], notice["message"]], ["WARN", "SIGINT: stopping."])
        assert.isString(notice["timestamp"])
      }
      yield* stderrOf(base)
      assert.strictEqual(stderrLineUnsafe("interrupted", "Warn"), "interrupted\n")
    }))

  it.effect("a usage error under --log-format json is a JSON log line naming the option; as text otherwise", () =>
    Effect.gen(function*() {
      const bad = [...base, "--storer-threads", "0"]
      const json = yield* run([...bad, "--log-format", "json"])
      assert.strictEqual(json.exit, ExitCode.Usage)
      const lines = json.errors.split("\n").map((l) => JSON.parse(l) as { readonly message: string; readonly level: string })
      assert.deepStrictEqual(lines.map((l) => l.level), ["ERROR"])
      assert.match(lines[0]!.message, /^error: --storer-threads: .*\nRun with --help for the options\.$/)
      // (the console of this test keeps every line: each run's own come after the earlier runs')
      const fromEnv = (yield* run(bad, { LO_MIGRATE_LOG_FORMAT: "json" })).errors.slice(json.errors.length + 1)
      assert.strictEqual((JSON.parse(fromEnv) as { readonly level: string }).level, "ERROR")
      const text = (yield* run(bad)).errors.slice(json.errors.length + fromEnv.length + 2)
      assert.match(text, /^error: --storer-threads: .*\nRun with --help for the options\.$/)
    }))

  it.effect("--max-objects-per-second and --max-bandwidth (MiB/s, fractions allowed), from flags and the environment", () =>
    Effect.gen(function*() {
      const none = migrateConfig((yield* run(base)).calls)
      assert.deepStrictEqual([none.maxObjectsPerSecond, none.maxBytesPerSecond], [undefined, undefined])
      const flags = migrateConfig((yield* run([...base, "--max-objects-per-second", "250", "--max-bandwidth", "0.5"])).calls)
      assert.deepStrictEqual([flags.maxObjectsPerSecond, flags.maxBytesPerSecond], [250, 512 * 1024])
      const fromEnv = migrateConfig(
        (yield* run(base, { LO_MIGRATE_MAX_OBJECTS_PER_SECOND: "12.5", LO_MIGRATE_MAX_BANDWIDTH: "40" })).calls
      )
      assert.deepStrictEqual([fromEnv.maxObjectsPerSecond, fromEnv.maxBytesPerSecond], [12.5, 40 * 1024 * 1024])
    }))

  it.effect("--metrics-port/--metrics-host/--metrics-linger, from flags and from the environment", () =>
    Effect.gen(function*() {
      const none = migrateConfig((yield* run(base)).calls)
      assert.strictEqual(none.metrics, undefined)
      assert.strictEqual(none.metricsLinger, 0)
      const flags = migrateConfig(
        (yield* run([...base, "--metrics-port", "9464", "--metrics-host", "0.0.0.0", "--metrics-linger", "30"])).calls
      )
      assert.deepStrictEqual(flags.metrics, { host: "0.0.0.0", port: 9464 })
      assert.strictEqual(flags.metricsLinger, 30)
      const fromEnv = migrateConfig((yield* run(base, { LO_MIGRATE_METRICS_PORT: "0", LO_MIGRATE_METRICS_LINGER: "5" })).calls)
      assert.deepStrictEqual(fromEnv.metrics, { host: "127.0.0.1", port: 0 })
      assert.strictEqual(fromEnv.metricsLinger, 5)
    }))
})

describe("invalid values are rejected before anything connects (exit 2, option named)", () => {
  const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>, Record<string, string>, RegExp]> = [
    ["zero threads", [...base, "--storer-threads", "0"], {}, /--storer-threads/],
    ["negative queue", [...base, "--receiver-queue", "-5"], {}, /--receiver-queue/],
    ["non-numeric", [...base, "--committer-threads", "many"], {}, /--committer-threads/],
    ["zero in-mem-max", [...base, "--in-mem-max", "0"], {}, /--in-mem-max/],
    ["part size under 5 MiB", [...base, "--upload-chunk-size", "5119"], {}, /--upload-chunk-size.*5120 KiB/],
    ["zero commit chunk", [...base, "--commit-chunk", "0"], {}, /--commit-chunk/],
    ["zero interval", [...base, "-i", "0"], {}, /--interval/],
    ["zero in-flight cap", [...base, "--max-in-flight", "0"], {}, /--max-in-flight/],
    ["zero in-memory cap", [...base, "--max-in-memory", "0"], {}, /--max-in-memory/],
    ["zero grace period", [...base, "--grace-period", "0"], {}, /--grace-period/],
    ["zero retry budget", [...base, "--retry-budget", "0"], {}, /--retry-budget/],
    ["zero request timeout", [...base, "--request-timeout", "0"], {}, /--request-timeout/],
    ["unparsable pg url", ["-p", "not a url", ...base.slice(2)], {}, /--pg-url.*not a valid URL/],
    ["wrong pg scheme", ["-p", "mysql://x@y/z", ...base.slice(2)], {}, /--pg-url.*postgres/],
    ["unparsable s3 url", [...base.slice(0, 2), "-u", "rgw example", "-b", "b"], {}, /--s3-url/],
    ["missing pg url", base.slice(2), {}, /--pg-url.*required.*PG_URL/],
    ["missing bucket", base.slice(0, 4), {}, /--bucket.*required/],
    ["key without secret", [...base, "-k", "AKIA"], {}, /--access-key|--secret-key/],
    ["unknown option", [...base, "--bogus"], {}, /--bogus/],
    ["bad log format", [...base, "--log-format", "xml"], {}, /--log-format/],
    ["zero objects per second", [...base, "--max-objects-per-second", "0"], {}, /--max-objects-per-second.*positive/],
    ["negative bandwidth", [...base, "--max-bandwidth", "-2"], {}, /--max-bandwidth/],
    ["metrics port out of range", [...base, "--metrics-port", "65536"], {}, /--metrics-port.*0 to 65535/],
    ["negative metrics linger", [...base, "--metrics-linger", "-1"], {}, /--metrics-linger/],
    ["invalid env value", base, { LO_MIGRATE_STORER_THREADS: "0" }, /--storer-threads/],
    ["invalid log level from env", base, { LO_MIGRATE_LOG_LEVEL: "chatty" }, /--log-level/],
    ["shard index = count", [...base, "--shard", "4/4"], {}, /--shard: I in I\/N must be a whole number from 0 to 3/],
    ["shard without count", [...base, "--shard", "3"], {}, /--shard: must be I\/N/],
    ["zero shards", [...base, "--shard", "0/0"], {}, /--shard: N in I\/N must be a whole number from 1 to 65536/],
    ["--shards contradicts --shard", [...base, "--shard", "1/4", "--shards", "8"], {}, /--shards: says 8 shards but --shard 1\/4 says 4; give one of them/],
    ["zero --shards", [...base, "--shards", "0"], { JOB_COMPLETION_INDEX: "0" }, /--shards: must be a whole number/],
    ["Indexed Job without a shard count", base, { JOB_COMPLETION_INDEX: "2" }, /--shards: JOB_COMPLETION_INDEX=2 is set/],
    ["completion index out of range", [...base, "--shards", "4"], { JOB_COMPLETION_INDEX: "4" }, /JOB_COMPLETION_INDEX: must be a whole number from 0 to 3/],
    ["two reports for migrate", [...base, "--report", "a.jsonl", "--report", "b.jsonl"], {}, /--report: is given 2 times/],
    ["bad shard from env", base, { LO_MIGRATE_SHARD: "1/x" }, /--shard: N in I\/N/]
  ]
  for (const [name, args, env, message] of cases) {
    it.effect(name, () =>
      Effect.gen(function*() {
        const { exit, calls, errors, logs } = yield* run(args, env)
        assert.strictEqual(exit, ExitCode.Usage)
        assert.strictEqual(calls.length, 0, "no handler may run")
        assert.match(`${errors}\n${logs}`, message)
      }))
  }

  it.effect("a rejected password never appears in the message", () =>
    Effect.gen(function*() {
      const { exit, errors, logs } = yield* run(["-p", "ftp://u:hunter2@h/db", ...base.slice(2)])
      assert.strictEqual(exit, ExitCode.Usage)
      assert.notInclude(`${errors}\n${logs}`, "hunter2")
    }))
})

import { BodyCut, MalformedHash, MissingLargeObject, RowFailed, SizeMismatch } from "@lo-migrate/core"
import { S3ObjectStore } from "@lo-migrate/s3"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Fiber, FileSystem, Option, Redacted } from "effect"
import { resolve } from "../src/Config.ts"
import { resolveOtlp } from "../src/ConfigOtlp.ts"
import { render } from "../src/ConfigRender.ts"
import { redactUrl } from "../src/ConfigValues.ts"
import { readerOptionsOf, s3StoreConfigOf } from "../src/Live.ts"
import { FailureReport, formatReportLine } from "../src/Report.ts"
import { makeSignalController } from "../src/Shutdown.ts"
import { rawOptions } from "./support.ts"

const raw = rawOptions

const noEnv = ConfigProvider.layer(ConfigProvider.fromEnv({ env: {} }))

describe("live wiring", () => {
  it.effect("the reader digests parts for exactly the objects the store uploads in parts, at its part size", () =>
    Effect.gen(function*() {
      const config = yield* resolve(raw()) // --upload-chunk-size 5120 (5 MiB), --in-mem-max 1024
      const MiB = 1024 * 1024
      assert.strictEqual(s3StoreConfigOf(config).partSize, 5 * MiB)
      const reader = readerOptionsOf(config)
      assert.strictEqual(reader.inMemMax, MiB)
      assert.strictEqual(reader.tempDir, config.tempDir)
      // the cut the store announces to the reader (BodyCut), from the same configuration
      const cut = yield* Effect.provide(Effect.service(BodyCut), S3ObjectStore.bodyCut(s3StoreConfigOf(config)))
      assert.isUndefined(cut.partSizeFor(5 * MiB)) // one PutObject
      assert.strictEqual(cut.partSizeFor(5 * MiB + 1), 5 * MiB)
      assert.strictEqual(cut.partSizeFor(60_000 * MiB), 6 * MiB) // grown so that 10,000 parts suffice
    }).pipe(Effect.provide(noEnv)))
})

describe("configuration block", () => {
  it.effect("shows every setting and no secret", () =>
    Effect.gen(function*() {
      const config = yield* resolve(raw())
      const text = render(config)
      assert.notInclude(text, "hunter2")
      assert.include(text, "postgresql://app:<redacted>@db.example:5433/nice?sslmode=require&password=<redacted>")
      assert.include(text, "https://rgw.example/")
      assert.include(text, "binaries")
      assert.include(text, "access key AKIAEXAMPLE, secret key <redacted> (from the command line)")
      assert.match(text, /storer threads:\s+5/)
      assert.match(text, /max\. in-memory size: 1024 KiB/)
      assert.match(text, /upload part size:\s+5120 KiB/)
      assert.match(text, /DB commit chunk size: 100/)
      // the config object itself stringifies without secrets (Redacted)
      assert.notInclude(JSON.stringify(config), "hunter2")
      assert.notInclude(String(config.pgUrl), "hunter2")
    }).pipe(Effect.provide(noEnv)))

  it.effect("names the default credential chain when no keys are given", () =>
    Effect.gen(function*() {
      const config = yield* resolve(raw({ accessKey: Option.none(), secretKey: Option.none() }))
      assert.include(render(config), "AWS default credential chain")
      assert.strictEqual(config.secretSource, "default chain")
    }).pipe(Effect.provide(noEnv)))

  it("redactUrl keeps everything but secrets", () => {
    assert.strictEqual(redactUrl("postgres://u@h/db"), "postgres://u@h/db")
    assert.strictEqual(redactUrl("postgres://u:p@h/db"), "postgres://u:<redacted>@h/db")
    assert.notInclude(redactUrl("postgres://u@h/db?password=zz&sslkey=k"), "zz")
    assert.notInclude(redactUrl("::not a url hunter2"), "hunter2")
  })

  it.effect("the 5 MiB minimum is exact", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* resolve(raw({ uploadChunkSize: 5120 }))).uploadChunkSize, 5 * 1024 * 1024)
      const exit = yield* Effect.exit(resolve(raw({ uploadChunkSize: 5119 })))
      assert.isTrue(Exit.isFailure(exit))
    }).pipe(Effect.provide(noEnv)))
})

describe("failure report", () => {
  const failures = [
    new RowFailed({ hash: "392007d934dd54600110b683f5e52aeeedb1    ", oid: 16401, reason: new MalformedHash() }),
    new RowFailed({
      hash: "d0706a2d42b415eaf546865acf6287fc8ac1f0e5",
      oid: null,
      reason: new MissingLargeObject({ oid: 4242 })
    }),
    new RowFailed({
      hash: "a0706a2d42b415eaf546865acf6287fc8ac1f0e5",
      oid: 77,
      reason: new SizeMismatch({ expected: 299, actual: 300 })
    })
  ]

  it("one JSON object per line with hash, oid, reason and detail", () => {
    const line = formatReportLine(failures[2]!)
    assert.isTrue(line.endsWith("\n"))
    assert.deepStrictEqual(JSON.parse(line), {
      hash: "a0706a2d42b415eaf546865acf6287fc8ac1f0e5",
      oid: 77,
      reason: "SizeMismatch",
      detail: "size mismatch: row says 299 bytes, large object has 300"
    })
  })

  it.effect("the file layer truncates, then appends every failure", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const path = `${dir}/report.jsonl`
      yield* fs.writeFileString(path, "stale line from an earlier run\n")
      yield* Effect.gen(function*() {
        const report = yield* FailureReport
        yield* Effect.forEach(failures, (f) => report.record(f), { concurrency: 3, discard: true })
      }).pipe(Effect.provide(FailureReport.file(path)))
      const lines = (yield* fs.readFileString(path)).trimEnd().split("\n").map((l) => JSON.parse(l))
      assert.strictEqual(lines.length, 3)
      assert.deepStrictEqual(lines.map((l) => l.reason).sort(), ["MalformedHash", "MissingLargeObject", "SizeMismatch"])
      const padded = lines.find((l) => l.reason === "MalformedHash")
      assert.strictEqual(padded.hash, "392007d934dd54600110b683f5e52aeeedb1    ")
      assert.strictEqual(padded.oid, 16401)
      assert.strictEqual(lines.find((l) => l.reason === "MissingLargeObject").oid, null)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)))

  it.effect("an unwritable report path fails when the layer is built", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Effect.provide(Effect.void, FailureReport.file("/nonexistent-dir/report.jsonl"))
      )
      assert.isTrue(Exit.isFailure(exit))
    }).pipe(Effect.provide(NodeServices.layer)))
})

describe("signals", () => {
  const harness = () => {
    const events: Array<string> = []
    const controller = makeSignalController({
      interrupt: () => events.push("interrupt"),
      armDeadline: () => events.push("deadline"),
      exitNow: () => events.push("exit"),
      notify: (m) => events.push(`notify:${m.split(":")[0]}`)
    })
    return { events, controller }
  }

  it.effect("inside graceful: the first signal only requests a stop; the second interrupts; the third exits", () =>
    Effect.gen(function*() {
      const { events, controller } = harness()
      const { service } = controller
      const seen = yield* service.graceful(Effect.gen(function*() {
        assert.isFalse(yield* service.isRequested)
        controller.onSignal("SIGINT")
        yield* service.requested // completes
        return [...events]
      }))
      assert.deepStrictEqual(seen, ["notify:SIGINT"])
      assert.isTrue(yield* service.isRequested)
      controller.onSignal("SIGTERM")
      assert.deepStrictEqual(events, ["notify:SIGINT", "notify:SIGTERM again", "interrupt", "deadline"])
      controller.onSignal("SIGINT")
      assert.strictEqual(events.at(-1), "exit")
    }))

  it.effect("outside graceful the first signal interrupts at once", () =>
    Effect.gen(function*() {
      const { events, controller } = harness()
      controller.onSignal("SIGTERM")
      assert.deepStrictEqual(events, ["notify:SIGTERM", "interrupt"])
      assert.isTrue(yield* controller.service.isRequested)
    }))

  it.effect("a graceful section that ends on the stop request itself: the signal still only requests a stop", () =>
    Effect.gen(function*() {
      const { events, controller } = harness()
      const { service } = controller
      // e.g. --metrics-linger: waits for the request inside graceful; completing `requested` may resume it (and end
      // the section) before onSignal has decided what to do
      const fiber = yield* Effect.forkChild(service.graceful(service.requested))
      yield* Effect.yieldNow
      controller.onSignal("SIGTERM")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(events, ["notify:SIGTERM"])
    }))

  it.effect("graceful sections nest and end", () =>
    Effect.gen(function*() {
      const { events, controller } = harness()
      yield* controller.service.graceful(controller.service.graceful(Effect.void))
      controller.onSignal("SIGINT")
      assert.deepStrictEqual(events, ["notify:SIGINT", "interrupt"])
    }))
})

describe("OTLP metrics export from the OTEL_* environment", () => {
  const otlpFrom = (env: Record<string, string>) =>
    resolveOtlp.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
  const failureOf = (env: Record<string, string>) =>
    Effect.flip(otlpFrom(env)).pipe(Effect.map((e) => ({ option: e.option, message: e.message })))

  it.effect("off without an endpoint; an endpoint turns it on with the specification's defaults", () =>
    Effect.gen(function*() {
      assert.isUndefined(yield* otlpFrom({}))
      const on = (yield* otlpFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }))!
      assert.strictEqual(on.url.toString(), "http://collector:4318/v1/metrics")
      assert.deepStrictEqual(
        [on.protocol, on.compression, on.intervalMillis, on.timeoutMillis, on.serviceName],
        ["http/protobuf", "none", 60_000, 10_000, "lo-migrate"]
      )
      assert.deepStrictEqual(Redacted.value(on.headers), {})
      // a base path is kept, the signal's path appended
      assert.strictEqual((yield* otlpFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://c.example/otlp" }))!.url.toString(), "https://c.example/otlp/v1/metrics")
      // OTEL_METRICS_EXPORTER=otlp alone: the collector's default address
      assert.strictEqual((yield* otlpFrom({ OTEL_METRICS_EXPORTER: "otlp" }))!.url.toString(), "http://localhost:4318/v1/metrics")
    }))

  it.effect("the metrics-specific variables win over the general ones; the specific endpoint is used as given", () =>
    Effect.gen(function*() {
      const c = (yield* otlpFrom({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://general:4318",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://specific:9999/custom",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_COMPRESSION: "gzip",
        OTEL_EXPORTER_OTLP_TIMEOUT: "5000",
        OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: "2500",
        OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20general,x-a=1",
        OTEL_EXPORTER_OTLP_METRICS_HEADERS: "authorization=Bearer%20specific",
        OTEL_METRIC_EXPORT_INTERVAL: "15000",
        OTEL_SERVICE_NAME: "migration-7"
      }))!
      assert.strictEqual(c.url.toString(), "http://specific:9999/custom")
      assert.deepStrictEqual(
        [c.protocol, c.compression, c.timeoutMillis, c.intervalMillis, c.serviceName],
        ["http/json", "gzip", 2500, 15_000, "migration-7"]
      )
      assert.deepStrictEqual(Redacted.value(c.headers), { authorization: "Bearer specific", "x-a": "1" })
      // the headers may carry a token: redacted when printed
      assert.notInclude(String(c.headers), "specific")
    }))

  it.effect("OTEL_SDK_DISABLED=true and OTEL_METRICS_EXPORTER=none turn it off", () =>
    Effect.gen(function*() {
      assert.isUndefined(yield* otlpFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }))
      assert.isUndefined(yield* otlpFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_METRICS_EXPORTER: "none" }))
    }))

  it.effect("a bad value is a usage error naming the variable, and never shows a header's value", () =>
    Effect.gen(function*() {
      const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }
      assert.deepInclude(yield* failureOf({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }), {
        option: "OTEL_EXPORTER_OTLP_PROTOCOL"
      })
      assert.include((yield* failureOf({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).message, "http/protobuf or http/json")
      assert.deepInclude(yield* failureOf({ OTEL_METRICS_EXPORTER: "prometheus" }), { option: "OTEL_METRICS_EXPORTER" })
      assert.deepInclude(yield* failureOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "ftp://c" }), { option: "OTEL_EXPORTER_OTLP_ENDPOINT" })
      assert.deepInclude(yield* failureOf({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "not a url" }), {
        option: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
      })
      assert.deepInclude(yield* failureOf({ ...endpoint, OTEL_METRIC_EXPORT_INTERVAL: "10s" }), { option: "OTEL_METRIC_EXPORT_INTERVAL" })
      assert.deepInclude(yield* failureOf({ ...endpoint, OTEL_EXPORTER_OTLP_COMPRESSION: "zstd" }), { option: "OTEL_EXPORTER_OTLP_COMPRESSION" })
      for (const bad of ["Bearer-tok3n-secret", "authorization=Bearer%2tok3n-secret", "bad header=tok3n-secret"]) {
        const e = yield* failureOf({ ...endpoint, OTEL_EXPORTER_OTLP_HEADERS: bad })
        assert.strictEqual(e.option, "OTEL_EXPORTER_OTLP_HEADERS")
        assert.notInclude(e.message, "tok3n")
      }
    }))

  it.effect("the configuration block shows the endpoint, protocol and interval, without a password", () =>
    Effect.gen(function*() {
      const config = yield* resolve(raw()).pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({
          env: { OTEL_EXPORTER_OTLP_ENDPOINT: "https://user:hunter3@collector.example:4318", OTEL_METRIC_EXPORT_INTERVAL: "30000" }
        })))
      )
      const text = render(config)
      assert.include(text, "OTLP metrics:        https://user:<redacted>@collector.example:4318/v1/metrics (http/protobuf, every 30 s)")
      assert.notInclude(text, "hunter3")
      assert.include(render(yield* resolve(raw()).pipe(Effect.provide(noEnv))), "OTLP metrics:        none")
    }))
})

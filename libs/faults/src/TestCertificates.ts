/**
 * A throwaway certificate authority and a server certificate it signed for 127.0.0.1 (and `localhost`), made with
 * `openssl` in a temp directory for the duration of a scope (removed when it closes): for the proxy's TLS front
 * (`FaultProxy.make({ tls })`), with `caFile` for the client that should trust it (`NODE_EXTRA_CA_CERTS`). EC keys
 * (P-256), valid for one day.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export class TestCertificatesError extends Schema.TaggedError<TestCertificatesError>()("TestCertificatesError", {
  detail: Schema.String
}) {
  override get message() {
    return `test certificates: ${this.detail} (the TLS tests need openssl on the PATH; Debian: apt-get install openssl)`
  }
}

export interface TestCertificates {
  /** The temp directory (removed with the scope). */
  readonly dir: string
  /** The CA's certificate, PEM, and its file. */
  readonly ca: string
  readonly caFile: string
  /** The server's certificate (signed by the CA; subjectAltName IP:127.0.0.1, DNS:localhost) and key, PEM. */
  readonly cert: string
  readonly key: string
}

const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

const openssl = (dir: string, args: ReadonlyArray<string>) =>
  Effect.try({
    try: () => void execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 }),
    catch: (cause) =>
      new TestCertificatesError({
        detail: `openssl ${args[0]} failed: ${String((cause as { stderr?: unknown }).stderr ?? cause).trim()}`
      })
  })

/** Makes the CA and the server certificate in a temp directory of the current scope. */
export const makeTestCertificates: Effect.Effect<TestCertificates, TestCertificatesError, Scope.Scope> =
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "lo-migrate-tls-"))),
      (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
    )
    yield* openssl(dir, ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=lo-migrate test CA"])
    yield* openssl(dir, ["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"])
    writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    yield* openssl(dir, [
      "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
      "-out", "server.pem", "-days", "1", "-extfile", "server.ext"
    ])
    const read = (name: string) => readFileSync(join(dir, name), "utf8")
    return { dir, ca: read("ca.pem"), caFile: join(dir, "ca.pem"), cert: read("server.pem"), key: read("server.key") }
  })

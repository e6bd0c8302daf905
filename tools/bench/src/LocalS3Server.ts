/**
 * A stand-in S3 server in a child process, for measuring the client alone: every request is answered 200 at once once
 * its body is read (a GetBucketVersioning with no status, anything else with an empty body), so what the client costs is
 * not mixed with the server's work, which runs in another process. Killed when the scope closes.
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"

/** A child process that answers every request 200 at once (a GetBucketVersioning with no status). */
export const localServer = Effect.acquireRelease(
  Effect.callback<{ readonly endpoint: string; readonly kill: () => void }>((resume) => {
    const code = `
      const http = require("node:http")
      const versioning = '<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
      const s = http.createServer((req, res) => {
        req.on("data", () => {})
        req.on("end", () => {
          if (req.method === "GET") { res.writeHead(200, { "content-type": "application/xml" }); res.end(versioning); return }
          res.writeHead(200, { etag: '"0"', "content-length": "0" }); res.end()
        })
      })
      s.keepAliveTimeout = 60000
      s.listen(0, "127.0.0.1", () => console.log(s.address().port))`
    const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] })
    createInterface({ input: child.stdout! }).once("line", (port) =>
      resume(Effect.succeed({ endpoint: `http://127.0.0.1:${port}`, kill: () => void child.kill() })))
  }),
  (s) => Effect.sync(s.kill)
)


/**
 * libpq's password file (`~/.pgpass`, or `PGPASSFILE` / the URL's `passfile`): lines of
 * `hostname:port:database:username:password`, `#` comments, `*` matching anything in the first four fields, `\`
 * escaping `:` and `\`; the first matching line wins. As libpq does, a file whose permissions allow group or world
 * access is ignored with a warning, and a missing file is no error (it just gives no password).
 */
import * as Effect from "effect/Effect"
import { readFileSync, statSync } from "node:fs"

/** What a connection is for: the four fields a line must match (libpq's defaults already applied). */
export interface PgPassTarget {
  readonly host: string
  readonly port: string
  readonly database: string
  readonly user: string
}

/**
 * Whether `field` (the start of the rest of a line) matches `value`; returns the rest after the field's `:`, or
 * `undefined`. A field of exactly `*` matches anything; `\x` stands for `x`.
 */
const matchField = (line: string, value: string): string | undefined => {
  if (line.startsWith("*:")) return line.slice(2)
  let i = 0
  let j = 0
  while (i < line.length) {
    let c = line[i]!
    if (c === ":") return j === value.length ? line.slice(i + 1) : undefined
    if (c === "\\" && i + 1 < line.length) {
      i++
      c = line[i]!
    }
    if (value[j] !== c) return undefined
    i++
    j++
  }
  return undefined
}

/** The password field: up to the first unescaped `:` (or the end), with `\` escapes removed. */
const passwordOf = (rest: string): string => {
  let out = ""
  for (let i = 0; i < rest.length; i++) {
    let c = rest[i]!
    if (c === ":") break
    if (c === "\\" && i + 1 < rest.length) {
      i++
      c = rest[i]!
    }
    out += c
  }
  return out
}

/** The password of the first line matching `target`, as libpq reads the file's text; `undefined` if none does. */
export const lookup = (text: string, target: PgPassTarget): string | undefined => {
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw
    if (line === "" || line.startsWith("#")) continue
    let rest: string | undefined = line
    for (const value of [target.host, target.port, target.database, target.user]) {
      rest = matchField(rest, value)
      if (rest === undefined) break
    }
    if (rest !== undefined) return passwordOf(rest)
  }
  return undefined
}

/** The host name a password file line is matched against: a Unix socket directory (or none) counts as `localhost`. */
export const targetHost = (host: string | undefined): string =>
  host === undefined || host === "" || host.startsWith("/") ? "localhost" : host

export interface PgPassResult {
  readonly password: string | undefined
  /** Set when the file was ignored (not a plain file, or readable by group or others). */
  readonly warning: string | undefined
}

/**
 * Reads the file at `path` and looks `target` up. A missing file gives no password and no warning; one libpq would
 * refuse (not a plain file, mode wider than 0600) gives no password and a warning naming the path and its mode.
 * Fails with the file's error text when it exists but cannot be read.
 */
export const readLookup = (path: string, target: PgPassTarget): Effect.Effect<PgPassResult, string> =>
  Effect.gen(function*() {
    const stat = yield* Effect.try({
      try: () => statSync(path, { throwIfNoEntry: false }),
      catch: (e) => e instanceof Error ? e.message : String(e)
    })
    if (stat === undefined) return { password: undefined, warning: undefined }
    if (!stat.isFile()) {
      return { password: undefined, warning: `password file ${path} is not a plain file; it is ignored (as libpq does)` }
    }
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, "0")
      return {
        password: undefined,
        warning: `password file ${path} has group or world access (mode ${mode}); it is ignored, as libpq does: ` +
          `chmod 0600 ${path}`
      }
    }
    const text = yield* Effect.try({
      try: () => readFileSync(path, "utf8"),
      catch: (e) => e instanceof Error ? e.message : String(e)
    })
    return { password: lookup(text, target), warning: undefined }
  })

/**
 * One option's value checked: `UsageError` (exit code 2, naming the option), whole numbers in range, required values,
 * URLs (parsed, their scheme and host checked) and the printable form of a URL with its secrets replaced.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

/** Bad usage or configuration: exit code 2, and the message names the option. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  option: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `${this.option}: ${this.detail}`
  }
}

export const positive = (option: string, value: number, max = Number.MAX_SAFE_INTEGER) =>
  Number.isSafeInteger(value) && value >= 1 && value <= max
    ? Effect.succeed(value)
    : Effect.fail(new UsageError({ option, detail: `must be a whole number from 1 to ${max}, got ${value}` }))

export const required = <A>(option: string, envName: string, value: Option.Option<A>) =>
  Option.match(value, {
    onNone: () => Effect.fail(new UsageError({ option, detail: `is required (or set ${envName})` })),
    onSome: Effect.succeed
  })

/**
 * `raw` parsed, its scheme one of `protocols` and (unless `hostOptional`: a PostgreSQL URL, whose host may come from
 * its `host` parameter, `PGHOST` or libpq's default socket) a host in it.
 */
export const parseUrl = (
  option: string,
  raw: string,
  protocols: ReadonlyArray<string>,
  shown: string,
  hostOptional = false
) =>
  Effect.suspend(() => {
    const url = URL.canParse(raw) ? new URL(raw) : undefined
    if (url === undefined) {
      return Effect.fail(new UsageError({ option, detail: `is not a valid URL: ${shown}` }))
    }
    if (!protocols.includes(url.protocol)) {
      return Effect.fail(
        new UsageError({ option, detail: `must start with ${protocols.map((p) => `${p}//`).join(" or ")}, got ${shown}` })
      )
    }
    if (url.hostname === "" && !hostOptional) {
      return Effect.fail(new UsageError({ option, detail: `has no host: ${shown}` }))
    }
    return Effect.succeed(url)
  })

/** A URL with its password (and any `password` query parameter) replaced, safe to print. */
export const redactUrl = (raw: string): string => {
  if (!URL.canParse(raw)) return "<unparsable URL, not shown>"
  const url = new URL(raw)
  if (url.password !== "") url.password = "<redacted>"
  for (const key of [...url.searchParams.keys()]) {
    if (/pass|secret|key|token/i.test(key)) url.searchParams.set(key, "<redacted>")
  }
  return decodeURIComponent(url.toString())
}

export const hasPassword = (url: URL) =>
  url.password !== "" || [...url.searchParams.keys()].some((k) => /^password$/i.test(k))

/** A parse `Result` as an Effect, its failure a `UsageError` about `option`. */
export const fromResult = (option: string) => <A>(result: Result.Result<A, string>) =>
  Result.isSuccess(result)
    ? Effect.succeed(result.success)
    : Effect.fail(new UsageError({ option, detail: result.failure }))

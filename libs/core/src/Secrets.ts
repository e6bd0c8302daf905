/**
 * Keeping secrets out of text: every error message, log line and report that may quote a driver's or an SDK's words
 * goes through `scrubSecrets` with the secrets of its connection (a URL with a password, an S3 secret key).
 */
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

/** What a removed secret is replaced with. */
const redactedMark = "<redacted>"

/**
 * Replaces every occurrence of the given secrets (and their percent-encoded / decoded forms) in `text` with
 * `<redacted>`. Secrets of any length are removed: a password of "x" must not survive either.
 */
export const scrubSecrets = (
  text: string,
  secrets: ReadonlyArray<string | Redacted.Redacted<string>>
): string => {
  const variants = new Set<string>()
  for (const given of secrets) {
    const secret = Redacted.isRedacted(given) ? Redacted.value(given) : given
    if (secret.length === 0) continue
    variants.add(secret)
    variants.add(encodeURIComponent(secret))
    const decoded = safeDecode(secret)
    if (decoded !== undefined) variants.add(decoded)
  }
  let out = text
  // longest first, so that a URL containing the password is replaced as a whole
  for (const v of [...variants].filter((v) => v.length > 0).sort((a, b) => b.length - a.length)) {
    out = out.split(v).join(redactedMark)
  }
  return out
}

/** `decodeURIComponent`, or `undefined` when `text` is not valid percent-encoding. */
const safeDecode = (text: string): string | undefined => Option.getOrUndefined(decodeOption(text))
const decodeOption = Option.liftThrowable(decodeURIComponent)

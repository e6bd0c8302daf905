/**
 * Turns whatever the AWS SDK (or Node's sockets, or the local file system) threw into a `StorageError` that says
 * whether repeating the operation may help, names the operation, bucket and key, and never carries a secret.
 */
import { isTransientNetworkCode, scrubSecrets, StorageError } from "@lo-migrate/core"
import * as Redacted from "effect/Redacted"
import { tlsCertificateProblem } from "./TlsCertificateErrors.ts"

export interface S3ErrorContext {
  readonly operation: string
  readonly bucket: string
  readonly key?: string | undefined
  /** Values scrubbed from every text that goes into the error (the secret access key). */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string> | string> | undefined
}

/**
 * Codes by which the server asks the client to send less (the store stage then lowers its concurrency). Not
 * `RequestTimeTooSkewed` (a clock problem) nor 5xx codes of a failing server (`InternalError`). `ServiceUnavailable`
 * is S3's "reduce your request rate", and the name the SDK gives a `503 Slow Down` answered to a HEAD (no body, so no
 * `SlowDown` code).
 */
const throttleCodes = new Set([
  "SlowDown",
  "ServiceUnavailable",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded"
])

/** S3 error codes that mean "slow down" or "try again later". */
const retryableCodes = new Set([
  ...throttleCodes,
  "ProvisionedThroughputExceededException",
  "RequestTimeout",
  "RequestTimeoutException",
  "ConditionalRequestConflict", // AWS: a concurrent conditional write to the same key (HTTP 409)
  "IncompleteBody", // fewer bytes arrived than Content-Length announced: the connection broke mid-body
  "ExpiredToken", // temporary credentials expired between signing and arrival; the default chain refreshes them
  "RequestExpired",
  "RequestTimeTooSkewed", // the SDK corrects its clock offset from the failed response; the next attempt is signed right
  "InternalError",
  "TimeoutError", // @smithy/node-http-handler: connection or socket timeout
  "AbortError" // the request was aborted (an interrupted fiber); a repeat is a new request
])

/**
 * Codes of a body that arrived corrupted: what the server received does not match the Content-MD5 or the signed
 * SHA-256 sent with it. The bytes were verified before the upload, so sending them again is safe and right.
 */
const corruptionCodes = new Set(["BadDigest", "XAmzContentSHA256Mismatch"])

/** Whether the server rejected the body as corrupted in transit. */
export const isCorruptionS3Error = (facts: S3ErrorFacts): boolean =>
  facts.name !== undefined && corruptionCodes.has(facts.name)

/** Whether the server asked to slow down: a throttling code (see `throttleCodes`), or HTTP 429. */
export const isThrottleS3Error = (facts: S3ErrorFacts): boolean =>
  (facts.name !== undefined && throttleCodes.has(facts.name)) || facts.httpStatus === 429


/** Codes whose meaning deserves a plainer explanation than the server's (Ceph sends no message at all). */
const explanations: Record<string, string> = {
  NoSuchBucket: "the bucket does not exist",
  // Ceph and AWS answer the same to a user without the permission and to a bucket policy that denies the request
  AccessDenied: "access denied: these credentials may not send this request to this bucket or key, by their user's " +
    "permissions or by the bucket's policy (the server does not say which rule refused it)",
  Forbidden: "access denied: check the credentials (access key id and secret key) and the bucket's permissions",
  InvalidAccessKeyId: "the access key id is not known to the server",
  // The server only says that its signature of the request differs from the client's; not which input differs.
  SignatureDoesNotMatch: "the server computed a different signature for this request than the client sent; " +
    "causes include a wrong secret access key, a clock skew, a header the client and server encode differently, " +
    "or a proxy altering the request (the server does not say which)",
  BadDigest: "the body does not match its Content-MD5 (corrupted while read or sent); the server rejected it",
  InvalidDigest: "the Content-MD5 header is not a valid MD5",
  XAmzContentSHA256Mismatch: "the body does not hash to its SHA-256 (x-amz-content-sha256); the server rejected it",
  RequestTimeTooSkewed: "the server refused the time the request was signed with (this host's clock): the two " +
    "clocks differ by more than the server allows; the client now signs with the server's time (its Date header)",
  QuotaExceeded: "the bucket's or its owner's quota (of objects or bytes) is reached: the server stores nothing " +
    "more until an administrator raises it (Ceph: radosgw-admin quota set)",
  PreconditionFailed: "a precondition (If-None-Match) failed",
  NoSuchUpload: "the multipart upload does not exist (aborted or completed)",
  EntityTooSmall: "a multipart part is smaller than the server's minimum",
  MissingContentLength: "the request has no Content-Length",
  CredentialsProviderError: "no S3 credentials were found (configure an access key or the AWS default chain)",
  ENOTFOUND: "the endpoint's host name does not resolve",
  ENOENT: "a local body file is missing"
}

/** What a 403 to a request signed far from the server's time says: the two times compared, and what follows. */
const skewExplanation = (facts: S3ErrorFacts): string =>
  `the request was signed at ${facts.signedAt} (x-amz-date: this host's clock) and the server's clock said ` +
  `${facts.serverDate} (Date): ${Math.round((signingSkewMillis(facts) ?? 0) / 60_000)} minutes apart; S3 servers ` +
  "refuse a request signed more than 15 minutes from their clock, so the refusal may be for its time; the client " +
  "now signs with the server's time"

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

const stringField = (u: Record<string, unknown>, field: string): string | undefined => {
  const v = u[field]
  return typeof v === "string" && v.length > 0 ? v : undefined
}

/** The facts an error carries, whatever threw it. */
export interface S3ErrorFacts {
  /** S3 error code (`NoSuchBucket`, `SlowDown`, ...) or the error's name. */
  readonly name: string | undefined
  /** Node's `code` (`ECONNRESET`, ...), when there is one. */
  readonly code: string | undefined
  readonly httpStatus: number | undefined
  readonly message: string | undefined
  readonly requestId: string | undefined
  /** The request's `x-amz-date`: the time it was signed with (this host's clock, plus the SDK's offset). */
  readonly signedAt?: string | undefined
  /** The answer's `Date` header: the server's clock. */
  readonly serverDate?: string | undefined
}

export const s3ErrorFacts = (error: unknown): S3ErrorFacts => {
  if (!isRecord(error)) {
    return { name: undefined, code: undefined, httpStatus: undefined, message: String(error), requestId: undefined }
  }
  const metadata = isRecord(error["$metadata"]) ? error["$metadata"] : {}
  const status = metadata["httpStatusCode"]
  const cause = isRecord(error["cause"]) ? error["cause"] : undefined
  const response = isRecord(error["$response"]) ? error["$response"] : undefined
  const headers = response !== undefined && isRecord(response["headers"]) ? response["headers"] : undefined
  // Node's response stream (the body, until an error's body text replaces it) knows the request it answers.
  const body = response !== undefined && isRecord(response["body"]) ? response["body"] : undefined
  const request = body !== undefined && isRecord(body["req"]) ? body["req"] : undefined
  const signedAt = request !== undefined && typeof request["getHeader"] === "function"
    ? (request["getHeader"] as (name: string) => unknown).call(request, "x-amz-date")
    : undefined
  return {
    name: stringField(error, "Code") ?? stringField(error, "name"),
    code: stringField(error, "code") ?? (cause === undefined ? undefined : stringField(cause, "code")),
    httpStatus: typeof status === "number" ? status : undefined,
    message: stringField(error, "message"),
    requestId: stringField(metadata, "requestId") ?? stringField(error, "RequestId"),
    signedAt: typeof signedAt === "string" ? signedAt : undefined,
    serverDate: headers === undefined ? undefined : stringField(headers, "date")
  }
}

/** SigV4's `x-amz-date` (`20261207T072543Z`) as epoch milliseconds. */
const amzDateMillis = (value: string): number => {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value)
  return m === null ? Number.NaN : Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)
}

/** How far the time a request was signed with was from the server's clock (its answer's `Date`), when both are known. */
export const signingSkewMillis = (facts: S3ErrorFacts): number | undefined => {
  if (facts.signedAt === undefined || facts.serverDate === undefined) return undefined
  const skew = Math.abs(Date.parse(facts.serverDate) - amzDateMillis(facts.signedAt))
  return Number.isNaN(skew) ? undefined : skew
}

/** From this far apart on, a 403 is treated as possibly refused for its time (S3 and Ceph RGW refuse at 15 minutes). */
const skewSuspect = 5 * 60_000

/**
 * A 403 to a request signed 5 minutes or more from the server's clock. Servers refuse a signature more than 15 minutes
 * off (S3 and Ceph RGW); a HEAD's 403 has no body, so no `RequestTimeTooSkewed` code says so, and without this check a
 * host whose clock is wrong would be told that its credentials are. Repeating it is right: the SDK takes the server's
 * time from every answer (its clock offset), so the repeat is signed with it, and if that is refused too, the 403 is
 * classified as what it then is.
 */
const refusedForItsTime = (facts: S3ErrorFacts): boolean => {
  if (facts.httpStatus !== 403 || facts.name === "RequestTimeTooSkewed") return false
  const skew = signingSkewMillis(facts)
  return skew !== undefined && skew >= skewSuspect
}

/** Whether repeating the operation may succeed. */
export const isRetryableS3Error = (facts: S3ErrorFacts): boolean => {
  if (tlsCertificateProblem(facts.code) !== undefined) return false
  if (refusedForItsTime(facts)) return true
  if (facts.name !== undefined && retryableCodes.has(facts.name)) return true
  if (facts.code !== undefined && isTransientNetworkCode(facts.code)) return true
  if (facts.message !== undefined && /socket hang up|ECONNRESET|EPIPE|ECONNREFUSED/i.test(facts.message)) return true
  if (facts.httpStatus !== undefined) return facts.httpStatus >= 500 || facts.httpStatus === 429 || facts.httpStatus === 408
  return false
}


/** The SDK's placeholder when the server sent no message (Ceph never does). */
const uninformative = new Set(["UnknownError", "Unknown", ""])

/** Names for bare HTTP statuses: HEAD responses have no body, so the SDK knows no error code for them. */
const statusNames: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  411: "LengthRequired",
  412: "PreconditionFailed",
  500: "InternalServerError",
  501: "NotImplemented",
  502: "BadGateway",
  503: "ServiceUnavailable",
  504: "GatewayTimeout"
}

/** A one-line description: code, HTTP status, an explanation, the server's message and request id. */
export const describeS3Error = (facts: S3ErrorFacts): string => {
  const named = facts.name === undefined || uninformative.has(facts.name) || facts.name === "Error"
    ? undefined
    : facts.name
  const label = named ?? facts.code ?? (facts.httpStatus === undefined ? undefined : statusNames[facts.httpStatus])
  const parts: Array<string> = []
  parts.push(label ?? "error")
  if (facts.code !== undefined && facts.code !== label) parts.push(`[${facts.code}]`)
  if (facts.httpStatus !== undefined) parts.push(`(HTTP ${facts.httpStatus})`)
  let text = parts.join(" ")
  const explanation = refusedForItsTime(facts)
    ? skewExplanation(facts)
    : (label === undefined ? undefined : explanations[label]) ??
      (facts.code === undefined ? undefined : explanations[facts.code] ?? tlsCertificateProblem(facts.code))
  if (explanation !== undefined) text += `: ${explanation}`
  if (facts.message !== undefined && !uninformative.has(facts.message) && facts.message !== explanation) {
    text += `${explanation === undefined ? ":" : " —"} ${facts.message}`
  }
  if (facts.requestId !== undefined) text += ` (request id ${facts.requestId})`
  return text
}

/**
 * Classifies an SDK, network or file error into a `StorageError`:
 * - retryable: HTTP 5xx, 429, 408, SlowDown/throttling codes, RequestTimeout, client timeouts, and socket errors
 *   (ECONNRESET, ECONNREFUSED, EPIPE, ETIMEDOUT, "socket hang up", ...);
 * - fatal: everything else, notably 403 (AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId), NoSuchBucket,
 *   InvalidDigest, other 4xx, missing credentials, an unresolvable host name, a missing local file, a server
 *   certificate the client refused (not trusted, wrong host, expired: `TlsCertificateErrors.ts`). (BadDigest and
 *   XAmzContentSHA256Mismatch are corruption in transit: the store turns them into `TransferCorrupted` first, see
 *   `isCorruptionS3Error`.)
 * The detail names the code and status; the `cause` is a plain Error with the same (scrubbed) text, never the SDK
 * object itself (which holds the raw response).
 */
export const classifyS3Error = (error: unknown, context: S3ErrorContext): StorageError => {
  if (error instanceof StorageError) return error
  const facts = s3ErrorFacts(error)
  const detail = scrubSecrets(describeS3Error(facts), context.secrets ?? [])
  const cause = new Error(detail)
  cause.name = facts.name ?? facts.code ?? "S3Error"
  return new StorageError({
    operation: context.operation,
    bucket: context.bucket,
    ...(context.key === undefined ? {} : { key: context.key }),
    detail,
    retryable: isRetryableS3Error(facts),
    ...(isThrottleS3Error(facts) ? { throttled: true } : {}),
    cause
  })
}

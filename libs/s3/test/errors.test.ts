import { NoSuchBucket, S3ServiceException } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { StorageError } from "@lo-migrate/core"
import { Redacted } from "effect"
import { classifyS3Error, effectivePartSize, MiB, multipartPartSize, partCount, partSizeFor } from "../src/index.ts"
import { s3TestConfig } from "../src/testing.ts"

const context = { operation: "PutObject", bucket: "blobs", key: "ab".repeat(32) }

/** An error shaped like the SDK's service exceptions for a code the SDK has no class for. */
const serviceError = (name: string, status: number, message = "UnknownError") =>
  new S3ServiceException({
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status, requestId: "tx-1" },
    message
  })

/** A Node socket error as the http module raises it. */
const nodeError = (code: string, message = `connect ${code} 127.0.0.1:17480`) =>
  Object.assign(new Error(message), { code })

describe("classifyS3Error", () => {
  const retryable: ReadonlyArray<readonly [string, unknown]> = [
    ["HTTP 500 InternalError", serviceError("InternalError", 500)],
    ["HTTP 503 SlowDown", serviceError("SlowDown", 503)],
    ["HTTP 503 without a code", serviceError("Unknown", 503)],
    ["HTTP 429 throttling", serviceError("TooManyRequestsException", 429)],
    ["RequestTimeout (HTTP 400)", serviceError("RequestTimeout", 400)],
    ["RequestTimeTooSkewed (HTTP 403)", serviceError("RequestTimeTooSkewed", 403)],
    ["client socket timeout", Object.assign(new Error("the request socket timed out"), { name: "TimeoutError" })],
    ["ECONNRESET", nodeError("ECONNRESET", "read ECONNRESET")],
    ["ECONNREFUSED", nodeError("ECONNREFUSED")],
    ["EPIPE", nodeError("EPIPE", "write EPIPE")],
    ["socket hang up", Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })],
    ["socket hang up without a code", new Error("socket hang up")],
    ["ETIMEDOUT", nodeError("ETIMEDOUT")],
    ["ConditionalRequestConflict (HTTP 409)", serviceError("ConditionalRequestConflict", 409)],
    ["IncompleteBody (HTTP 400)", serviceError("IncompleteBody", 400)],
    ["ExpiredToken (HTTP 400)", serviceError("ExpiredToken", 400)]
  ]
  for (const [name, error] of retryable) {
    it(`retryable: ${name}`, () => {
      const e = classifyS3Error(error, context)
      assert.instanceOf(e, StorageError)
      assert.isTrue(e.retryable, e.message)
    })
  }

  it("throttled (the store stage lowers its concurrency): SlowDown, ServiceUnavailable and 429; not RequestTimeTooSkewed, not a plain 500/503", () => {
    const throttled = (error: unknown) => classifyS3Error(error, context).throttled === true
    assert.isTrue(throttled(serviceError("SlowDown", 503)))
    assert.isTrue(throttled(serviceError("TooManyRequestsException", 429)))
    assert.isTrue(throttled(serviceError("Unknown", 429)))
    assert.isFalse(throttled(serviceError("RequestTimeTooSkewed", 403)))
    assert.isFalse(throttled(serviceError("InternalError", 500)))
    assert.isFalse(throttled(serviceError("Unknown", 503)))
    // a HEAD answered `503 Slow Down` has no body: the SDK names it after the status (the fault suite found it)
    assert.isTrue(throttled(serviceError("ServiceUnavailable", 503)))
    assert.isFalse(throttled(nodeError("ECONNRESET", "read ECONNRESET")))
  })

  const fatal: ReadonlyArray<readonly [string, unknown, string]> = [
    ["QuotaExceeded (HTTP 403): a bucket or user quota", serviceError("QuotaExceeded", 403), "the bucket's or its owner's quota (of objects or bytes) is reached"],
    ["AccessDenied", serviceError("AccessDenied", 403), "access denied"],
    ["bare 403 (HEAD)", serviceError("Forbidden", 403), "Forbidden (HTTP 403): access denied: check the credentials"],
    ["bare 403 the SDK calls Unknown", serviceError("Unknown", 403), "Forbidden (HTTP 403): access denied"],
    [
      "SignatureDoesNotMatch",
      serviceError("SignatureDoesNotMatch", 403),
      "the server computed a different signature for this request than the client sent; causes include a wrong secret"
    ],
    ["InvalidAccessKeyId", serviceError("InvalidAccessKeyId", 403), "access key id is not known"],
    [
      "NoSuchBucket",
      new NoSuchBucket({ $metadata: { httpStatusCode: 404 }, message: "UnknownError" }),
      "bucket does not exist"
    ],
    ["BadDigest", serviceError("BadDigest", 400), "Content-MD5"],
    ["InvalidDigest", serviceError("InvalidDigest", 400), "Content-MD5"],
    ["XAmzContentSHA256Mismatch", serviceError("XAmzContentSHA256Mismatch", 400), "does not hash to its SHA-256"],
    ["other 400", serviceError("InvalidArgument", 400), "InvalidArgument (HTTP 400)"],
    ["PreconditionFailed", serviceError("PreconditionFailed", 412), "If-None-Match"],
    ["missing credentials", Object.assign(new Error("Could not load credentials from any providers"), {
      name: "CredentialsProviderError"
    }), "no S3 credentials"],
    ["unresolvable host", nodeError("ENOTFOUND", "getaddrinfo ENOTFOUND s3.invalid"), "does not resolve"],
    ["missing local file", nodeError("ENOENT", "ENOENT: no such file or directory, open '/tmp/x'"), "local body file"],
    // a server certificate the client refused: a configuration error, named as such
    [
      "https: certificate of an untrusted CA",
      nodeError("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate"),
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE: the server's TLS certificate is not trusted: it was not signed by a CA this " +
      "process trusts (checked against Node's CA certificates and NODE_EXTRA_CA_CERTS"
    ],
    ["https: self-signed certificate", nodeError("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"), "is not trusted"],
    ["https: self-signed CA in the chain", nodeError("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"), "is not trusted"],
    [
      "https: certificate for another host",
      nodeError("ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames: IP: 10.0.0.1 is not in the cert's list: 127.0.0.1"),
      "not for the endpoint's host"
    ],
    ["https: expired certificate", nodeError("CERT_HAS_EXPIRED", "certificate has expired"), "outside its validity period"],
    // even when a message mentions a reset, a refused certificate is not retried
    ["https: untrusted, whatever the message", nodeError("UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "ECONNRESET after"), "is not trusted"]
  ]
  for (const [name, error, text] of fatal) {
    it(`fatal: ${name}`, () => {
      const e = classifyS3Error(error, context)
      assert.isFalse(e.retryable, e.message)
      assert.include(e.message, text)
    })
  }

  it("names the operation, bucket and key, the code and status, and the request id", () => {
    const e = classifyS3Error(serviceError("SlowDown", 503, "Please reduce your request rate."), context)
    assert.strictEqual(e.operation, "PutObject")
    assert.strictEqual(e.bucket, "blobs")
    assert.strictEqual(e.key, context.key)
    assert.strictEqual(
      e.message,
      `S3 PutObject on blobs/${context.key} failed (retryable): SlowDown (HTTP 503): Please reduce your request rate. ` +
        "(request id tx-1)"
    )
  })

  it("leaves the key out for bucket-level operations", () => {
    const e = classifyS3Error(serviceError("AccessDenied", 403), { operation: "HeadBucket", bucket: "blobs" })
    assert.isUndefined(e.key)
    assert.match(e.message, /^S3 HeadBucket on bucket blobs failed: AccessDenied \(HTTP 403\)/)
  })

  it("scrubs the secret from the message, the detail and the cause", () => {
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    const leaky = serviceError("SignatureDoesNotMatch", 403, `string to sign used ${secret} somewhere`)
    const e = classifyS3Error(leaky, { ...context, secrets: [Redacted.make(secret)] })
    assert.notInclude(e.message, secret)
    assert.notInclude(e.detail, secret)
    assert.notInclude(String(e.cause), secret)
    assert.include(e.message, "<redacted>")
  })

  it("does not keep the SDK error (with its raw response) as the cause", () => {
    const e = classifyS3Error(serviceError("InternalError", 500), context)
    assert.notInstanceOf(e.cause, S3ServiceException)
    assert.instanceOf(e.cause, Error)
  })

  /** A HEAD's bodiless 403 as the SDK raises it: the response's `Date`, and its body stream's request, signed at `signedAt`. */
  const refusedAt = (signedAt: string, serverDate: string, name = "Unknown") => {
    const error = serviceError(name, 403)
    const req = { getHeader: (header: string) => (header === "x-amz-date" ? signedAt : undefined) }
    Object.defineProperty(error, "$response", { value: { statusCode: 403, headers: { date: serverDate }, body: { req } } })
    return error
  }

  it("a 403 to a request signed 5 minutes or more from the server's Date: retryable, and the two times named", () => {
    const e = classifyS3Error(refusedAt("20261207T070833Z", "Mon, 07 Dec 2026 07:28:33 GMT"), {
      operation: "HeadBucket",
      bucket: "blobs"
    })
    assert.isTrue(e.retryable)
    assert.strictEqual(
      e.detail,
      "Forbidden (HTTP 403): the request was signed at 20261207T070833Z (x-amz-date: this host's clock) and the " +
        "server's clock said Mon, 07 Dec 2026 07:28:33 GMT (Date): 20 minutes apart; S3 servers refuse a request " +
        "signed more than 15 minutes from their clock, so the refusal may be for its time; the client now signs " +
        "with the server's time (request id tx-1)"
    )
    // ahead as well as behind
    assert.isTrue(classifyS3Error(refusedAt("20261207T075000Z", "Mon, 07 Dec 2026 07:28:33 GMT"), context).retryable)
    assert.isTrue(classifyS3Error(refusedAt("20261207T072333Z", "Mon, 07 Dec 2026 07:28:33 GMT"), context).retryable)
  })

  it("a 403 to a request signed within 5 minutes of the server's Date, or with either time unknown, stays fatal", () => {
    for (const error of [
      refusedAt("20261207T072533Z", "Mon, 07 Dec 2026 07:28:33 GMT"),
      refusedAt("20261207T072833Z", "Mon, 07 Dec 2026 07:28:33 GMT", "AccessDenied"),
      refusedAt("not-a-date", "Mon, 07 Dec 2026 07:28:33 GMT"),
      refusedAt("20261207T070833Z", "garbage"),
      serviceError("Unknown", 403)
    ]) {
      const e = classifyS3Error(error, context)
      assert.isFalse(e.retryable, e.message)
      assert.notInclude(e.message, "minutes apart")
    }
    // a 404 signed far off is not a refusal of the time
    const notFound = serviceError("NotFound", 404)
    Object.defineProperty(notFound, "$response", {
      value: { headers: { date: "Mon, 07 Dec 2026 07:28:33 GMT" }, body: { req: { getHeader: () => "20261207T070833Z" } } }
    })
    assert.isFalse(classifyS3Error(notFound, context).retryable)
  })

  it("RequestTimeTooSkewed says what the server refused", () => {
    const e = classifyS3Error(serviceError("RequestTimeTooSkewed", 403), context)
    assert.isTrue(e.retryable)
    assert.include(e.message, "RequestTimeTooSkewed (HTTP 403): the server refused the time the request was signed with")
  })

  it("passes a StorageError through unchanged", () => {
    const original = new StorageError({ operation: "X", bucket: "b", detail: "d", retryable: true })
    assert.strictEqual(classifyS3Error(original, context), original)
  })

  it("copes with values that are not errors", () => {
    const e = classifyS3Error("boom", context)
    assert.isFalse(e.retryable)
    assert.include(e.message, "boom")
  })
})

describe("partSizeFor", () => {
  it("uses the configured size when 10,000 parts suffice", () => {
    assert.strictEqual(partSizeFor(100 * MiB, 20 * MiB), 20 * MiB)
    assert.strictEqual(partSizeFor(20 * MiB * 10_000, 20 * MiB), 20 * MiB)
  })
  it("never goes below S3's 5 MiB minimum nor above its 5 GiB maximum", () => {
    assert.strictEqual(partSizeFor(50 * MiB, 1 * MiB), 5 * MiB)
    assert.strictEqual(effectivePartSize(1 * MiB), 5 * MiB)
    assert.strictEqual(effectivePartSize(6 * 1024 * MiB), 5 * 1024 * MiB)
    assert.strictEqual(effectivePartSize(20 * MiB), 20 * MiB)
  })
  it("grows to whole MiB so that an object fits in 10,000 parts", () => {
    const size = 20 * MiB * 10_000 + 1
    const part = partSizeFor(size, 20 * MiB)!
    assert.strictEqual(part, 21 * MiB)
    assert.isAtMost(partCount(size, part), 10_000)
    const huge = 4 * 1024 * 1024 * MiB // 4 TiB
    assert.isAtMost(partCount(huge, partSizeFor(huge, 20 * MiB)!), 10_000)
  })
  it("multipartPartSize: none up to the part size (one PutObject), else the part size the upload uses", () => {
    assert.isUndefined(multipartPartSize(20 * MiB, 20 * MiB))
    assert.strictEqual(multipartPartSize(20 * MiB + 1, 20 * MiB), 20 * MiB)
    assert.isUndefined(multipartPartSize(5 * MiB, 1 * MiB)) // the configured size is raised to 5 MiB first
    assert.strictEqual(multipartPartSize(5 * MiB + 1, 1 * MiB), 5 * MiB)
    assert.strictEqual(multipartPartSize(20 * MiB * 10_000 + 1, 20 * MiB), 21 * MiB)
  })
  it("refuses objects beyond 10,000 parts of 5 GiB", () => {
    assert.isUndefined(partSizeFor(10_000 * 5 * 1024 * MiB + MiB * 10_000, 20 * MiB))
  })
  it("counts parts", () => {
    assert.strictEqual(partCount(0, 5 * MiB), 1)
    assert.strictEqual(partCount(5 * MiB, 5 * MiB), 1)
    assert.strictEqual(partCount(5 * MiB + 1, 5 * MiB), 2)
  })
})

describe("s3TestConfig", () => {
  it("fails with a message that says how to get a server", () => {
    assert.throws(() => s3TestConfig({}), /S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY are not set.*npm test.*tools\/s3\/ceph-rgw\.sh/)
  })
  it("reads the endpoint, region and keys, the keys redacted", () => {
    const config = s3TestConfig({
      S3_ENDPOINT: "http://127.0.0.1:1",
      S3_ACCESS_KEY_ID: "AK",
      S3_SECRET_ACCESS_KEY: "SK",
      S3_REGION: "eu-west-1"
    })
    assert.strictEqual(config.endpoint, "http://127.0.0.1:1")
    assert.strictEqual(config.region, "eu-west-1")
    assert.isTrue(config.forcePathStyle)
    assert.notInclude(String(config.secretAccessKey), "SK")
    assert.strictEqual(Redacted.value(config.secretAccessKey!), "SK")
  })
})

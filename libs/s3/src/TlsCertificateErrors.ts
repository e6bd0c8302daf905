/**
 * Node's codes for an https server certificate the client refused, and what each means to an operator. Such a
 * failure is a configuration error: no retry changes the certificate or what the process trusts, so it is never
 * retryable (the migrator refuses to start with exit 2 instead of waiting it out).
 */

/** What the client checks and how to make it trust a private CA: the same for every "not trusted" code. */
const untrusted = "the server's TLS certificate is not trusted: it was not signed by a CA this process trusts " +
  "(checked against Node's CA certificates and NODE_EXTRA_CA_CERTS; for a private CA, start with " +
  "NODE_EXTRA_CA_CERTS=/path/to/ca.pem)"
const hostMismatch = "the server's TLS certificate is not for the endpoint's host (its subjectAltName names " +
  "other hosts; use the host name the certificate was issued for in the endpoint URL)"
const expired = "the server's TLS certificate is outside its validity period (expired, or not yet valid by this " +
  "host's clock)"

const problems: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: untrusted,
  UNABLE_TO_GET_ISSUER_CERT: untrusted,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: untrusted,
  SELF_SIGNED_CERT_IN_CHAIN: untrusted,
  DEPTH_ZERO_SELF_SIGNED_CERT: untrusted,
  CERT_UNTRUSTED: untrusted,
  CERT_REJECTED: untrusted,
  CERT_SIGNATURE_FAILURE: untrusted,
  INVALID_CA: untrusted,
  ERR_TLS_CERT_ALTNAME_INVALID: hostMismatch,
  HOSTNAME_MISMATCH: hostMismatch,
  CERT_HAS_EXPIRED: expired,
  CERT_NOT_YET_VALID: expired,
  CERT_REVOKED: "the server's TLS certificate has been revoked",
  INVALID_PURPOSE: "the server's TLS certificate is not for use by a TLS server",
  CERT_CHAIN_TOO_LONG: "the server's TLS certificate chain is longer than allowed",
  PATH_LENGTH_EXCEEDED: "the server's TLS certificate chain exceeds a CA's path length"
}

/** The operator's explanation when `code` is one of a refused server certificate, else `undefined`. */
export const tlsCertificateProblem = (code: string | undefined): string | undefined =>
  code === undefined ? undefined : problems[code]

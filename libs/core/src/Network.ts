/**
 * Transient network trouble as Node reports it: the socket-level error codes (`errno` names and the HTTP clients'
 * own codes) of a peer that may well answer on the next attempt. PostgreSQL's and S3's error classifiers both ask here.
 */

/** Socket-level error codes of transient network trouble. */
const transientNetworkCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET"
])

/** Whether `code` (an `errno` name or a client's error code) is transient network trouble. */
export const isTransientNetworkCode = (code: string | undefined): boolean =>
  code !== undefined && transientNetworkCodes.has(code)

/**
 * Failures of the spill files under `--temp-dir`, reported as what they are: a local file-system error naming the
 * file, the spill directory and the errno, never as a database error. A full disk (ENOSPC, EDQUOT) is retryable: the
 * spills in flight free their space when their uploads end (the pipeline waits for them before it retries).
 */
import { LocalFileError } from "@lo-migrate/core"

/** Errnos that may clear up by themselves: space freed by other spills, file handles closed. */
const transientCodes = new Set(["ENOSPC", "EDQUOT", "EMFILE", "ENFILE"])

const explanations: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOTDIR: "a component of the path is not a directory",
  ENOENT: "no such file or directory",
  EMFILE: "too many open files in this process",
  ENFILE: "too many open files in the system",
  EEXIST: "a file of that name already exists"
}

/** The errno of a Node error, or of the Node error a `PlatformError` (effect's FileSystem) wraps as its `cause`. */
const codeOf = (cause: unknown): string | undefined => {
  if (typeof cause !== "object" || cause === null) return undefined
  const code = "code" in cause ? cause.code : undefined
  if (typeof code === "string") return code
  return "cause" in cause && cause.cause !== cause ? codeOf(cause.cause) : undefined
}

/** A `LocalFileError` for `operation` on `path` (in the spill directory `directory`) that failed with `cause`. */
export const spillFileError = (operation: string, directory: string, path: string, cause: unknown): LocalFileError => {
  const code = codeOf(cause)
  const explanation = code === undefined ? undefined : explanations[code]
  const text = cause instanceof Error ? cause.message : String(cause)
  return new LocalFileError({
    operation,
    directory,
    path,
    ...(code === undefined ? {} : { code }),
    detail: explanation === undefined ? text : `${explanation} [${code}]`,
    retryable: code !== undefined && transientCodes.has(code),
    cause
  })
}

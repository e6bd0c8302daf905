/**
 * Process exit codes, the contract with operators and scripts:
 *
 * | code | meaning |
 * | --- | --- |
 * | 0 | everything migrated (or: dry run / finalize succeeded) |
 * | 1 | some rows failed and were skipped (see the report / the log); `finalize` refused because rows remain |
 * | 2 | bad usage or configuration; nothing was touched |
 * | 3 | a fatal infrastructure error (database, S3, file system); a rerun resumes |
 * | 130 | interrupted by Ctrl-C / SIGTERM; what was uploaded was committed, a rerun resumes |
 */
export const ExitCode = {
  Ok: 0,
  RowsFailed: 1,
  Usage: 2,
  Fatal: 3,
  Interrupted: 130
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

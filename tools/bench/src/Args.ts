/**
 * Command-line helpers of the bench. Node's `parseArgs` refuses an option value that starts with a dash unless it is
 * attached with `=`, but some of the bench's options take options as their value (`--tuned "--storer-threads 64"`).
 */

/** Joins each option named in `names` with the argument after it (`--tuned X` -> `--tuned=X`). */
export const attachValues = (argv: ReadonlyArray<string>, names: ReadonlySet<string>): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (names.has(arg) && i + 1 < argv.length) {
      out.push(`${arg}=${argv[i + 1]}`)
      i++
    } else {
      out.push(arg)
    }
  }
  return out
}

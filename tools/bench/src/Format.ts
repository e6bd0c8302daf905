/**
 * How the bench writes numbers (significant digits, MiB, seconds, percentages) and Markdown tables with padded
 * columns. Pure code, no I/O.
 */
import { MiB } from "./Measurement.ts"

/** A number with `digits` significant-ish decimals: 1234 -> "1234", 12.345 -> "12.3", 0.01234 -> "0.0123". */
export const fmtNum = (n: number | undefined, digits = 3): string => {
  if (n === undefined || !Number.isFinite(n)) return "–"
  const abs = Math.abs(n)
  if (abs >= 10 ** (digits - 1) || abs === 0) return Math.round(n).toString()
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)))
  return n.toFixed(Math.min(decimals, 6))
}

export const fmtMiB = (bytes: number | undefined): string => bytes === undefined ? "–" : fmtNum(bytes / MiB)
export const fmtSec = (ms: number | undefined): string => ms === undefined ? "–" : fmtNum(ms / 1000)
export const fmtPct = (f: number | undefined): string => f === undefined || !Number.isFinite(f) ? "–" : `${Math.round(f * 100)}%`

/** Renders rows as a Markdown table with padded columns (readable in a terminal, pasteable into a README). */
export const renderTable = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  align: ReadonlyArray<"l" | "r"> = []
): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const cell = (text: string, i: number) =>
    align[i] === "r" ? text.padStart(widths[i]!) : text.padEnd(widths[i]!)
  const line = (cells: ReadonlyArray<string>) => `| ${headers.map((_, i) => cell(cells[i] ?? "", i)).join(" | ")} |`
  const rule = `|${widths.map((w, i) => align[i] === "r" ? `${"-".repeat(w + 1)}:` : `${"-".repeat(w + 2)}`).join("|")}|`
  return [line(headers), rule, ...rows.map(line)].join("\n")
}

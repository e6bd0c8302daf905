/**
 * The faults a `FaultProxy` can inject, one at a time, switchable while it runs. Per-request faults act on HTTP
 * requests (the proxy parses HTTP/1.1 request framing on the way in); `Latency` acts on every chunk in both
 * directions and works for any TCP protocol (PostgreSQL too). Counted faults (`Stall`, `FlipByte`) hit the next
 * `count` matching requests, then the proxy passes through again. Fractions are exact and evenly spread
 * (`evenlySpread`), so a run is repeatable.
 */

/** Forward everything unchanged. */
export interface PassThrough {
  readonly _tag: "PassThrough"
}

/**
 * Answer `fraction` of the requests (0-1) with an S3 XML error instead of forwarding them: 503 `SlowDown` or
 * 500 `InternalError`. The request body is read and dropped; the connection stays open (keep-alive), as RGW does.
 */
export interface HttpError {
  readonly _tag: "HttpError"
  readonly status: 500 | 503
  readonly fraction: number
}

/** Reset (TCP RST) the connection carrying `fraction` of the requests, when their head arrives. */
export interface Reset {
  readonly _tag: "Reset"
  readonly fraction: number
}

/** Delay every chunk, both ways, by `millis` (order kept). */
export interface Latency {
  readonly _tag: "Latency"
  readonly millis: number
}

/**
 * The next `count` requests are swallowed and never answered; their connections stay open (nothing forwarded either
 * way) until the client gives up or the proxy's `maxStallMillis` ends them.
 */
export interface Stall {
  readonly _tag: "Stall"
  readonly count: number
}

/**
 * `count` requests with a body have one byte of it flipped (XOR 0x01, in the middle) in transit: every `every`-th
 * request with a body (default 1: the next ones), so that with `every` > 1 a retry of the same body is not hit again.
 */
export interface FlipByte {
  readonly _tag: "FlipByte"
  readonly count: number
  readonly every: number
}

export type Fault = PassThrough | HttpError | Reset | Latency | Stall | FlipByte

export const passThrough: Fault = { _tag: "PassThrough" }
export const httpError = (status: 500 | 503, fraction: number): Fault => ({ _tag: "HttpError", status, fraction })
export const reset = (fraction: number): Fault => ({ _tag: "Reset", fraction })
export const latency = (millis: number): Fault => ({ _tag: "Latency", millis })
export const stall = (count: number): Fault => ({ _tag: "Stall", count })
export const flipByte = (count: number, every = 1): Fault => ({ _tag: "FlipByte", count, every: Math.max(1, every) })

/** A short name of the fault for logs and tables: "503 SlowDown 20%", "stall 3 requests", ... */
export const describeFault = (fault: Fault): string => {
  switch (fault._tag) {
    case "PassThrough":
      return "pass through"
    case "HttpError":
      return `${fault.status === 503 ? "503 SlowDown" : "500 InternalError"} ${Math.round(fault.fraction * 100)}%`
    case "Reset":
      return `connection reset ${Math.round(fault.fraction * 100)}%`
    case "Latency":
      return `latency ${fault.millis} ms`
    case "Stall":
      return `stall ${fault.count} request(s)`
    case "FlipByte":
      return `flip a byte in ${fault.count} request body(ies)${fault.every > 1 ? `, every ${fault.every}th` : ""}`
  }
}

/** What the proxy does with one request, decided when its head has arrived. */
export type Action =
  | { readonly _tag: "Forward"; readonly flip: boolean }
  | { readonly _tag: "Respond"; readonly status: 500 | 503 }
  | { readonly _tag: "Reset" }
  | { readonly _tag: "Stall" }

/**
 * Picks `fraction` of the calls, evenly spread (error diffusion: at 20% every 5th call), starting at a phase given by
 * `seed`, so a run is repeatable and exactly that fraction of the requests is hit.
 */
export const evenlySpread = (seed: number) => {
  let carry = (Math.abs(seed) * 0.6180339887498949) % 1
  return (fraction: number): boolean => {
    carry += Math.min(1, Math.max(0, fraction))
    if (carry < 1) return false
    carry -= 1
    return true
  }
}

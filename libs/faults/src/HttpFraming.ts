/**
 * Just enough HTTP/1.1 for the proxy: splits the client's byte stream into request heads and bodies
 * (`Content-Length` framing, no pipelining assumed beyond what arrives in order), so a fault can be applied to one
 * request, and builds the S3 error responses the proxy answers with. A request it cannot frame (a chunked body, a
 * head over 64 KiB) switches the connection to raw pass-through.
 */
import type { Action } from "./Fault.ts"

export interface RequestHead {
  readonly method: string
  readonly path: string
  readonly contentLength: number
}

/** Where one client connection's request stream goes, decided per request. */
export interface FramingSink {
  readonly decide: (head: RequestHead) => Action
  /** Bytes for the target (heads and bodies of forwarded requests). */
  readonly forward: (bytes: Uint8Array) => void
  /** An answer the proxy makes itself, written to the client once the request's body has been read. */
  readonly respond: (response: Uint8Array) => void
  readonly reset: () => void
  readonly stall: () => void
}

const headEnd = Buffer.from("\r\n\r\n")
const maxHead = 64 * 1024

const parseHead = (head: Buffer): (RequestHead & { readonly framed: boolean }) | undefined => {
  const lines = head.toString("latin1").split("\r\n")
  const [method, path] = (lines[0] ?? "").split(" ")
  if (method === undefined || path === undefined) return undefined
  let contentLength = 0
  let framed = true
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":")
    if (colon < 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    if (name === "content-length") contentLength = Number(value)
    if (name === "transfer-encoding" && value.toLowerCase() !== "identity") framed = false
  }
  if (!Number.isSafeInteger(contentLength) || contentLength < 0) framed = false
  return { method, path, contentLength, framed }
}

/** The S3 XML error body RGW and AWS send, with a request id naming the proxy. */
export const s3ErrorResponse = (status: 500 | 503, method: string, requestId: string): Uint8Array => {
  const [reason, code, message] = status === 503 ?
    ["Slow Down", "SlowDown", "Please reduce your request rate."] :
    ["Internal Server Error", "InternalError", "We encountered an internal error. Please try again."]
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message>` +
    `<RequestId>${requestId}</RequestId></Error>`
  const head = [
    `HTTP/1.1 ${status} ${reason}`,
    "Content-Type: application/xml",
    `Content-Length: ${Buffer.byteLength(body)}`,
    `x-amz-request-id: ${requestId}`,
    "Connection: keep-alive",
    "",
    ""
  ].join("\r\n")
  // a response to HEAD carries the length but never the body
  return Buffer.from(method === "HEAD" ? head : head + body)
}

type Phase =
  | { readonly _tag: "Head"; buffer: Buffer }
  | { readonly _tag: "Body"; remaining: number; offset: number; readonly flipAt: number; readonly answer?: Uint8Array }
  | { readonly _tag: "Raw" }
  | { readonly _tag: "Dropped" }

/** A parser for one connection: feed it the client's chunks in order. */
export const requestFraming = (sink: FramingSink, requestId: () => string) => {
  let phase: Phase = { _tag: "Head", buffer: Buffer.alloc(0) }
  const feed = (chunk: Buffer): void => {
    let rest = chunk
    while (rest.length > 0) {
      switch (phase._tag) {
        case "Dropped":
          return
        case "Raw":
          sink.forward(rest)
          return
        case "Head": {
          const buffer: Buffer = Buffer.concat([phase.buffer, rest])
          const end = buffer.indexOf(headEnd)
          if (end < 0) {
            if (buffer.length > maxHead) {
              phase = { _tag: "Raw" }
              sink.forward(buffer)
              return
            }
            phase.buffer = buffer
            return
          }
          const headBytes = buffer.subarray(0, end + headEnd.length)
          rest = buffer.subarray(end + headEnd.length)
          const head = parseHead(headBytes)
          const action: Action = head === undefined ? { _tag: "Forward", flip: false } : sink.decide(head)
          if (action._tag === "Reset") {
            phase = { _tag: "Dropped" }
            sink.reset()
            return
          }
          if (action._tag === "Stall") {
            phase = { _tag: "Dropped" }
            sink.stall()
            return
          }
          if (head === undefined || !head.framed) {
            // cannot find the end of this request: no fault on it, and the rest of the connection as it comes
            phase = { _tag: "Raw" }
            sink.forward(headBytes)
            continue
          }
          if (action._tag === "Respond") {
            phase = {
              _tag: "Body",
              remaining: head.contentLength,
              offset: 0,
              flipAt: -1,
              answer: s3ErrorResponse(action.status, head.method, requestId())
            }
          } else {
            sink.forward(headBytes)
            const flipAt = action.flip && head.contentLength > 0 ? Math.floor(head.contentLength / 2) : -1
            phase = { _tag: "Body", remaining: head.contentLength, offset: 0, flipAt }
          }
          break
        }
        case "Body": {
          const n = Math.min(phase.remaining, rest.length)
          let part = rest.subarray(0, n)
          rest = rest.subarray(n)
          if (phase.answer === undefined) {
            if (phase.flipAt >= phase.offset && phase.flipAt < phase.offset + n) {
              part = Buffer.from(part)
              part[phase.flipAt - phase.offset] = part[phase.flipAt - phase.offset]! ^ 0x01
            }
            if (n > 0) sink.forward(part)
          }
          phase.offset += n
          phase.remaining -= n
          break
        }
      }
      if (phase._tag === "Body" && phase.remaining === 0) {
        if (phase.answer !== undefined) sink.respond(phase.answer)
        phase = { _tag: "Head", buffer: Buffer.alloc(0) }
      }
    }
  }
  return { feed }
}

/** Fault injection between the migrator and its servers: a loopback proxy and the faults it applies. */
export * from "./Fault.ts"
export * from "./FaultProxy.ts"
export { type RequestHead, s3ErrorResponse } from "./HttpFraming.ts"
export * from "./TestCertificates.ts"
export type { TlsFrontOptions } from "./TlsFront.ts"

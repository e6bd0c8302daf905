/** `@lo-migrate/s3`: the S3 object store, its client and call wrapper, its error classification and its upload ledger. */
// the store's SDK call wrapper (abortable, errors classified and scrubbed), for other users of the client (verify)
export { type ClientCalls, clientCalls, makeS3Calls, type S3Calls } from "./S3Calls.ts"
export * from "./S3ClientService.ts"
// requests over the cached middleware chain, with their payload SHA-256 and abort signal (the bench's clients send them the same way)
export {
  cachedChainOptions,
  isPrepared,
  prepareClient,
  type RequestExtras,
  sendS3,
  SignalRoutingHttpHandler
} from "./S3Send.ts"
// the SDK's SHA-256 with the SigV4 signing key imported once, and the response body collector (the bench's clients use both)
export { SigningSha256 } from "./SigningHash.ts"
export { collectStream } from "./S3StreamCollector.ts"
export * from "./S3Errors.ts"
/** The live `ObjectStore` adapter: `S3ObjectStore.layer(config)`, `.layerFromClient`, `.make`, `.bodyCut`. */
export * as S3ObjectStore from "./S3ObjectStore.ts"
export * from "./S3StoreConfig.ts"
export * from "./S3UploadLedger.ts"

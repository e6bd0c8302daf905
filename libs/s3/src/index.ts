/** `@lo-migrate/s3`: the S3 object store, its client, its error classification and its upload ledger. */
export * from "./S3ClientService.ts"
export * from "./S3Errors.ts"
/** The live `ObjectStore` adapter: `S3ObjectStore.layer(config)`, `.layerFromClient`, `.make`, `.bodyCut`. */
export * as S3ObjectStore from "./S3ObjectStore.ts"
export * from "./S3StoreConfig.ts"
export * from "./S3UploadLedger.ts"

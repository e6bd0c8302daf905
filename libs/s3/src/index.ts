export * from "./S3ClientService.ts"
export * from "./S3Errors.ts"
export * from "./S3ObjectStore.ts"
export * from "./S3StoreConfig.ts"

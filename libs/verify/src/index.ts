/**
 * `@lo-migrate/verify`: proves that every migrated row's object is in the bucket, with the right size (a merge of the
 * bucket listing with the rows ordered by `sha2`), and optionally the right bytes (`deep`) and Content-Type; repairs
 * bad rows on request. The command-line wiring is `lo-migrate verify` (apps/migrator).
 */
export * from "./BucketListing.ts"
export * from "./DeepCheck.ts"
export * from "./Domain.ts"
export * from "./Merge.ts"
export * from "./MigratedRows.ts"
export * from "./Progress.ts"
export * from "./Repair.ts"
export * from "./Status.ts"
export * from "./StatusRecord.ts"
export * from "./Verify.ts"

/**
 * The V8 flags the migrator ships with (README, "Memory"), for the places that start it from TypeScript: the demo and
 * the CLI tests. The start target, the Docker image and the root README write them out; tools/bench's
 * `ShippedFlags.test.ts` checks that all of them agree with the bench's defaults.
 */
export const shippedNodeFlags: ReadonlyArray<string> = ["--max-semi-space-size=8", "--initial-old-space-size=128"]

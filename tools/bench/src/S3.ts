/**
 * The bench's own S3 client and bucket lifecycle (every measurement writes into a fresh bucket, emptied and deleted
 * afterwards so Ceph's disk does not fill up).
 */
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client
} from "@aws-sdk/client-s3"
import { trimMiddleware } from "@lo-migrate/s3"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { Agent } from "node:http"

export interface S3Env {
  readonly endpoint: string
  readonly region: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
}

export const s3EnvFrom = (env: NodeJS.ProcessEnv): S3Env | undefined => {
  const endpoint = env["S3_ENDPOINT"]
  const accessKeyId = env["S3_ACCESS_KEY_ID"] ?? env["AWS_ACCESS_KEY_ID"]
  const secretAccessKey = env["S3_SECRET_ACCESS_KEY"] ?? env["AWS_SECRET_ACCESS_KEY"]
  if (endpoint === undefined || accessKeyId === undefined || secretAccessKey === undefined) return undefined
  return { endpoint, region: env["S3_REGION"] ?? "us-east-1", accessKeyId, secretAccessKey }
}

/**
 * The bench's client: keep-alive, path style, no CRC32 trailers; with `trimmed` (the default) without the middleware
 * the store also drops (`trimMiddleware`), so the S3 write limit and the combined client pay what the migrator pays.
 */
export const makeClient = (s3: S3Env, maxSockets = 50, trimmed = true): S3Client => {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets }) })
  })
  if (trimmed) trimMiddleware(client)
  return client
}

export const createBucket = (client: S3Client, bucket: string) => client.send(new CreateBucketCommand({ Bucket: bucket }))

/** Deletes every object (1000 per request), then the bucket. Returns how many objects there were. */
export const deleteBucket = async (client: S3Client, bucket: string): Promise<number> => {
  let deleted = 0
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }))
    const keys = (page.Contents ?? []).flatMap((o) => o.Key === undefined ? [] : [{ Key: o.Key }])
    if (keys.length === 0) break
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }))
    deleted += keys.length
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }))
  return deleted
}

/** Counts objects and bytes in a bucket (to check a migration put everything there). */
export const bucketStats = async (client: S3Client, bucket: string): Promise<{ objects: number; bytes: number }> => {
  let objects = 0
  let bytes = 0
  let token: string | undefined
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000, ContinuationToken: token }))
    for (const o of page.Contents ?? []) {
      objects += 1
      bytes += o.Size ?? 0
    }
    token = page.NextContinuationToken
  } while (token !== undefined)
  return { objects, bytes }
}

// The S3 side of tools/containers/check.sh, with the repository's @aws-sdk/client-s3:
//   npx node tools/containers/s3-bucket.mjs create BUCKET
//   npx node tools/containers/s3-bucket.mjs verify BUCKET EXPECTED.tsv   (lines "sha256<TAB>mime_type<TAB>size")
//   npx node tools/containers/s3-bucket.mjs delete BUCKET               (empties it first)
//   npx node tools/containers/s3-bucket.mjs remove BUCKET KEY           (one object)
// Reads S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION. `verify` checks that the bucket holds exactly
// the expected keys and, for every object, that its bytes hash to its key and that size and Content-Type match.
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, S3Client
} from "@aws-sdk/client-s3"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"

const [command, bucket, expectedFile] = process.argv.slice(2)
const client = new S3Client({
  endpoint: process.env.S3_ENDPOINT,
  region: process.env.S3_REGION ?? "us-east-1",
  forcePathStyle: true,
  credentials: { accessKeyId: process.env.S3_ACCESS_KEY_ID, secretAccessKey: process.env.S3_SECRET_ACCESS_KEY },
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED"
})

const listAll = async () => {
  const objects = []
  let token
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }))
    objects.push(...(page.Contents ?? []))
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token !== undefined)
  return objects
}

if (command === "create") {
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
} else if (command === "delete") {
  for (let objects = await listAll(); objects.length > 0; objects = await listAll()) {
    await client.send(new DeleteObjectsCommand({
      Bucket: bucket, Delete: { Objects: objects.slice(0, 1000).map((o) => ({ Key: o.Key })), Quiet: true }
    }))
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }))
} else if (command === "remove") {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: expectedFile }))
} else if (command === "verify") {
  const expected = new Map(readFileSync(expectedFile, "utf8").split("\n").filter((l) => l !== "").map((l) => {
    const [key, mime, size] = l.split("\t")
    return [key, { mime, size: Number(size) }]
  }))
  const problems = []
  const keys = new Set((await listAll()).map((o) => o.Key))
  for (const key of expected.keys()) if (!keys.has(key)) problems.push(`missing object ${key}`)
  for (const key of keys) if (!expected.has(key)) problems.push(`unexpected object ${key}`)
  for (const [key, want] of expected) {
    if (!keys.has(key)) continue
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    const body = Buffer.from(await got.Body.transformToByteArray())
    const sha256 = createHash("sha256").update(body).digest("hex")
    if (sha256 !== key) problems.push(`${key}: its bytes hash to ${sha256}`)
    if (body.length !== want.size) problems.push(`${key}: ${body.length} bytes, the row says ${want.size}`)
    if (got.ContentType !== want.mime) problems.push(`${key}: Content-Type ${got.ContentType}, the row says ${want.mime}`)
  }
  if (problems.length > 0) {
    console.error(problems.slice(0, 20).join("\n"))
    console.error(`${problems.length} problem(s) in bucket ${bucket} (${keys.size} objects, ${expected.size} expected)`)
    process.exit(1)
  }
  console.log(`bucket ${bucket}: ${keys.size} objects, each hashing to its key, with the row's size and type`)
} else {
  console.error("usage: s3-bucket.mjs create|verify|delete|remove BUCKET [EXPECTED.tsv | KEY]")
  process.exit(2)
}

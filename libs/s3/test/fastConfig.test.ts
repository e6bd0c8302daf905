/**
 * `withFastProperties` (S3ClientService.ts): the store's client has its resolved config in V8's fast mode, so the three
 * spreads of it in every request are copies by offset (10 us each in dictionary mode, 1.6 us fast; tools/bench/README.md).
 * The layout is read with V8's `%HasFastProperties`, allowed for code compiled after `--allow-natives-syntax` is set.
 */
import { S3Client } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { Redacted } from "effect"
import * as v8 from "node:v8"
import { defaultS3StoreConfig, makeTrimmedClient, s3ClientOptions, withFastProperties } from "../src/index.ts"

v8.setFlagsFromString("--allow-natives-syntax")
const hasFastProperties = new Function("o", "return %HasFastProperties(o)") as (o: object) => boolean

const options = s3ClientOptions({
  ...defaultS3StoreConfig,
  bucket: "b",
  endpoint: "http://127.0.0.1:1",
  region: "us-east-1",
  accessKeyId: Redacted.make("AKIDEXAMPLE"),
  secretAccessKey: Redacted.make("not-a-secret")
})

describe("the store client's resolved config", () => {
  it("is a hash table in V8 as the SDK makes it: what the step is for", () => {
    const client = new S3Client(options)
    assert.isFalse(hasFastProperties(client.config), "the SDK's config is fast already: withFastProperties can go")
    client.destroy()
  })

  it("is in fast mode on the store's client, with the same properties and values", () => {
    const client = makeTrimmedClient(options)
    assert.isTrue(hasFastProperties(client.config))
    const plain = new S3Client(options)
    assert.deepStrictEqual(Object.keys(client.config).sort(), Object.keys(plain.config).sort())
    const config = client.config as unknown as Record<string, unknown>
    const kinds = (c: Record<string, unknown>) => Object.keys(c).sort().map((k) => `${k}: ${typeof c[k]}`)
    assert.deepStrictEqual(kinds(config), kinds(plain.config as unknown as Record<string, unknown>))
    assert.strictEqual(client.config.forcePathStyle, true)
    client.destroy()
    plain.destroy()
  })

  it("withFastProperties returns the same object, its properties untouched", () => {
    const object: Record<string, number> = {}
    for (let i = 0; i < 100; i++) object[`p${i}`] = i
    delete object["p0"]
    assert.isFalse(hasFastProperties(object))
    const before = { ...object }
    assert.strictEqual(withFastProperties(object), object)
    assert.isTrue(hasFastProperties(object))
    assert.deepStrictEqual({ ...object }, before)
    assert.strictEqual(Object.getPrototypeOf(object), Object.prototype)
  })
})

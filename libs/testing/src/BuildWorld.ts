/**
 * `buildWorld`: a generated `TableSpec` turned into a `World` (rows, large objects, bucket) plus the outcome a correct
 * migration must reach for every row.
 */
import type { RowFailureReason } from "@lo-migrate/core"
import { type ContentSpec, contentBytes, type HashMalformation, type TableSpec } from "./Arbitraries.ts"
import { sha1Hex, sha256Hex, World } from "./World.ts"

export type Expectation =
  | { readonly _tag: "Migrate"; readonly rowId: number; readonly sha256: string; readonly contentType: string | null }
  | {
    readonly _tag: "Fail"
    readonly rowId: number
    readonly hash: string
    readonly reason: RowFailureReason["_tag"]
  }
  | { readonly _tag: "Untouched"; readonly rowId: number; readonly sha2: string }

export interface BuiltWorld {
  readonly world: World
  readonly expectations: ReadonlyArray<Expectation>
}

const malform = (hash: string, how: HashMalformation): string => {
  switch (how) {
    case "short":
      return hash.slice(0, 39)
    case "upperNonHex":
      return "G" + hash.slice(1).toUpperCase()
    case "nonHex":
      return "z" + hash.slice(1)
    case "empty":
      return ""
    case "padded":
      // a short value in a char(40) column comes back padded with spaces
      return hash.slice(0, 30).padEnd(40, " ")
    case "long":
      return hash + "0"
  }
}

/**
 * Builds the world for a table spec and what must become of each row. Contents of distinct rows are made distinct
 * (a generated collision, e.g. two empty objects, is perturbed), so only `duplicate` rows share a hash.
 */
export const buildWorld = (spec: TableSpec): BuiltWorld => {
  const world = new World()
  const expectations: Array<Expectation> = []
  const usedHashes = new Set<string>()
  let lastValid: { bytes: Uint8Array; mimeType: string | null } | undefined

  const uniqueBytes = (content: ContentSpec): Uint8Array => {
    let c = content
    for (;;) {
      const bytes = contentBytes(c)
      const h = sha1Hex(bytes)
      if (!usedHashes.has(h)) {
        usedHashes.add(h)
        return bytes
      }
      c = { size: c.size + 1, seed: c.seed + 1 }
    }
  }

  const migrate = (bytes: Uint8Array, mimeType: string | null) => {
    const row = world.insertContent(bytes, mimeType)
    expectations.push({ _tag: "Migrate", rowId: row.id, sha256: sha256Hex(bytes), contentType: mimeType })
  }

  for (const r of spec.rows) {
    switch (r.kind) {
      case "valid": {
        const bytes = uniqueBytes(r.content)
        migrate(bytes, r.mimeType)
        lastValid = { bytes, mimeType: r.mimeType }
        break
      }
      case "upperCaseHash": {
        const bytes = uniqueBytes(r.content)
        const row = world.insertRow({
          hash: sha1Hex(bytes).toUpperCase(),
          oid: world.addLargeObject(bytes),
          size: bytes.byteLength,
          mimeType: r.mimeType
        })
        expectations.push({ _tag: "Migrate", rowId: row.id, sha256: sha256Hex(bytes), contentType: r.mimeType })
        break
      }
      case "duplicate": {
        if (lastValid === undefined) {
          const bytes = uniqueBytes({ size: 7, seed: 7 })
          migrate(bytes, "text/plain")
          lastValid = { bytes, mimeType: "text/plain" }
        } else {
          migrate(lastValid.bytes, lastValid.mimeType)
        }
        break
      }
      case "migrated": {
        const bytes = uniqueBytes(r.content)
        const sha2 = sha256Hex(bytes)
        const row = world.insertRow({
          hash: sha1Hex(bytes),
          oid: world.addLargeObject(bytes),
          size: bytes.byteLength,
          mimeType: r.mimeType,
          sha2
        })
        world.bucket.set(sha2, { bytes, contentType: r.mimeType, md5Base64: "" })
        expectations.push({ _tag: "Untouched", rowId: row.id, sha2 })
        break
      }
      case "malformedHash": {
        const bytes = uniqueBytes(r.content)
        const hash = malform(sha1Hex(bytes), r.malformation)
        const row = world.insertRow({ hash, oid: world.addLargeObject(bytes), size: bytes.byteLength, mimeType: r.mimeType })
        expectations.push({ _tag: "Fail", rowId: row.id, hash, reason: "MalformedHash" })
        break
      }
      case "nullOid": {
        const bytes = uniqueBytes(r.content)
        const hash = sha1Hex(bytes)
        const row = world.insertRow({ hash, oid: null, size: bytes.byteLength, mimeType: r.mimeType })
        expectations.push({ _tag: "Fail", rowId: row.id, hash, reason: "NullOid" })
        break
      }
      case "missingObject": {
        const bytes = uniqueBytes(r.content)
        const hash = sha1Hex(bytes)
        const oid = world.addLargeObject(bytes)
        world.largeObjects.delete(oid)
        const row = world.insertRow({ hash, oid, size: bytes.byteLength, mimeType: r.mimeType })
        expectations.push({ _tag: "Fail", rowId: row.id, hash, reason: "MissingLargeObject" })
        break
      }
      case "corrupt": {
        const bytes = uniqueBytes(r.content)
        const hash = sha1Hex(bytes)
        let stored: Uint8Array
        if (bytes.byteLength === 0) {
          stored = new Uint8Array([0x2a])
        } else {
          stored = bytes.slice()
          const i = Math.abs(r.content.seed) % stored.byteLength
          stored[i] = stored[i]! ^ 0xff
        }
        usedHashes.add(sha1Hex(stored))
        const row = world.insertRow({ hash, oid: world.addLargeObject(stored), size: bytes.byteLength, mimeType: r.mimeType })
        expectations.push({
          _tag: "Fail",
          rowId: row.id,
          hash,
          reason: stored.byteLength === bytes.byteLength ? "Sha1Mismatch" : "SizeMismatch"
        })
        break
      }
      case "sizeMismatch": {
        const bytes = uniqueBytes(r.content)
        const hash = sha1Hex(bytes)
        const size = bytes.byteLength + r.delta
        const row = world.insertRow({ hash, oid: world.addLargeObject(bytes), size, mimeType: r.mimeType })
        expectations.push({ _tag: "Fail", rowId: row.id, hash, reason: size < 0 ? "InvalidSize" : "SizeMismatch" })
        break
      }
    }
  }
  return { world, expectations }
}

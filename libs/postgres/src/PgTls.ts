/**
 * libpq's `sslmode` table as TLS options for `@effect/sql-pg` (which reads `sslmode` its own way: `require` verifies
 * everything there, and no `sslmode` is plaintext). Here each mode means what it means to psql and pg_dump:
 *
 * | sslmode | TLS | certificate chain | host name |
 * | --- | --- | --- | --- |
 * | disable | never | - | - |
 * | allow | plaintext first, TLS if the server rejects plaintext | only with a root certificate | no |
 * | prefer (libpq's default) | TLS first, plaintext if the server refuses TLS | only with a root certificate | no |
 * | require | always | only with a root certificate (then as verify-ca) | no |
 * | verify-ca | always | yes | no |
 * | verify-full | always | yes | yes |
 *
 * The root certificates are `sslrootcert`'s file (`PgUrl` defaults it to `~/.postgresql/root.crt` when that exists);
 * `system` means Node's trusted CAs plus `NODE_EXTRA_CA_CERTS`. A verify mode without any root certificate is refused,
 * as libpq refuses it. libpq allows `sslrootcert=system` only with `verify-full`, and so does this. The fallback of
 * `allow` / `prefer` is decided once per pool, when it first connects.
 */
import * as Redacted from "effect/Redacted"
import type { ConnectionOptions } from "node:tls"

export const sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const
export type SslMode = (typeof sslModes)[number]

export const isSslMode = (s: string): s is SslMode => (sslModes as ReadonlyArray<string>).includes(s)

/** A PEM file read at start-up, with the path it came from (for messages). */
export interface PemFile {
  readonly path: string
  readonly pem: string
}

export interface TlsInputs {
  readonly mode: SslMode
  /** `sslrootcert`: a file, `"system"`, or none. */
  readonly rootCert: PemFile | "system" | undefined
  /** `sslcert` + `sslkey`: the client certificate, or none. */
  readonly clientCert: { readonly cert: PemFile; readonly key: Redacted.Redacted<string> } | undefined
  /** `sslcrl`: revoked certificates, checked when the chain is verified. */
  readonly crl: PemFile | undefined
}

/** What each connection of a pool does: `false` is plaintext, options are TLS (required), without the client key. */
export type Transport = false | ConnectionOptions

export interface TlsPlan {
  readonly mode: SslMode
  /** What a connection tries first. */
  readonly first: Transport
  /** `prefer`: plaintext when the server refuses TLS; `allow`: TLS when the server rejects plaintext. */
  readonly fallback: Transport | undefined
  /** What is checked, for messages: "TLS, certificate chain checked against /ca.crt, host name not checked". */
  readonly checks: string
  /** The client certificate's private key, kept out of `first` / `fallback` so that no printed config shows it. */
  readonly clientKey: Redacted.Redacted<string> | undefined
}

/** `transport` with the plan's client key added: what the driver gets. */
export const withClientKey = (plan: TlsPlan, transport: Transport): Transport =>
  transport === false || plan.clientKey === undefined ? transport : { ...transport, key: Redacted.value(plan.clientKey) }

type Verification = "none" | "chain" | "full"

const verificationOf = (inputs: TlsInputs): Verification =>
  inputs.mode === "verify-full"
    ? "full"
    : inputs.mode === "verify-ca" || (inputs.rootCert !== undefined && inputs.rootCert !== "system")
    ? "chain"
    : "none"

const tlsOptions = (inputs: TlsInputs, verification: Verification): ConnectionOptions => ({
  ...(verification === "none"
    ? { rejectUnauthorized: false }
    : {
      rejectUnauthorized: true,
      ...(verification === "chain" ? { checkServerIdentity: () => undefined } : {}),
      ...(inputs.rootCert !== undefined && inputs.rootCert !== "system" ? { ca: inputs.rootCert.pem } : {}),
      ...(inputs.crl !== undefined ? { crl: inputs.crl.pem } : {})
    }),
  ...(inputs.clientCert !== undefined ? { cert: inputs.clientCert.cert.pem } : {})
})

const describe = (inputs: TlsInputs, verification: Verification): string => {
  const roots = inputs.rootCert === undefined || inputs.rootCert === "system"
    ? "Node's trusted CAs and NODE_EXTRA_CA_CERTS (sslrootcert=system)"
    : `sslrootcert ${inputs.rootCert.path}`
  const client = inputs.clientCert === undefined ? "" : `, client certificate ${inputs.clientCert.cert.path}`
  const crl = inputs.crl === undefined || verification === "none" ? "" : `, revocations from sslcrl ${inputs.crl.path}`
  const what = verification === "none"
    ? "certificate not verified"
    : verification === "chain"
    ? `certificate chain checked against ${roots}${crl}, host name not checked`
    : `certificate chain checked against ${roots}${crl} and host name checked`
  return `sslmode=${inputs.mode}: ${inputs.mode === "disable" ? "plaintext" : `TLS, ${what}${client}`}`
}

/** The plan for `inputs`, or the reason it is refused (the parameter at fault first). */
export const plan = (inputs: TlsInputs): TlsPlan | { readonly parameter: string; readonly detail: string } => {
  if (inputs.rootCert === "system" && inputs.mode !== "verify-full") {
    return {
      parameter: "sslmode",
      detail: `sslmode=${inputs.mode} may not be used with sslrootcert=system (use verify-full), as in libpq`
    }
  }
  if (inputs.rootCert === undefined && (inputs.mode === "verify-ca" || inputs.mode === "verify-full")) {
    return {
      parameter: "sslrootcert",
      detail: `sslmode=${inputs.mode} needs a root certificate (sslrootcert=<file> or sslrootcert=system), as in libpq`
    }
  }
  const verification = verificationOf(inputs)
  const tls = tlsOptions(inputs, verification)
  const checks = describe(inputs, verification)
  const clientKey = inputs.clientCert?.key
  switch (inputs.mode) {
    case "disable":
      return { mode: inputs.mode, first: false, fallback: undefined, checks, clientKey: undefined }
    case "allow":
      return { mode: inputs.mode, first: false, fallback: tls, checks, clientKey }
    case "prefer":
      return { mode: inputs.mode, first: tls, fallback: false, checks, clientKey }
    default:
      return { mode: inputs.mode, first: tls, fallback: undefined, checks, clientKey }
  }
}

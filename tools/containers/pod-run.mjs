// The pods of a Kubernetes Job of deploy/kubernetes as podman containers, for tools/containers/check.sh: what the
// manifest's pod template says, translated option by option, so that the image runs as the Job would run it.
//
//   npx node tools/containers/pod-run.mjs MANIFEST JOB INDEX WORKDIR IMAGE [NAME=VALUE ...]
//   npx node tools/containers/pod-run.mjs MANIFEST JOB completions        (prints the Job's number of pods)
//
// prints the arguments of `podman run` (one per line) for pod INDEX of the Job named JOB, and writes the pod's
// environment to WORKDIR/env (mode 0600: the Secret's values go there, never on a command line). The Secret's keys
// are read from the environment as POD_SECRET_<KEY> (the key upper-cased, `-` as `_`); NAME=VALUE replaces a plain
// value of the manifest (the endpoints of this machine instead of the examples'). Kubernetes' side of the translation:
// - JOB_COMPLETION_INDEX=INDEX, as the Job controller sets it; the container's `args` after the image;
// - the pod's network namespace: slirp4netns with the host's loopback reachable at 10.0.2.2 (each pod has its own
//   ports, as pods have their own IP); the Secret's URLs and the NAME=VALUE overrides point there;
// - securityContext: runAsUser/runAsGroup (--user), readOnlyRootFilesystem (--read-only, and no tmpfs of podman's own
//   on /tmp, /run, /var/tmp: only the pod's volumes are writable), capabilities drop ALL, allowPrivilegeEscalation
//   false (no-new-privileges);
// - volumes: an emptyDir of medium Memory is a tmpfs of its sizeLimit (mode 1777); any other emptyDir a directory under WORKDIR
//   owned by fsGroup (its sizeLimit, which the kubelet enforces by eviction, is not enforced here);
// - resources.limits.memory: --memory (the cgroup limit; the container is killed beyond it, as the kubelet would);
// - terminationGracePeriodSeconds: --stop-timeout.
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { parseAllDocuments } from "yaml"

const [manifest, jobName, indexText, workdir, image, ...overrides] = process.argv.slice(2)
const fail = (message) => {
  console.error(`pod-run: ${message}`)
  process.exit(2)
}
const usage = "usage: pod-run.mjs MANIFEST JOB INDEX WORKDIR IMAGE [NAME=VALUE ...] | MANIFEST JOB completions"
if (indexText === undefined || (indexText !== "completions" && image === undefined)) fail(usage)

const job = parseAllDocuments(readFileSync(manifest, "utf8"))
  .map((d) => d.toJS())
  .find((d) => d?.kind === "Job" && d?.metadata?.name === jobName)
if (job === undefined) fail(`no Job ${jobName} in ${manifest}`)
if (indexText === "completions") {
  process.stdout.write(`${job.spec.completions}\n`)
  process.exit(0)
}
const index = Number(indexText)
if (!Number.isInteger(index) || index < 0 || index >= job.spec.completions) {
  fail(`index ${indexText} is not below the Job's completions (${job.spec.completions})`)
}
const pod = job.spec.template.spec
if (pod.containers.length !== 1) fail(`pod-run translates pods of one container, ${jobName} has ${pod.containers.length}`)
const container = pod.containers[0]

const replaced = new Map(overrides.map((o) => {
  const at = o.indexOf("=")
  if (at < 1) fail(`an override is NAME=VALUE, got ${o}`)
  return [o.slice(0, at), o.slice(at + 1)]
}))

const env = [`JOB_COMPLETION_INDEX=${index}`]
for (const e of container.env ?? []) {
  if (e.value !== undefined) {
    env.push(`${e.name}=${replaced.has(e.name) ? replaced.get(e.name) : e.value}`)
    replaced.delete(e.name)
  } else if (e.valueFrom?.secretKeyRef !== undefined) {
    const variable = `POD_SECRET_${e.valueFrom.secretKeyRef.key.toUpperCase().replaceAll("-", "_")}`
    const value = process.env[variable]
    if (value === undefined) fail(`${e.name} comes from the Secret's key ${e.valueFrom.secretKeyRef.key}: set ${variable}`)
    env.push(`${e.name}=${value}`)
  } else {
    fail(`${e.name}: only value and secretKeyRef are translated`)
  }
}
if (replaced.size > 0) fail(`the manifest sets no plain value for ${[...replaced.keys()].join(", ")}`)
mkdirSync(workdir, { recursive: true })
const envFile = join(workdir, "env")
writeFileSync(envFile, env.map((l) => `${l}\n`).join(""), { mode: 0o600 })
chmodSync(envFile, 0o600)

/** A Kubernetes quantity (Mi, Gi) in bytes. */
const bytes = (quantity) => {
  const m = /^(\d+)(Mi|Gi)$/.exec(String(quantity))
  if (m === null) fail(`quantity ${quantity} is not NNMi or NNGi`)
  return Number(m[1]) * 1024 * 1024 * (m[2] === "Gi" ? 1024 : 1)
}

const security = pod.securityContext ?? {}
const containerSecurity = container.securityContext ?? {}
const args = [
  "--name", `${jobName}-${index}`,
  "--env-file", envFile,
  "--network", "slirp4netns:allow_host_loopback=true"
]
if (security.runAsUser !== undefined) args.push("--user", `${security.runAsUser}:${security.runAsGroup ?? security.runAsUser}`)
if (containerSecurity.readOnlyRootFilesystem === true) args.push("--read-only", "--read-only-tmpfs=false")
for (const capability of containerSecurity.capabilities?.drop ?? []) args.push("--cap-drop", capability)
if (containerSecurity.allowPrivilegeEscalation === false) args.push("--security-opt", "no-new-privileges")
for (const mount of container.volumeMounts ?? []) {
  const volume = (pod.volumes ?? []).find((v) => v.name === mount.name)
  if (volume?.emptyDir === undefined) fail(`volume ${mount.name}: only emptyDir is translated`)
  if (volume.emptyDir.medium === "Memory") {
    const size = volume.emptyDir.sizeLimit === undefined ? "" : `,tmpfs-size=${bytes(volume.emptyDir.sizeLimit)}`
    args.push("--mount", `type=tmpfs,destination=${mount.mountPath}${size},tmpfs-mode=1777`)
  } else {
    const dir = join(workdir, "volumes", mount.name)
    mkdirSync(dir, { recursive: true })
    if (security.fsGroup !== undefined) chownSync(dir, security.runAsUser ?? 0, security.fsGroup)
    args.push("-v", `${dir}:${mount.mountPath}`)
  }
}
const memory = container.resources?.limits?.memory
if (memory !== undefined) args.push("--memory", String(bytes(memory)))
if (pod.terminationGracePeriodSeconds !== undefined) args.push("--stop-timeout", String(pod.terminationGracePeriodSeconds))
args.push(image, ...(container.args ?? []))
process.stdout.write(args.map((a) => `${a}\n`).join(""))

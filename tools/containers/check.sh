#!/usr/bin/env bash
# The container check (.ci/run calls it; see the README's "Docker" section): with Debian's podman as the engine and
# images built locally (no registry is reachable here), it
#   1. builds docker/Dockerfile unchanged on stand-in base images (images.sh) and reports the image's size;
#   2. runs the image against the real PostgreSQL (PG_TEST_URL) and S3 server (S3_ENDPOINT, e.g. the Ceph RGW of
#      `npm test`): --help, a bad option's exit code, the non-root user, and a migration of the seeded sample
#      _nice_binary (docker/initdb) whose rows and objects are then verified;
#   3. runs the pods of both Jobs of deploy/kubernetes as containers translated from the manifests (run-kubernetes.sh);
#   4. runs tools/containers/test (testcontainers through podman's Docker API socket);
#   5. brings up docker/compose.yml from local images (compose.check.yml swaps in the stand-ins) and checks that the
#      migration inside completes.
# It removes everything it created: containers, images, volumes, networks, its podman storage, the API service (by
# its PID), the throwaway database and buckets. Prints "[containers] ok/FAILED ..." per check and writes
# "N passed, N failed" to $CONTAINER_COUNTS_FILE when set. Needs root (podman as root, apt-get, debootstrap).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
work="${CONTAINER_WORK:-/tmp/lo-migrate-containers}"
base_image=localhost/lo-migrate-standin/debian:bookworm-slim
node_image=localhost/node:24-bookworm-slim
pg_image=localhost/lo-migrate-standin/postgres:15
ceph_image=localhost/lo-migrate-standin/ceph-rgw:16
app_image=localhost/lo-migrate:check
started_at=$SECONDS
passed=0
failed=0
step() { printf '[containers %3d s] %s\n' "$((SECONDS - started_at))" "$*"; }
ok() { passed=$((passed + 1)); step "ok: $*"; }
bad() { failed=$((failed + 1)); step "FAILED: $*"; }
die() { bad "$*"; exit 1; }
# shellcheck source=images.sh
source "$here/images.sh"

(( EUID == 0 )) || { echo "tools/containers/check.sh needs root (podman as root, apt-get, debootstrap)" >&2; exit 2; }
for name in S3_ENDPOINT S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY; do
  [[ -n "${!name:-}" ]] || { echo "$name is not set: start the S3 server first: set -a; eval \"\$(bash tools/s3/ceph-rgw.sh start)\"; set +a" >&2; exit 2; }
done
pg_admin="${PG_TEST_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
run_id="$$_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
database="lomc_$run_id"
buckets=()
service_pid=""
created_buildah_cache=0
[[ -e /var/tmp/buildah-cache ]] || created_buildah_cache=1
if [[ -e "$work" ]]; then
  # Left by a check that was killed before its cleanup: remove it unless that check still runs.
  if [[ -f "$work/check.pid" ]] && kill -0 "$(<"$work/check.pid")" 2>/dev/null; then
    echo "another container check (pid $(<"$work/check.pid")) uses $work" >&2; exit 2
  fi
  umount -R "$work/storage/overlay" 2>/dev/null
  rm -rf "$work" || { echo "could not remove the stale $work" >&2; exit 2; }
fi

cleanup() {
  local rc=$?
  step "cleaning up"
  [[ -n "$service_pid" ]] && kill "$service_pid" 2>/dev/null && wait "$service_pid" 2>/dev/null
  if [[ -f "$work/storage.conf" ]]; then
    podman-compose -p lo-migrate-check -f docker/compose.yml -f "$here/compose.check.yml" down -v >/dev/null 2>&1
    podman rm -af -t 5 >/dev/null 2>&1
    podman volume rm -af >/dev/null 2>&1
    podman network rm -f lo-migrate-check_default >/dev/null 2>&1
    podman rmi -af >/dev/null 2>&1
    # Exec sessions through the Docker API can leave their conmon behind once the container is gone: only those of
    # this check's storage (their command line names $work), by PID; they run a `podman container cleanup` as they
    # exit, so wait for them before the storage is removed.
    local pids=() pid
    for pid in $(pgrep -x conmon); do
      tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$work/storage" && pids+=("$pid")
    done
    (( ${#pids[@]} > 0 )) && kill "${pids[@]}" 2>/dev/null
    for _ in $(seq 1 50); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      (( alive )) || break
      sleep 0.2
    done
    sleep 1
  fi
  for b in "${buckets[@]}"; do npx node "$here/s3-bucket.mjs" delete "$b" >/dev/null 2>&1; done
  psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1
  psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS $database${k8s_db_suffix:-_k8s} WITH (FORCE)" >/dev/null 2>&1
  psql -q "$pg_admin" -c "DROP ROLE IF EXISTS ${k8s_role:-lomc_verify_$run_id}" >/dev/null 2>&1
  (( created_buildah_cache )) && rm -rf /var/tmp/buildah-cache
  umount -R "$work/storage/overlay" 2>/dev/null
  rm -rf "$work" || bad "could not remove $work"
  step "done: $passed passed, $failed failed checks in $((SECONDS - started_at)) s"
  [[ -n "${CONTAINER_COUNTS_FILE:-}" ]] && printf '%s passed, %s failed\n' "$passed" "$((failed + (rc != 0 && failed == 0)))" >"$CONTAINER_COUNTS_FILE"
  exit $(( rc != 0 || failed > 0 ))
}
trap cleanup EXIT
mkdir -p "$work"
echo $$ >"$work/check.pid"

install_container_tools
setup_podman
build_images
ok "images built: $app_image is $(( $(podman image inspect "$app_image" --format '{{.Size}}') / 1000000 )) MB"

# shellcheck source=run-image.sh
source "$here/run-image.sh"
check_image

# shellcheck source=run-kubernetes.sh
source "$here/run-kubernetes.sh"
check_kubernetes

# shellcheck source=run-testcontainers.sh
source "$here/run-testcontainers.sh"
check_testcontainers

# shellcheck source=run-compose.sh
source "$here/run-compose.sh"
check_compose

# shellcheck shell=bash
# Sourced by check.sh: podman's Docker-compatible API on a socket of its own (stopped by its PID in check.sh's
# cleanup), and the testcontainers test of tools/containers/test run through it. Ryuk (testcontainers' reaper) is
# off: its image cannot be pulled here; the test removes its containers itself and check.sh removes any leftover.

free_port() { npx node -e 'const s=require("node:net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

check_testcontainers() {
  step "podman system service on $work/podman.sock"
  podman system service --time=0 "unix://$work/podman.sock" >"$work/podman-service.log" 2>&1 &
  service_pid=$!
  for _ in $(seq 1 50); do [[ -S "$work/podman.sock" ]] && break; sleep 0.2; done
  [[ -S "$work/podman.sock" ]] || { bad "podman system service did not create its socket"; return; }
  local bucket="lomt-${run_id//_/-}"
  buckets+=("$bucket")
  npx node "$here/s3-bucket.mjs" create "$bucket" || { bad "could not create bucket $bucket"; return; }
  if DOCKER_HOST="unix://$work/podman.sock" TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 \
    TC_PG_IMAGE="$pg_image" TC_APP_IMAGE="$app_image" TC_PG_PORT="$(free_port)" TC_BUCKET="$bucket" \
    NO_COLOR=1 npx vitest run --root "$here" --config "$here/vitest.config.ts" >"$work/testcontainers.log" 2>&1; then
    ok "testcontainers: $(grep -oE 'Tests +[0-9]+ passed' "$work/testcontainers.log" | head -1 | tr -s ' ') (PostgreSQL container migrated by the image)"
  else
    bad "testcontainers test failed; last lines:$(printf '\n'; grep -v '^\s*$' "$work/testcontainers.log" | tail -n 15)"
  fi
}

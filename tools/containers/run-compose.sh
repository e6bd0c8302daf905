# shellcheck shell=bash
# Sourced by check.sh: docker/compose.yml brought up with podman-compose from the local images (compose-check.py
# swaps them in), in order - PostgreSQL and the S3 server, then create-bucket, then the migrator - and the migration
# inside checked in the compose PostgreSQL. Everything is removed by `down -v` and check.sh's cleanup.

check_compose() {
  local project=lo-migrate-check compose_file="$work/compose.yml" rc
  python3 "$here/compose-check.py" docker/compose.yml "$compose_file" "$pg_image" "$ceph_image" "$app_image" ||
    { bad "could not write the check's compose file"; return; }
  pc() { podman-compose -p "$project" -f "$compose_file" "$@"; }
  # podman-compose 1.0.3's `run` exits 0 whatever the container did: run a one-shot service under a known name and
  # read its exit code from podman. Prints the exit code.
  run_once() {
    local name="${project}_$1_check"
    pc run --name "$name" "$1" >"$2" 2>&1
    podman wait "$name" 2>/dev/null | tail -n 1
    podman rm -f "$name" >/dev/null 2>&1
  }
  step "podman-compose up: postgres, s3 (Ceph RGW stand-in)"
  pc up -d postgres s3 >"$work/compose.log" 2>&1 || { bad "podman-compose up postgres s3 failed"; return; }
  step "podman-compose run create-bucket (waits for the gateway)"
  rc="$(run_once create-bucket "$work/compose-bucket.log")"
  [[ "$rc" == 0 ]] || { bad "create-bucket exited $rc; last lines:$(printf '\n'; tail -n 10 "$work/compose-bucket.log")"; return; }
  step "podman-compose run migrator"
  rc="$(run_once migrator "$work/compose-migrator.log")"
  if [[ "$rc" == 1 ]] && grep -q "3 row(s) failed" "$work/compose-migrator.log"; then
    ok "compose: the migrator exits 1, reporting the sample's 3 invalid rows"
  else
    bad "compose: the migrator exited $rc (expected 1); last lines:$(printf '\n'; tail -n 10 "$work/compose-migrator.log")"
  fi
  local counts
  counts="$(podman exec "${project}_postgres_1" psql -U app -d nice -qAt -c "SELECT count(*) FILTER (WHERE sha2 IS NOT NULL),
    count(*) FILTER (WHERE sha2 IS NULL), count(*) FILTER (WHERE sha2 <> encode(digest(lo_get(data), 'sha256'), 'hex'))
    FROM _nice_binary" 2>&1)"
  if [[ "$counts" == "300|3|0" ]]; then ok "compose: 300 rows migrated with the right SHA-256, 3 invalid rows left"
  else bad "compose: rows migrated|pending|wrong = $counts, expected 300|3|0"; fi
  pc down -v >>"$work/compose.log" 2>&1 || bad "podman-compose down -v failed"
  podman network rm -f "${project}_default" >/dev/null 2>&1
}

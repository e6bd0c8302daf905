#!/usr/bin/env bash
# The benchmark harness (tools/bench/src/main.ts) with its servers:
#   bash tools/bench/bench.sh [--quick] [options]      (--help lists the options)
# PostgreSQL: $PG_TEST_URL (default postgres://postgres@127.0.0.1:5432/postgres; the bench creates and drops its own
# database there). S3: $S3_ENDPOINT + S3_ACCESS_KEY_ID + S3_SECRET_ACCESS_KEY, else the throwaway Ceph RADOS Gateway of
# tools/s3/ceph-rgw.sh is started (idempotent; left running, as the test runner does with KEEP_CEPH=1).
# Runs on the repository's Node 24 (through npx), whatever `node` is on PATH.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
log() { printf '[bench.sh] %s\n' "$*" >&2; }

export PG_TEST_URL="${PG_TEST_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if command -v pg_isready >/dev/null && ! pg_isready -q -d "$PG_TEST_URL" 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    log "PostgreSQL is down: starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 50); do pg_isready -q -d "$PG_TEST_URL" && break; sleep 0.2; done
  fi
fi

if [[ -z "${S3_ENDPOINT:-}" ]]; then
  log "S3_ENDPOINT is unset: starting Ceph RADOS Gateway (tools/s3/ceph-rgw.sh start)"
  if ceph_env=$(bash tools/s3/ceph-rgw.sh start); then
    set -a; eval "$ceph_env"; set +a
  else
    log "could not start Ceph RGW: the S3 measurements will be skipped"
  fi
fi

# The migrator is measured as it is shipped: built (tsc, cached by Nx), started from dist/ like `nx run migrator:start`.
log "building the migrator (npx nx run migrator:build)"
npx --no-install nx run migrator:build --outputStyle=static >/dev/null || { log "build failed"; exit 1; }
exec npx --no-install node --conditions=development tools/bench/src/main.ts "$@"

#!/usr/bin/env bash
# The project's entry point for the throwaway Ceph RADOS Gateway that S3 tests run against (the production target).
#   tools/s3/ceph-rgw.sh start   -> prints KEY=VALUE lines (S3_ENDPOINT, S3_ACCESS_KEY_ID, ...) on stdout
#   tools/s3/ceph-rgw.sh stop
# It delegates to the shared, proven scripts beside the repository (../shared/s3), found relative to the repo root or
# through $LO_MIGRATE_SHARED. Data lives in $CEPH_DIR (default /tmp/lo-migrate-ceph).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
shared="${LO_MIGRATE_SHARED:-$root/../shared}"
[[ -x "$shared/s3/start-ceph-rgw.sh" || -f "$shared/s3/start-ceph-rgw.sh" ]] ||
  { echo "ceph-rgw.sh: $shared/s3/start-ceph-rgw.sh not found (set LO_MIGRATE_SHARED)" >&2; exit 1; }
case "${1:-start}" in
  start) exec bash "$shared/s3/start-ceph-rgw.sh" "${CEPH_DIR:-/tmp/lo-migrate-ceph}" ;;
  stop) exec bash "$shared/s3/stop-ceph-rgw.sh" "${CEPH_DIR:-/tmp/lo-migrate-ceph}" ;;
  *) echo "usage: ceph-rgw.sh start|stop" >&2; exit 2 ;;
esac

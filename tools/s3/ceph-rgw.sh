#!/usr/bin/env bash
# The project's throwaway Ceph RADOS Gateway for tests (the production target's S3 server), on 127.0.0.1 only.
#   tools/s3/ceph-rgw.sh start        installs Debian's Ceph if missing, starts the cluster (idempotent) and prints
#                                     S3_ENDPOINT, S3_ACCESS_KEY_ID, ... as KEY=VALUE lines on stdout
#   tools/s3/ceph-rgw.sh stop [--wipe]  stops it by its recorded PIDs (--wipe: also removes its directory)
#   tools/s3/ceph-rgw.sh install      only installs Debian's Ceph packages if they are missing
#   tools/s3/ceph-rgw.sh status       exits 0 when all three daemons run, printing their PIDs
#   tools/s3/ceph-rgw.sh gc           reclaims the space of deleted objects now: the gateway's own GC does it a minute or
#                                     two after the delete, and back-to-back runs of GiBs can fill the 10 GiB OSD first
# Data, logs and PIDs live in $CEPH_DIR (default /tmp/lo-migrate-ceph); ports etc.: see ceph-common.sh.
# Use: set -a; eval "$(bash tools/s3/ceph-rgw.sh start)"; set +a
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-start}" in
  start) exec bash "$here/ceph-start.sh" ;;
  install) exec bash "$here/ceph-install.sh" ;;
  stop)
    bash "$here/ceph-stop.sh"
    if [[ "${2:-}" == --wipe ]]; then
      source "$here/ceph-common.sh"
      [[ -f "$ceph_dir/settings.env" ]] && rm -rf "$ceph_dir" && say "removed $ceph_dir"
    fi
    ;;
  status)
    source "$here/ceph-common.sh"
    for name in "${ceph_daemons[@]}"; do
      pid="$(ceph_pid "$name")" || { echo "$name: not running ($ceph_dir)"; exit 1; }
      echo "$name: pid $pid"
    done
    ;;
  gc)
    source "$here/ceph-common.sh"
    ceph_pid rgw >/dev/null || { echo "rgw: not running ($ceph_dir)" >&2; exit 1; }
    timeout 600 radosgw-admin gc process --include-all >/dev/null || fail "radosgw-admin gc process failed"
    say "deleted objects' space reclaimed"
    ;;
  *) echo "usage: ceph-rgw.sh start | stop [--wipe] | status | install | gc" >&2; exit 2 ;;
esac

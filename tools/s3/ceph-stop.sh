#!/usr/bin/env bash
# Stops the test cluster that ceph-start.sh started in $CEPH_DIR, by the PIDs it recorded: a PID is signalled only
# while /proc says it is the expected Ceph binary run with this cluster's config. SIGTERM, then SIGKILL after
# CEPH_STOP_SECONDS (default 30). The gateway goes first, the monitor last. The data stays (a later start reuses it);
# `ceph-rgw.sh stop --wipe` also removes $CEPH_DIR. Exits 0 when nothing of the cluster is left running.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ceph-common.sh
source "$here/ceph-common.sh"
[[ -d "$ceph_dir/pids" ]] || { say "nothing to stop in $ceph_dir"; exit 0; }
grace="${CEPH_STOP_SECONDS:-30}"
rc=0
for name in rgw osd mon; do
  if ! pid="$(ceph_pid "$name")"; then rm -f "$ceph_dir/pids/$name"; continue; fi
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) still running after ${grace} s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    sleep 0.2
    kill -0 "$pid" 2>/dev/null && { say "$name (pid $pid) survived SIGKILL"; rc=1; }
  fi
  say "stopped $name (pid $pid)"
  rm -f "$ceph_dir/pids/$name"
done
exit $rc

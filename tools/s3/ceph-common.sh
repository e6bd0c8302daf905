# shellcheck shell=bash
# Sourced by ceph-start.sh and ceph-stop.sh: where the throwaway test cluster lives, its settings, and how its daemons
# are found by their recorded PIDs. Not run on its own.
#
# Settings (environment). They are fixed when the cluster is first created and kept in $CEPH_DIR/settings.env
# (the monitor's address is part of the cluster), so a later start uses the recorded ones:
#   CEPH_DIR=/tmp/lo-migrate-ceph   RGW_PORT=17480   MON_PORT=13300 (msgr v2; v1 is MON_PORT+1)
#   RGW_ADDRESS=127.0.0.1 (the gateway's listening address; only the Ceph container image sets 0.0.0.0)
#   OSD_PORT_MIN=16800  OSD_PORT_MAX=16899   BLUESTORE_BYTES=10737418240 (sparse file)
#   S3_USER, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY: the fixed test user (throwaway, loopback-only credentials)
#   CEPH_WAIT_SECONDS=120 (each wait)   CEPH_INSTALL=1 (0: fail instead of installing missing packages)

# Paths of the cluster in $CEPH_DIR, absolute once the directory exists (ceph-start.sh calls this again after mkdir).
ceph_paths() {
  ceph_dir="${CEPH_DIR:-/tmp/lo-migrate-ceph}"
  [[ -d "$ceph_dir" ]] && ceph_dir="$(cd "$ceph_dir" && pwd)"
  ceph_conf="$ceph_dir/ceph.conf"
  ceph_settings="$ceph_dir/settings.env"
  export CEPH_CONF="$ceph_conf"
}
ceph_paths

# The daemons: a name (for the PID file and logs), the binary, and the arguments after `-c CONF`.
ceph_daemons=(mon osd rgw)
declare -A ceph_bin=([mon]=ceph-mon [osd]=ceph-osd [rgw]=radosgw)
declare -A ceph_args=([mon]="-i a" [osd]="-i 0" [rgw]="-n client.rgw.test")

say() { printf '[ceph-rgw] %s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }

# The PID recorded for daemon $1, if that process is alive and is that binary run with this cluster's config.
ceph_pid() {
  local file="$ceph_dir/pids/$1" pid cmdline
  [[ -s "$file" ]] || return 1
  pid="$(<"$file")"
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
  [[ "$cmdline" == "${ceph_bin[$1]} -c $ceph_conf "* ]] || return 1
  printf '%s\n' "$pid"
}

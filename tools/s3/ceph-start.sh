#!/usr/bin/env bash
# Starts the throwaway single-node Ceph cluster that the S3 tests run against (Ceph 16 "pacific" from Debian 12, the
# production target): one monitor, one OSD on BlueStore in a sparse file, and a RADOS Gateway (beast frontend) on
# 127.0.0.1 only, with cephx off and a fixed test user. No ceph-mgr: the gateway does not need one.
#
# Idempotent: installs Debian's packages when they are missing, creates the cluster on first use, starts only the
# daemons that are not running, makes sure the test user exists, waits until the gateway answers, then prints the
# client settings as KEY=VALUE lines on stdout (also kept in $CEPH_DIR/s3.env). Progress goes to stderr.
# Settings: see ceph-common.sh. Stop with ceph-stop.sh (or `ceph-rgw.sh stop`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ceph-common.sh
source "$here/ceph-common.sh"
started_at=$SECONDS

# ---- packages -------------------------------------------------------------------------------------------------------
bash "$here/ceph-install.sh"

# ---- settings -------------------------------------------------------------------------------------------------------
mkdir -p "$ceph_dir"
ceph_paths
# Unix socket paths (admin sockets in $ceph_dir/run) must stay below 108 bytes.
(( ${#ceph_dir} <= 80 )) || fail "CEPH_DIR is too long for Ceph's admin sockets (${#ceph_dir} > 80 characters): $ceph_dir"
if [[ ! -f "$ceph_settings" ]]; then
  cat >"$ceph_settings.new" <<EOF
FSID=$(cat /proc/sys/kernel/random/uuid)
RGW_PORT=${RGW_PORT:-17480}
RGW_ADDRESS=${RGW_ADDRESS:-127.0.0.1}
MON_PORT=${MON_PORT:-13300}
OSD_PORT_MIN=${OSD_PORT_MIN:-16800}
OSD_PORT_MAX=${OSD_PORT_MAX:-16899}
BLUESTORE_BYTES=${BLUESTORE_BYTES:-10737418240}
S3_USER=${S3_USER:-lo-migrate-test}
S3_ACCESS_KEY_ID=${S3_ACCESS_KEY_ID:-TESTACCESSKEY0000001}
S3_SECRET_ACCESS_KEY=${S3_SECRET_ACCESS_KEY:-testsecretkey0000000000000000000000000001}
EOF
  mv "$ceph_settings.new" "$ceph_settings"
fi
for name in RGW_PORT RGW_ADDRESS MON_PORT OSD_PORT_MIN OSD_PORT_MAX; do
  wanted="${!name:-}"
  # shellcheck disable=SC1090
  recorded="$(source "$ceph_settings"; printf '%s' "${!name}")"
  [[ -z "$wanted" || "$wanted" == "$recorded" ]] ||
    fail "$ceph_dir was created with $name=$recorded, not $wanted: stop it and remove $ceph_dir, or use another CEPH_DIR"
done
# shellcheck disable=SC1090
source "$ceph_settings"
wait_seconds="${CEPH_WAIT_SECONDS:-120}"
mkdir -p "$ceph_dir"/{mon,osd,rgw,run,log,pids}

# The configuration is written anew on every start from the recorded settings.
cat >"$ceph_conf" <<EOF
# Throwaway test cluster written by lo-migrate's tools/s3/ceph-start.sh: loopback only, no authentication.
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT + 1))]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind port min = $OSD_PORT_MIN
ms bind port max = $OSD_PORT_MAX
auth cluster required = none
auth service required = none
auth client required = none
# radosgw asks for a "secure" monitor connection by default, which no-auth cannot give (it would retry forever)
ms mon client mode = crc secure
keyring = $ceph_dir/keyring
run dir = $ceph_dir/run
admin socket = $ceph_dir/run/\$name.asok
log file = $ceph_dir/log/\$name.log
log to stderr = false
crash dir = $ceph_dir/log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
# there is no ceph-mgr: keep "no mgr" out of the health status
mon mgr mkfs grace = 315360000
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $ceph_dir/mon/\$id
# one monitor: commit map changes quickly (pool creation is much faster than with the 1 s default)
paxos propose interval = 0.05

[osd]
osd data = $ceph_dir/osd/\$id
osd objectstore = bluestore
bluestore block create = true
bluestore block size = $BLUESTORE_BYTES
osd memory target = 1073741824

[client.rgw.test]
# without tcp_nodelay small responses wait ~40 ms for the delayed ACK
rgw frontends = beast endpoint=$RGW_ADDRESS:$RGW_PORT tcp_nodelay=1
rgw data = $ceph_dir/rgw
rgw dns name = localhost
# deleted objects' data is reclaimed after a minute (default: hours)
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF

# ---- helpers --------------------------------------------------------------------------------------------------------
ceph_cli() { timeout 20 ceph --connect-timeout 10 "$@"; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
require_free() {
  local port
  for port in "$@"; do
    ! port_in_use "$port" || fail "127.0.0.1:$port is in use by another process (another cluster?): choose other ports"
  done
}
start_daemon() { # name [extra args]: started in its own session, in the foreground (-f) so $! is the daemon itself
  local name=$1 pid
  if pid="$(ceph_pid "$name")"; then say "$name is running (pid $pid)"; return; fi
  # shellcheck disable=SC2086
  setsid "${ceph_bin[$name]}" -c "$ceph_conf" ${ceph_args[$name]} -f </dev/null >>"$ceph_dir/log/$name.out" 2>&1 &
  echo $! >"$ceph_dir/pids/$name"
  say "started $name (pid $!)"
}
wait_until() { # description command...
  local what=$1 deadline=$((SECONDS + wait_seconds))
  shift
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || fail "$what: not reached within ${wait_seconds} s (logs: $ceph_dir/log)"
    sleep 0.2
  done
  say "$what ($((SECONDS - started_at)) s)"
}
gateway_answers() ( # HTTP 200 on GET / (anonymous ListBuckets), with bash alone
  exec 3<>"/dev/tcp/127.0.0.1/$RGW_PORT"
  printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  IFS= read -r -t 5 status <&3
  [[ "$status" == "HTTP/1."?" 200"* ]]
)
osd_is_up() { [[ "$(ceph_cli osd stat -f json)" == *'"num_up_osds":1'* ]]; }
health_ok() { [[ "$(ceph_cli health)" == HEALTH_OK* ]]; }
on_failure() {
  local f
  for f in "$ceph_dir"/log/*.out; do [[ -s "$f" ]] && { say "--- last lines of $f"; tail -n 10 "$f" >&2; }; done
  return 0
}
trap 'rc=$?; (( rc == 0 )) || on_failure' EXIT

# ---- monitor --------------------------------------------------------------------------------------------------------
if [[ ! -f "$ceph_dir/mon/a/store.db/CURRENT" ]]; then
  say "creating the cluster in $ceph_dir (monitor 127.0.0.1:$MON_PORT, gateway 127.0.0.1:$RGW_PORT)"
  require_free "$MON_PORT" "$((MON_PORT + 1))" "$RGW_PORT"
  rm -rf "$ceph_dir/mon/a" "$ceph_dir/osd/0" "$ceph_dir/pools.created"
  ceph-authtool --create-keyring "$ceph_dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --clobber --fsid "$FSID" \
    --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$((MON_PORT + 1))]" "$ceph_dir/monmap" >/dev/null
  ceph-mon -c "$ceph_conf" --mkfs -i a --monmap "$ceph_dir/monmap" --keyring "$ceph_dir/keyring" \
    >>"$ceph_dir/log/mon.out" 2>&1 || fail "ceph-mon --mkfs failed"
fi
ceph_pid mon >/dev/null || require_free "$MON_PORT" "$((MON_PORT + 1))"
start_daemon mon
wait_until "monitor in quorum" ceph_cli mon stat

# ---- OSD ------------------------------------------------------------------------------------------------------------
if [[ ! -f "$ceph_dir/osd/0/created" ]]; then
  say "creating osd.0 (BlueStore in a sparse file of $BLUESTORE_BYTES bytes)"
  rm -rf "$ceph_dir/osd/0" && mkdir -p "$ceph_dir/osd/0"
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  [[ "$(ceph_cli osd new "$osd_uuid" 0)" == 0 ]] || fail "the monitor did not register osd.0"
  ceph-osd -c "$ceph_conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$ceph_dir/log/osd.out" 2>&1 ||
    fail "ceph-osd --mkfs failed"
  touch "$ceph_dir/osd/0/created"
fi
start_daemon osd
wait_until "osd.0 up" osd_is_up

# ---- gateway --------------------------------------------------------------------------------------------------------
# Its pools, made beforehand: the gateway starts sooner and the first requests do not each wait for a pool.
if [[ ! -f "$ceph_dir/pools.created" ]]; then
  for pool in .rgw.root default.rgw.control default.rgw.meta default.rgw.log default.rgw.buckets.index \
    default.rgw.buckets.data default.rgw.buckets.non-ec; do
    ceph_cli osd pool create "$pool" 8 8 >/dev/null 2>&1 || fail "could not create pool $pool"
    ceph_cli osd pool application enable "$pool" rgw >/dev/null 2>&1 || fail "could not tag pool $pool for rgw"
  done
  touch "$ceph_dir/pools.created"
  say "gateway pools created ($((SECONDS - started_at)) s)"
fi
ceph_pid rgw >/dev/null || require_free "$RGW_PORT"
start_daemon rgw
wait_until "gateway answers on 127.0.0.1:$RGW_PORT" gateway_answers

user_info="$(radosgw-admin user info --uid="$S3_USER" 2>/dev/null || true)"
if [[ -z "$user_info" ]]; then
  radosgw-admin user create --uid="$S3_USER" --display-name="lo-migrate tests" \
    --access-key="$S3_ACCESS_KEY_ID" --secret-key="$S3_SECRET_ACCESS_KEY" >/dev/null || fail "could not create the S3 user"
  say "created S3 user $S3_USER"
elif [[ "$user_info" != *"\"access_key\": \"$S3_ACCESS_KEY_ID\""* ]]; then
  radosgw-admin key create --uid="$S3_USER" --key-type=s3 \
    --access-key="$S3_ACCESS_KEY_ID" --secret-key="$S3_SECRET_ACCESS_KEY" >/dev/null || fail "could not add the S3 key"
  say "added the test access key to $S3_USER"
fi
# A read-only key of the same user (a subuser with "read" access: listing and GET, no PUT or DELETE), for the tests
# of what needs only read rights (verify). Fixed like the user's own, loopback-only.
S3_READONLY_ACCESS_KEY_ID=${S3_READONLY_ACCESS_KEY_ID:-TESTREADONLYKEY00001}
S3_READONLY_SECRET_ACCESS_KEY=${S3_READONLY_SECRET_ACCESS_KEY:-testreadonlysecret000000000000000000001}
if [[ "$(radosgw-admin user info --uid="$S3_USER" 2>/dev/null)" != *"\"access_key\": \"$S3_READONLY_ACCESS_KEY_ID\""* ]]; then
  radosgw-admin subuser create --uid="$S3_USER" --subuser="$S3_USER:readonly" --access=read --key-type=s3 \
    --access-key="$S3_READONLY_ACCESS_KEY_ID" --secret="$S3_READONLY_SECRET_ACCESS_KEY" >/dev/null ||
    fail "could not create the read-only S3 subuser"
  say "created the read-only S3 key of $S3_USER"
fi
wait_until "cluster HEALTH_OK" health_ok
say "ready in $((SECONDS - started_at)) s: mon $(ceph_pid mon), osd $(ceph_pid osd), rgw $(ceph_pid rgw)"

# ---- client settings ------------------------------------------------------------------------------------------------
# Ceph 16's gateway: path-style addressing, region us-east-1 (others fail CreateBucket), and checksums only when an
# operation requires them (otherwise the SDK's stream bodies get 411 MissingContentLength).
cat >"$ceph_dir/s3.env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_REGION=us-east-1
S3_FORCE_PATH_STYLE=true
S3_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID
S3_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY
S3_READONLY_ACCESS_KEY_ID=$S3_READONLY_ACCESS_KEY_ID
S3_READONLY_SECRET_ACCESS_KEY=$S3_READONLY_SECRET_ACCESS_KEY
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY
AWS_REGION=us-east-1
AWS_REQUEST_CHECKSUM_CALCULATION=when_required
AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
CEPH_CONF=$ceph_conf
EOF
cat "$ceph_dir/s3.env"

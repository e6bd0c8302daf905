#!/usr/bin/env bash
# Entrypoint of the Ceph stand-in image (ceph.Containerfile): starts the cluster with ceph-start.sh (its KEY=VALUE
# client settings go to the log), stays up while the gateway runs, and stops the daemons cleanly on SIGTERM/SIGINT.
set -uo pipefail
here=/opt/lo-migrate/s3
stopping=0
trap 'stopping=1' TERM INT
bash "$here/ceph-start.sh" | sed -n 's/^\(S3_ENDPOINT\|S3_REGION\|S3_FORCE_PATH_STYLE\)=/ceph-rgw: &/p' || exit 1
echo "ceph-rgw: ready on port $RGW_PORT"
source "$here/ceph-common.sh"
while (( ! stopping )) && ceph_pid rgw >/dev/null; do sleep 1; done
bash "$here/ceph-stop.sh"
(( stopping )) || { echo "ceph-rgw: the gateway exited" >&2; exit 1; }

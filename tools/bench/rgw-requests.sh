#!/usr/bin/env bash
# Requests the Ceph RADOS Gateway of tools/s3/ceph-rgw.sh served per bucket, by kind and status, counted from its
# access log (the beast frontend logs every request at the default `debug rgw = 1`):
#   bash tools/bench/rgw-requests.sh BUCKET_REGEX
# e.g. `bash tools/bench/rgw-requests.sh 'lo-bench-20261206-004500-.*-m1'` for the first migrator round of the bench
# run 20261206-004500 (its buckets are named lo-bench-<run id>-<suffix>; the run id is in the bench's JSON output).
# Object requests are counted per content key (64 hex digits), the upload ledger's (lo-migrate/...) and the start-up
# probe apart; the bench's own bucket requests (create, listing for its checks, cleanup) are shown as such.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 BUCKET_REGEX" >&2; exit 2; }
log=$(ls "${CEPH_DIR:-/tmp/lo-migrate-ceph}"/log/client.rgw.*.log 2>/dev/null | head -1)
[[ -n "$log" ]] || { echo "no RGW log under ${CEPH_DIR:-/tmp/lo-migrate-ceph}/log (is tools/s3/ceph-rgw.sh's gateway used?)" >&2; exit 1; }
grep -oE "\"(GET|PUT|HEAD|POST|DELETE) /$1[/? ][^\"]*\" [0-9]+" "$log" | awk -v re="^/$1" '
{
  method = substr($1, 2); target = $2; status = $NF
  path = target; query = ""
  if (index(target, "?") > 0) { path = substr(target, 1, index(target, "?") - 1); query = substr(target, index(target, "?") + 1) }
  n = split(path, part, "/"); bucket = part[2]; key = (n >= 3) ? substr(path, length(bucket) + 3) : ""
  if (key == "") {
    if (query ~ /(^|&)versioning/) kind = "bucket: GetBucketVersioning"
    else if (query ~ /(^|&)delete/) kind = "bucket: DeleteObjects (bench clean-up)"
    else if (query ~ /prefix=lo-migrate/) kind = "bucket: list the upload ledger"
    else if (query ~ /list-type/) kind = "bucket: list (the bench checks the objects)"
    else kind = "bucket: " method
  } else if (key ~ /^lo-migrate-check-probe$/) kind = "start-up probe: " method
  else if (key ~ /^lo-migrate\//) kind = "ledger: " method
  else if (key ~ /^[0-9a-f]+$/ && length(key) == 64) {
    if (query ~ /partNumber=/) kind = "object: UploadPart"
    else if (query ~ /(^|&)uploads/) kind = "object: CreateMultipartUpload"
    else if (query ~ /uploadId=/) kind = "object: " (method == "POST" ? "CompleteMultipartUpload" : method " upload")
    else kind = "object: " method
    if (method != "POST" || query !~ /uploads/) objects[key] = 1
  } else kind = "other: " method
  count[bucket "\t" kind " " status]++
}
END {
  for (k in count) print count[k] "\t" k
  print length(objects) "\t(distinct content keys)"
}' | sort -t$'\t' -k2,2 -k3,3

# shellcheck shell=bash
# Sourced by check.sh: the two Jobs of deploy/kubernetes run as their pods would, one podman container per completion
# index, all at once (parallelism = completions), each translated from the manifest by pod-run.mjs: the manifest's
# environment and args, JOB_COMPLETION_INDEX, uid 1000, a read-only root with only the pod's emptyDirs writable, no
# capabilities, the memory limit, a network namespace of its own (each pod serves its metrics port, as pods have their
# own IP), the host's PostgreSQL and S3 server reached at 10.0.2.2. No Kubernetes here: what is checked is that the
# image does its work under exactly those settings, not the Job controller's retries.
#   - lo-migrate (the migration Job) on the sample _nice_binary (docker/initdb): every pod exits 0 or 1 (the 3 invalid
#     rows are reported by the pods of their shards, 3 in all), every valid row migrated, the bucket exact;
#   - lo-migrate-verify with read-only credentials (a role with SELECT on _nice_binary alone, the gateway's read-only
#     key): every pod exits 0; after one object is deleted, exactly one pod exits 1, naming that row.

k8s_db_suffix=_k8s
k8s_role="lomc_verify_$run_id"
pods_dir="$work/pods"

# Runs every pod of Job $2 of manifest $1 at once; overrides and the POD_SECRET_* variables as pod-run.mjs reads them.
# Sets k8s_codes[i] to pod i's exit code; the logs are in $pods_dir/$2-i/log.
run_job_pods() {
  local manifest=$1 job=$2 i n args
  shift 2
  n="$(npx node "$here/pod-run.mjs" "$manifest" "$job" completions)"
  [[ "$n" =~ ^[0-9]+$ ]] || { bad "no completions read from Job $job in $manifest"; return 1; }
  k8s_codes=()
  for ((i = 0; i < n; i++)); do
    podman rm -f "$job-$i" >/dev/null 2>&1
    rm -rf "${pods_dir:?}/$job-$i"
    mapfile -t args < <(npx node "$here/pod-run.mjs" "$manifest" "$job" "$i" "$pods_dir/$job-$i" "$app_image" "$@") ||
      { bad "pod-run.mjs could not translate pod $i of $job"; return 1; }
    (( ${#args[@]} > 0 )) || { bad "pod-run.mjs gave no arguments for pod $i of $job"; return 1; }
    podman run -d "${args[@]}" >/dev/null 2>"$pods_dir/$job-$i.start.log" ||
      { bad "pod $i of $job did not start: $(tail -n 3 "$pods_dir/$job-$i.start.log")"; return 1; }
  done
  for ((i = 0; i < n; i++)); do
    k8s_codes[i]="$(timeout 600 podman wait "$job-$i")"
    podman logs "$job-$i" >"$pods_dir/$job-$i/log" 2>&1
  done
  step "$job: $n pods exited with ${k8s_codes[*]}"
}

# The sum over the pod logs of Job $1 (as run_job_pods left them) of the first number in the last match of the
# extended regex $2, e.g. '[0-9]+ row\(s\) failed'.
sum_in_logs() {
  local job=$1 pattern=$2 i n sum=0
  for i in "${!k8s_codes[@]}"; do
    n="$(grep -oE "$pattern" "$pods_dir/$job-$i/log" | tail -n 1 | grep -oE '[0-9]+' | head -n 1)"
    sum=$((sum + ${n:-0}))
  done
  printf '%s\n' "$sum"
}

check_kubernetes() {
  local db="$database$k8s_db_suffix" bucket="lomk-${run_id//_/-}" i codes_ok reported counts host=10.0.2.2
  local pg_host_url
  step "the Kubernetes Jobs (deploy/kubernetes) as podman containers, one per completion index, in database $db"
  mkdir -p "$pods_dir"
  psql -q "$pg_admin" -c "CREATE DATABASE $db" >/dev/null || { bad "could not create database $db"; return; }
  psql -q -v ON_ERROR_STOP=1 "$(db_url "$db")" -f docker/initdb/01-nice-binary.sql >/dev/null || { bad "seeding $db failed"; return; }
  buckets+=("$bucket")
  npx node "$here/s3-bucket.mjs" create "$bucket" || { bad "could not create bucket $bucket"; return; }
  # the host's servers as a pod's network namespace reaches them
  pg_host_url="$(db_url "$db" | sed -E "s#@(127\.0\.0\.1|localhost)([:/])#@$host\2#")"
  local s3_host_url="${S3_ENDPOINT/127.0.0.1/$host}"
  s3_host_url="${s3_host_url/localhost/$host}"

  POD_SECRET_PG_URL="$pg_host_url" POD_SECRET_ACCESS_KEY_ID="$S3_ACCESS_KEY_ID" \
    POD_SECRET_SECRET_ACCESS_KEY="$S3_SECRET_ACCESS_KEY" \
    run_job_pods deploy/kubernetes/lo-migrate-job.yaml lo-migrate S3_URL="$s3_host_url" S3_BUCKET="$bucket" || return
  codes_ok=1
  for i in "${!k8s_codes[@]}"; do
    [[ "${k8s_codes[i]}" == 0 || "${k8s_codes[i]}" == 1 ]] || codes_ok=0
    grep -q "shard: $i/${#k8s_codes[@]}" "$pods_dir/lo-migrate-$i/log" || codes_ok=0
  done
  reported="$(sum_in_logs lo-migrate '[0-9]+ row\(s\) failed')"
  if (( codes_ok )) && (( reported == 3 )); then
    ok "the migration Job's ${#k8s_codes[@]} pods each migrated their shard (exit 0, or 1 reporting the invalid rows: 3 in all)"
  else
    bad "migration pods exited ${k8s_codes[*]} (0 or 1 expected, each with its shard) and reported $reported failed rows, not 3; see $pods_dir"
  fi
  counts="$(row_counts "$db")"
  expected_objects "$db" >"$pods_dir/expected.tsv"
  if [[ "$counts" == "300|3|0" ]] && npx node "$here/s3-bucket.mjs" verify "$bucket" "$pods_dir/expected.tsv" >/dev/null; then
    ok "after the migration Job: 300 rows carry the SHA-256 of their large object, the bucket holds exactly their objects"
  else
    bad "after the migration Job: rows migrated|pending|wrong = $counts (300|3|0 expected), or the bucket does not match"
  fi

  # verify, with read rights only
  [[ -n "${S3_READONLY_ACCESS_KEY_ID:-}" && -n "${S3_READONLY_SECRET_ACCESS_KEY:-}" ]] ||
    { bad "S3_READONLY_ACCESS_KEY_ID / S3_READONLY_SECRET_ACCESS_KEY are not set (tools/s3/ceph-rgw.sh start prints them)"; return; }
  psql -q -v ON_ERROR_STOP=1 "$(db_url "$db")" \
    -c "CREATE ROLE $k8s_role LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE" -c "GRANT SELECT ON _nice_binary TO $k8s_role" \
    >/dev/null || { bad "could not create the read-only role $k8s_role"; return; }
  local verify_url
  verify_url="$(printf '%s' "$pg_host_url" | sed -E "s#//[^@/]*@#//$k8s_role@#")"
  local verify_args=(deploy/kubernetes/lo-migrate-verify-job.yaml lo-migrate-verify S3_URL="$s3_host_url" S3_BUCKET="$bucket")
  POD_SECRET_PG_URL="$verify_url" POD_SECRET_ACCESS_KEY_ID="$S3_READONLY_ACCESS_KEY_ID" \
    POD_SECRET_SECRET_ACCESS_KEY="$S3_READONLY_SECRET_ACCESS_KEY" run_job_pods "${verify_args[@]}" || return
  local all_good=1 checked
  for i in "${!k8s_codes[@]}"; do [[ "${k8s_codes[i]}" == 0 ]] || all_good=0; done
  checked="$(sum_in_logs lo-migrate-verify 'verify: [0-9]+ rows checked')"
  if (( all_good )) && (( checked == 300 )); then
    ok "the verify Job's ${#k8s_codes[@]} pods, with read rights only, each found their range good (300 rows checked in all)"
  else
    bad "verify pods exited ${k8s_codes[*]} (all 0 expected) and checked $checked rows (300 expected); see $pods_dir"
  fi

  local gone_hash gone_sha2
  IFS='|' read -r gone_hash gone_sha2 < <(psql -qAt "$(db_url "$db")" -c \
    "SELECT hash, sha2 FROM _nice_binary WHERE sha2 IS NOT NULL ORDER BY sha2 COLLATE \"C\" OFFSET 150 LIMIT 1")
  npx node "$here/s3-bucket.mjs" remove "$bucket" "$gone_sha2" || { bad "could not delete object $gone_sha2"; return; }
  POD_SECRET_PG_URL="$verify_url" POD_SECRET_ACCESS_KEY_ID="$S3_READONLY_ACCESS_KEY_ID" \
    POD_SECRET_SECRET_ACCESS_KEY="$S3_READONLY_SECRET_ACCESS_KEY" run_job_pods "${verify_args[@]}" || return
  local failing=() named=0
  for i in "${!k8s_codes[@]}"; do
    [[ "${k8s_codes[i]}" == 0 ]] && continue
    failing+=("$i:${k8s_codes[i]}")
    grep -q "hash=$gone_hash sha2=$gone_sha2 .*Missing" "$pods_dir/lo-migrate-verify-$i/log" && named=1
  done
  if (( ${#failing[@]} == 1 )) && [[ "${failing[0]#*:}" == 1 ]] && (( named )); then
    ok "with one object deleted, exactly one verify pod (index ${failing[0]%%:*}) exits 1, naming its row"
  else
    bad "with one object deleted, verify pods exited ${k8s_codes[*]} (one 1 naming hash $gone_hash expected); see $pods_dir"
  fi
}

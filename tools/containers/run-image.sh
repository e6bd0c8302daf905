# shellcheck shell=bash
# Sourced by check.sh: the built image run against the real PostgreSQL and S3 server on the host's loopback
# (--network host): --help, exit codes, the non-root user, and a migration of the compose sample data.

db_url() { local u="${pg_admin%/*}"; printf '%s/%s\n' "$u" "$1"; }

# The rows the migration must have uploaded, as "sha256<TAB>mime<TAB>size" lines, and its checks in SQL.
expected_objects() { psql -qAt -F $'\t' "$(db_url "$1")" -c "SELECT DISTINCT sha2, mime_type, size FROM _nice_binary WHERE sha2 IS NOT NULL"; }
row_counts() { # migrated|pending|wrong (sha2 not the SHA-256 of the large object)
  psql -qAt "$(db_url "$1")" -c "SELECT count(*) FILTER (WHERE sha2 IS NOT NULL), count(*) FILTER (WHERE sha2 IS NULL),
    count(*) FILTER (WHERE sha2 <> encode(digest(lo_get(data), 'sha256'), 'hex')) FROM _nice_binary"
}

check_image() {
  local out rc user
  out="$(podman run --rm "$app_image" --help 2>&1)"; rc=$?
  if (( rc == 0 )) && [[ "$out" == *USAGE* && "$out" == *--pg-url* ]]; then ok "--help exits 0 and lists the options"
  else bad "--help: exit $rc, output: ${out:0:200}"; fi

  podman run --rm "$app_image" --no-such-option >"$work/bad-option.log" 2>&1; rc=$?
  if (( rc == 2 )); then ok "an unknown option exits 2"; else bad "an unknown option exited $rc, not 2"; fi

  user="$(podman run --rm --entrypoint id "$app_image" -u):$(podman image inspect "$app_image" --format '{{.Config.User}}')"
  if [[ "$user" == 1000:node ]]; then ok "runs as the non-root user node (uid 1000)"; else bad "user is $user, expected 1000:node"; fi

  step "migrating the sample _nice_binary (docker/initdb) in database $database with the image"
  psql -q "$pg_admin" -c "CREATE DATABASE $database" >/dev/null || die "could not create database $database"
  psql -q -v ON_ERROR_STOP=1 "$(db_url "$database")" -f docker/initdb/01-nice-binary.sql >/dev/null ||
    die "seeding $database failed"
  local bucket="lomc-${run_id//_/-}"
  buckets+=("$bucket")
  npx node "$here/s3-bucket.mjs" create "$bucket" || die "could not create bucket $bucket on $S3_ENDPOINT"
  podman run --rm --network host -e PG_URL="$(db_url "$database")" -e S3_URL="$S3_ENDPOINT" -e S3_BUCKET="$bucket" \
    -e AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY_ID" -e AWS_SECRET_ACCESS_KEY="$S3_SECRET_ACCESS_KEY" -e AWS_REGION=us-east-1 \
    "$app_image" >"$work/migrate.log" 2>&1; rc=$?
  # The sample holds three invalid rows (malformed hash, SHA-1 mismatch, NULL oid): reported, skipped, exit code 1.
  if (( rc == 1 )) && grep -q "3 row(s) failed" "$work/migrate.log"; then ok "the migration exits 1 and reports the 3 invalid rows"
  else bad "the migration exited $rc (expected 1 for the 3 invalid rows); last lines:$(printf '\n'; tail -n 8 "$work/migrate.log")"; fi
  local counts
  counts="$(row_counts "$database")"
  if [[ "$counts" == "300|3|0" ]]; then ok "300 rows carry the SHA-256 of their large object, the 3 invalid rows none"
  else bad "rows migrated|pending|wrong = $counts, expected 300|3|0"; fi
  expected_objects "$database" >"$work/expected.tsv"
  if npx node "$here/s3-bucket.mjs" verify "$bucket" "$work/expected.tsv"; then ok "the bucket holds exactly those 300 objects"
  else bad "the bucket does not match the migrated rows"; fi
  podman run --rm --network host -e PG_URL="$(db_url "$database")" -e S3_URL="$S3_ENDPOINT" -e S3_BUCKET="$bucket" \
    -e AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY_ID" -e AWS_SECRET_ACCESS_KEY="$S3_SECRET_ACCESS_KEY" -e AWS_REGION=us-east-1 \
    "$app_image" finalize >"$work/finalize.log" 2>&1; rc=$?
  if (( rc == 1 )); then ok "finalize is refused (exit 1) while the 3 invalid rows remain"
  else bad "finalize exited $rc with 3 rows left, expected 1; last lines:$(printf '\n'; tail -n 5 "$work/finalize.log")"; fi
}

#!/usr/bin/env bash
# The whole test suite (`npm test`): makes sure PostgreSQL and a real S3 server (Ceph RADOS Gateway) are up, runs
# every project's tests through Nx on the repo's Node 24, and ends with the plain line "N passed, N failed" counted
# from vitest's JSON reports (a test that did not run counts as failed; tools/test/summary-reporter.mjs says why).
#
# Environment:
#   PG_TEST_URL   admin URL of a PostgreSQL that tests create throwaway databases in
#                 (default postgres://postgres@127.0.0.1:5432/postgres; started with pg_ctlcluster if it is down)
#   S3_ENDPOINT + S3_ACCESS_KEY_ID + S3_SECRET_ACCESS_KEY   use this S3 server instead of starting Ceph RGW
#   CEPH_DIR, RGW_PORT, MON_PORT, OSD_PORT_MIN, OSD_PORT_MAX   where tools/s3/ceph-rgw.sh puts the cluster it starts
#                 (defaults /tmp/lo-migrate-ceph, 17480, 13300, 16800-16899; see tools/s3/README.md)
#   KEEP_CEPH=1   leave the Ceph daemons running afterwards (faster reruns)
#   TEST_COUNTS_FILE  also write the closing line there
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
log() { printf '[test] %s\n' "$*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]')
if (( node_major < 24 )); then
  log "node $(node --version) is on PATH: run this through npm (npm test) so the repo's Node 24 is used"; exit 2
fi

export PG_TEST_URL="${PG_TEST_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -q -d "$PG_TEST_URL" 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    log "PostgreSQL is down: starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 50); do pg_isready -q -d "$PG_TEST_URL" && break; sleep 0.2; done
  fi
fi

# Debian packages some tests need, installed here when missing and we may (root, apt-get); otherwise those tests fail
# saying how to install them:
# - pgbouncer, for the pooler tests (libs/postgres PgDatabase.test.ts, testing/PgBouncer.ts): each starts its own
#   PgBouncer on a free port; a system one, if any runs, is not used;
# - libfaketime, for a migration from a host whose clock is wrong (apps/migrator e2e-settings.test.ts);
# - nftables, to drop a loopback port's packets silently, as a load balancer that forgot a flow does (libs/postgres
#   PgDatabase.test.ts, testing/SilentDrop.ts: TCP keepalive); the rule names the test's own forwarder port only.
missing=()
[[ -x "${PGBOUNCER:-/usr/sbin/pgbouncer}" ]] || missing+=(pgbouncer)
compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null || missing+=(libfaketime)
command -v nft >/dev/null || missing+=(nftables)
if (( ${#missing[@]} )) && (( EUID == 0 )) && command -v apt-get >/dev/null; then
  log "installing ${missing[*]} (apt-get) for the tests that need them"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" ||
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; }; } >/dev/null 2>&1 ||
    log "could not install ${missing[*]}: the tests that need them will fail"
fi

started_ceph=0
stop_ceph() { if (( started_ceph )) && [[ "${KEEP_CEPH:-0}" != 1 ]]; then bash tools/s3/ceph-rgw.sh stop >/dev/null 2>&1 || true; fi; }
trap stop_ceph EXIT
if [[ -z "${S3_ENDPOINT:-}" ]]; then
  log "starting Ceph RADOS Gateway (tools/s3/ceph-rgw.sh)"
  if ceph_env=$(bash tools/s3/ceph-rgw.sh start); then
    set -a; eval "$ceph_env"; set +a
    started_ceph=1
  else
    log "could not start Ceph RGW: the S3 tests will fail"
  fi
fi

reports="$(mktemp -d)"
export VITEST_JSON_DIR="$reports"
projects=$(ls -d libs/*/project.json apps/*/project.json tools/*/project.json 2>/dev/null | xargs -n1 dirname | xargs -n1 basename)
npx nx run-many -t test --parallel=1 --outputStyle=static --skipNxCache
nx_rc=$?
failures="$(mktemp)"
counts=$(node tools/test/count.mjs "$reports" $projects 2>"$failures")
count_rc=$?
rm -rf "$reports"
# The failed tests by name, then the closing line (CI prints the counts file last, so both end up at the bottom).
[[ -n "${TEST_COUNTS_FILE:-}" ]] && { cat "$failures"; printf '%s\n' "$counts"; } > "$TEST_COUNTS_FILE"
cat "$failures" >&2
rm -f "$failures"
printf '%s\n' "$counts"
(( nx_rc == 0 && count_rc == 0 ))

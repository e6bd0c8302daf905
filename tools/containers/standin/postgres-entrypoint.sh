#!/usr/bin/env bash
# Entrypoint of the PostgreSQL stand-in image (postgres.Containerfile): on a new $PGDATA creates the cluster with
# POSTGRES_USER (default postgres) and POSTGRES_PASSWORD (scram; none: trust), creates POSTGRES_DB, runs
# /docker-entrypoint-initdb.d/*.sql and *.sh once, then runs the server as the postgres user, listening on all
# addresses of the container (arguments after `postgres` are passed on, e.g. `-p 25433 -c listen_addresses=127.0.0.1`
# under --network host).
set -euo pipefail
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  pwfile="$(mktemp)" && chown postgres "$pwfile"
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  auth=trust
  [[ -n "${POSTGRES_PASSWORD:-}" ]] && auth=scram-sha-256
  as_postgres initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" >/dev/null
  rm -f "$pwfile"
  printf 'host all all 0.0.0.0/0 %s\nhost all all ::/0 %s\n' "$auth" "$auth" >>"$PGDATA/pg_hba.conf"
  # Init scripts run against a server reachable only through the socket, logging to a file: "ready to accept
  # connections" appears in the container's log once, when the real server is up.
  as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -l /tmp/initdb-server.log -w start >/dev/null
  [[ "$db" == postgres ]] || as_postgres psql -q -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \"$db\""
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) echo "running $f"; as_postgres psql -q -v ON_ERROR_STOP=1 -U "$user" -d "$db" -f "$f" ;;
      *.sh) echo "running $f"; bash "$f" ;;
    esac
  done
  as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "PostgreSQL init process complete"
fi
if [[ "${1:-postgres}" == postgres ]]; then
  shift || true
  exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"

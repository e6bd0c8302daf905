#!/usr/bin/env bash
# Installs Debian's Ceph packages for the test cluster (ceph-mon, ceph-osd, radosgw, ceph-common) when dpkg does not
# show them installed: `apt-get update` (a fresh machine may have no or stale package lists), then `apt-get install
# --no-install-recommends`, as root or through `sudo -n`. Does nothing when they are installed. CEPH_INSTALL=0 makes a
# missing package an error instead. ceph-start.sh runs it first; `ceph-rgw.sh install` runs it alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ceph-common.sh
source "$here/ceph-common.sh"
started_at=$SECONDS
ceph_packages=(ceph-mon ceph-osd radosgw ceph-common)
missing_packages() {
  local p
  for p in "${ceph_packages[@]}"; do
    [[ "$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null)" == installed ]] || printf '%s\n' "$p"
  done
}
mapfile -t missing < <(missing_packages)
if (( ${#missing[@]} > 0 )); then
  [[ "${CEPH_INSTALL:-1}" == 1 ]] || fail "Debian packages not installed: ${missing[*]} (CEPH_INSTALL=0 forbids installing)"
  command -v apt-get >/dev/null ||
    fail "not installed: ${missing[*]}, and there is no apt-get: install Ceph 16 (mon, osd, radosgw, CLI) yourself"
  sudo=()
  if (( EUID != 0 )); then
    command -v sudo >/dev/null || fail "Debian packages not installed: ${missing[*]}; not root and no sudo to install them"
    sudo=(sudo -n)
  fi
  say "installing ${missing[*]} with apt-get"
  # A fresh machine may have no package lists (or stale ones): update once, then install.
  "${sudo[@]}" apt-get update -q >&2 || fail "apt-get update failed"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
    fail "apt-get install ${missing[*]} failed"
  mapfile -t missing < <(missing_packages)
  (( ${#missing[@]} == 0 )) || fail "still not installed after apt-get install: ${missing[*]}"
  say "installed in $((SECONDS - started_at)) s"
fi


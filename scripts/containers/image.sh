#!/usr/bin/env bash
# scripts/containers/image.sh [build|run|stop|test] — `./dev image`: the service image built
# from the repository's Dockerfile and run here.
#
#   build  (default) the engine up (scripts/containers/engine.sh), the local bases made from
#          Debian packages (scripts/containers/bases.sh), then the Dockerfile built with them as
#          BUILDER_IMAGE and RUNTIME_IMAGE into citaflow:<chart appVersion>, the name the Helm
#          chart and compose.yaml use; prints the image size. Cargo's registry and target
#          directory are BuildKit cache mounts kept in the engine's storage (.cache/containers):
#          only the first build compiles everything.
#   run    the ./dev services (ingest-api, booking-processor, notifier-email, notifier-sms)
#          replaced by containers of that image on the host network, same ports and
#          environment (.run/stack.env), as the chart runs them: user 10001, read-only root file
#          system with a 64 MiB /tmp; waits for each /health/ready.
#   stop   SIGTERM to each container (grace period as in the chart), then the ./dev services
#          started again.
#   test   what CI runs (./dev test): build, run, then assert what an operator relies on —
#          the process runs as uid 10001 (not root) under a read-only root file system, the
#          health probes answer (/health/live and /health/ready 200), scripts/smoke.sh passes
#          against the containers, and each container stops on SIGTERM with exit code 0 within
#          its grace period — and stop.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../dev/lib.sh"
. "$SCRIPTS/containers/lib.sh"

# Grace periods as the chart computes them: the drain deadline (20 s by default) + 10 s
# margin for the processor and notifiers; the API's longest request + margin, 30 s too.
GRACE_SECONDS=${CITAFLOW_IMAGE_GRACE_SECONDS:-30}
CONTAINERS=(ingest-api booking-processor notifier-email notifier-sms)
LABEL=io.citaflow.checkout=$ROOT

cname() { printf 'citaflow-%s\n' "$1"; }

image_build() {
  "$SCRIPTS/containers/engine.sh" up
  "$SCRIPTS/containers/bases.sh" all
  say "image: building $IMAGE from the Dockerfile (builders $LOCAL_RUST and $LOCAL_NODE, runtime $LOCAL_RUNTIME)"
  local t0=$SECONDS
  # --network host: cargo in the build fetches crates as the host does
  DOCKER_BUILDKIT=1 docker build --network host --progress plain -t "$IMAGE" \
    --build-arg "BUILDER_IMAGE=$LOCAL_RUST" --build-arg "WEB_BUILDER_IMAGE=$LOCAL_NODE" \
    --build-arg "RUNTIME_IMAGE=$LOCAL_RUNTIME" "$ROOT" \
    >"$RUN/logs/image-build.log" 2>&1 || die_log image-build "docker build failed"
  local size
  size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
  say "image: $IMAGE built in $((SECONDS - t0)) s, size $((size / 1024 / 1024)) MiB ($size bytes)"
  if [[ $LEAN == 1 ]]; then
    # a clean clone builds the image once: its release build (the builder stage's cache mounts)
    # and the builders' bases are gigabytes nothing after this step needs
    docker builder prune -af >/dev/null
    docker rmi "$LOCAL_RUST" "$LOCAL_NODE" >/dev/null 2>&1 || true
    disk_report "image built; build cache, $LOCAL_RUST and $LOCAL_NODE removed"
  fi
}

# The containers' environment: the services' settings (CITAFLOW__*) from .run/stack.env, as a
# file for docker --env-file (KEY=value, no quoting).
write_env_file() {
  [[ -f $ENV_FILE ]] || die "no $ENV_FILE: start the stack first (./dev up)"
  mkdir -p "$DOCKER_RUN"
  (
    set -a
    # shellcheck source=/dev/null
    . "$ENV_FILE"
    set +a
    umask 077
    env | grep -E '^(CITAFLOW__[A-Z0-9_]+|NO_PROXY|no_proxy)=' | sort >"$DOCKER_RUN/services.env"
  )
}

container_port() {
  case $1 in
  ingest-api) echo "$API_PORT" ;;
  booking-processor) echo "$PROCESSOR_PORT" ;;
  notifier-email) echo "$NOTIFIER_EMAIL_PORT" ;;
  notifier-sms) echo "$NOTIFIER_SMS_PORT" ;;
  esac
}

run_one() { # name
  local name=$1 port bin extra=()
  port=$(container_port "$name")
  bin=$(svc_bin "$name")
  case $name in
  ingest-api) extra=(-e "CITAFLOW__HTTP__OPS_PORT=$API_OPS_PORT") ;;
  notifier-email) extra=(-e CITAFLOW__NOTIFIER__CHANNEL=email) ;;
  notifier-sms) extra=(-e CITAFLOW__NOTIFIER__CHANNEL=sms) ;;
  esac
  docker rm -f "$(cname "$name")" >/dev/null 2>&1 || true
  docker run -d --name "$(cname "$name")" --label "$LABEL" --network host \
    --read-only --tmpfs /tmp:rw,size=64m,mode=1777 --stop-timeout "$GRACE_SECONDS" \
    --env-file "$DOCKER_RUN/services.env" -e CITAFLOW__HTTP__HOST=127.0.0.1 -e "CITAFLOW__HTTP__PORT=$port" \
    "${extra[@]}" "$IMAGE" "/usr/local/bin/$bin" >/dev/null
}

wait_ready() { # name
  local name=$1 port i
  port=$(container_port "$name")
  for ((i = 0; i < 120; i++)); do
    http_ok "http://127.0.0.1:$port/health/ready" && return 0
    if [[ $(docker inspect --format '{{.State.Running}}' "$(cname "$name")" 2>/dev/null) != true ]]; then
      docker logs --tail 40 "$(cname "$name")" >&2 || true
      die "container $(cname "$name") exited while starting"
    fi
    sleep 0.5
  done
  docker logs --tail 40 "$(cname "$name")" >&2 || true
  die "container $(cname "$name") not ready on :$port/health/ready within 60 s"
}

image_run() {
  "$SCRIPTS/containers/engine.sh" up
  image_exists "$IMAGE" || die "no image $IMAGE yet: ./dev image build"
  "$ROOT/dev" status >/dev/null 2>&1 || CITAFLOW_DEV_SERVICES=1 "$ROOT/dev" up
  write_env_file
  local name
  for name in "${CONTAINERS[@]}"; do "$ROOT/dev" stop "$name" >/dev/null; done
  # the stopped processes may still be draining: wait until their ports are free
  local i port
  for port in "$API_OPS_PORT" $(for name in "${CONTAINERS[@]}"; do container_port "$name"; done); do
    for ((i = 0; i < 120; i++)); do port_busy "$port" || break; sleep 0.5; done
    ! port_busy "$port" || die "port $port is still in use after ./dev stop"
  done
  for name in "${CONTAINERS[@]}"; do run_one "$name"; done
  for name in "${CONTAINERS[@]}"; do wait_ready "$name"; done
  say "image: ${CONTAINERS[*]} run as containers of $IMAGE (host network, read-only root)"
}

# SIGTERM (docker stop) each container; with `assert`, fail unless it exits 0 within the grace
# period (exit 137 would mean the engine had to SIGKILL it).
stop_containers() { # [assert]
  local name c t0 ms code rc=0
  for name in "${CONTAINERS[@]}"; do
    c=$(cname "$name")
    docker inspect "$c" >/dev/null 2>&1 || continue
    t0=$(date +%s%N)
    docker stop -t "$GRACE_SECONDS" "$c" >/dev/null
    ms=$((($(date +%s%N) - t0) / 1000000))
    code=$(docker inspect --format '{{.State.ExitCode}}' "$c")
    if [[ ${1:-} == assert ]]; then
      if [[ $code == 0 ]] && ((ms < GRACE_SECONDS * 1000)); then
        say "check: $name stopped on SIGTERM in $ms ms, exit code 0 (grace ${GRACE_SECONDS} s)"
      else
        warn "check FAILED: $name stopped after $ms ms with exit code $code (grace ${GRACE_SECONDS} s)"
        docker logs --tail 20 "$c" >&2 || true
        rc=1
      fi
    fi
    docker rm "$c" >/dev/null
  done
  return "$rc"
}

image_stop() {
  engine_running && stop_containers
  local name
  for name in "${CONTAINERS[@]}"; do "$ROOT/dev" start "$name" >/dev/null; done
  say "image: containers stopped, ./dev services started again"
}

check_fail() {
  warn "check FAILED: $*"
  CHECK_RC=1
}

image_checks() {
  local name c pid uid port code
  CHECK_RC=0
  [[ $(docker image inspect --format '{{.Config.User}}' "$IMAGE") == 10001:10001 ]] ||
    check_fail "the image's USER is not 10001:10001"
  for name in "${CONTAINERS[@]}"; do
    c=$(cname "$name")
    port=$(container_port "$name")
    pid=$(docker inspect --format '{{.State.Pid}}' "$c")
    uid=$(awk '/^Uid:/ {print $2 "," $3 "," $4 "," $5}' "/proc/$pid/status")
    [[ $uid == 10001,10001,10001,10001 ]] || check_fail "$name runs with uids $uid, not 10001"
    # the kernel's view of the process: its / is mounted read-only
    [[ $(docker inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$c") == true &&
      $(awk '$5 == "/" {print $6}' "/proc/$pid/mountinfo") =~ (^|,)ro(,|$) ]] ||
      check_fail "$name's root file system is writable"
    for probe in /health/live /health/ready; do
      code=$(curl -s --noproxy '*' -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$port$probe" || true)
      [[ $code == 200 ]] || check_fail "$name: GET $probe answered $code"
    done
    say "check: $name runs as uid 10001 on a read-only root, /health/live and /health/ready 200"
  done
  return "$CHECK_RC"
}

image_test() {
  local t0=$SECONDS rc=0
  image_build
  # whatever fails from here on, the ./dev services come back
  trap 'image_stop >/dev/null 2>&1 || true' EXIT
  image_run
  image_checks || rc=1
  say "image: smoke test against the containers"
  (
    set -a
    # shellcheck source=/dev/null
    . "$ENV_FILE"
    set +a
    bash "$SCRIPTS/smoke.sh"
  ) || {
    warn "check FAILED: the smoke test against the containers"
    rc=1
  }
  stop_containers assert || rc=1
  trap - EXIT
  image_stop
  local size
  size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
  if ((rc == 0)); then
    say "image: all checks passed in $((SECONDS - t0)) s; $IMAGE is $((size / 1024 / 1024)) MiB"
  fi
  return "$rc"
}

case ${1:-build} in
build) image_build ;;
run) image_run ;;
stop) image_stop ;;
test) image_test ;;
*) die "image: unknown command '$1' (build, run, stop, test)" ;;
esac

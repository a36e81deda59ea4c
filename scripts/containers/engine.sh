#!/usr/bin/env bash
# scripts/containers/engine.sh up|down|status|env — the container engine of this checkout:
# Debian's dockerd as a plain background process (no system service), listening only on
# .run/docker/docker.sock, its data in .cache/containers/docker. `up` is idempotent and waits
# until the API answers; `down` stops exactly the dockerd it started (by the PID in
# .run/docker/dockerd.pid; dockerd stops its containerd and containers with it).
#
#   eval "$(scripts/containers/engine.sh env)"   # DOCKER_HOST for docker, compose, testcontainers
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../dev/lib.sh"
. "$SCRIPTS/containers/lib.sh"

engine_up() {
  "$DEV_DIR/install.sh" containers
  engine_running && return 0
  mkdir -p "$DOCKER_DATA" "$DOCKER_RUN" "$RUN/logs"
  if [[ -s $DOCKER_PIDFILE ]] && kill -0 "$(<"$DOCKER_PIDFILE")" 2>/dev/null; then
    die "dockerd (PID $(<"$DOCKER_PIDFILE")) runs but does not answer on $DOCKER_SOCK: see ${DOCKER_LOG#"$ROOT"/}"
  fi
  rm -f "$DOCKER_PIDFILE" "$DOCKER_SOCK"
  say "engine: starting dockerd (data ${DOCKER_DATA#"$ROOT"/}, socket ${DOCKER_SOCK#"$ROOT"/})"
  # containers get this machine's open-files limit (runc fails to raise it above the hard limit)
  local nofile
  nofile=$(ulimit -Hn)
  [[ $nofile == unlimited ]] && nofile=1048576
  # nice: builds and containers run at low priority (a shared machine). --exec-opt: cgroupfs
  # (no systemd here); the containerd it starts keeps its state below
  # exec-root. The default bridge (docker0) is used for builds and published ports.
  setsid nice -n 10 dockerd --data-root "$DOCKER_DATA" --exec-root "$DOCKER_RUN/exec" --pidfile "$DOCKER_PIDFILE" \
    -H "unix://$DOCKER_SOCK" --exec-opt native.cgroupdriver=cgroupfs --storage-driver overlay2 \
    --default-ulimit "nofile=$nofile:$nofile" --log-level warn </dev/null >"$DOCKER_LOG" 2>&1 &
  local pid=$! i
  for ((i = 0; i < 120; i++)); do
    engine_running && { say "engine: dockerd $(docker version --format '{{.Server.Version}}') ready (PID $pid)"; return 0; }
    kill -0 "$pid" 2>/dev/null || die_log dockerd "dockerd exited while starting"
    sleep 0.5
  done
  die_log dockerd "dockerd did not answer within 60 s"
}

engine_down() {
  local pid="" i
  if [[ -s $DOCKER_PIDFILE ]]; then pid=$(<"$DOCKER_PIDFILE"); fi
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]; then
    say "engine: stopping dockerd (PID $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      warn "dockerd (PID $pid) still running after 30 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # dockerd leaves its network namespace mounted under the exec-root (nsfs): unmount what is
  # left there, so the checkout's .run can be removed.
  local mnt
  while read -r mnt; do
    umount "$mnt" 2>/dev/null || warn "could not unmount $mnt"
  done < <(awk -v root="$DOCKER_RUN/exec/" 'index($2, root) == 1 {print $2}' /proc/self/mounts)
  rm -f "$DOCKER_PIDFILE" "$DOCKER_SOCK"
}

case ${1:-status} in
up) engine_up ;;
down) engine_down ;;
status) if engine_running; then say "engine: dockerd running (PID $(<"$DOCKER_PIDFILE"), $DOCKER_HOST)"; else say "engine: not running"; exit 1; fi ;;
env) printf 'export DOCKER_HOST=%s\n' "$DOCKER_HOST" ;;
*) die "engine.sh: unknown command '$1' (up, down, status, env)" ;;
esac

#!/usr/bin/env bash
# scripts/containers/compose.sh up|down|verify|ps|logs [args] — compose.yaml run here, with
# this checkout's engine (scripts/containers/engine.sh) and Debian's docker-compose, and the
# locally built images instead of the upstream ones (no registry is reachable here):
# CITAFLOW_{POSTGRES,KAFKA,REGISTRY,MAILPIT}_IMAGE point at scripts/containers/infra.sh's images
# and the service image is the one `./dev image` built.
#
#   up      the platform up (waits for every health check and one-shot job)
#   down    everything down, volumes removed
#   verify  up, then scripts/smoke.sh against it (a booking confirmed through the API, its
#           email in Mailpit, its SMS in the SMS sink), then down; what CI runs
#
# Published ports: the API on CITAFLOW_COMPOSE_API_PORT (default: ./dev's API port + 1000, so
# it never meets this checkout's ./dev stack), Mailpit's page and the SMS sink likewise.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../dev/lib.sh"
. "$SCRIPTS/containers/lib.sh"

PROJECT=citaflow
COMPOSE_API_PORT=${CITAFLOW_COMPOSE_API_PORT:-$((API_PORT + 1000))}
COMPOSE_MAILPIT_PORT=${CITAFLOW_COMPOSE_MAILPIT_PORT:-$((MAILPIT_UI_PORT + 1000))}
COMPOSE_SMS_SINK_PORT=${CITAFLOW_COMPOSE_SMS_SINK_PORT:-$((SMS_SINK_PORT + 1000))}
COMPOSE_ENV=$DOCKER_RUN/compose.env

write_compose_env() {
  mkdir -p "$DOCKER_RUN" "$RUN/secrets"
  local pw=$RUN/secrets/compose-admin-password jwt=$RUN/secrets/compose-jwt
  [[ -s $pw ]] || (umask 077 && od -An -v -tx1 -N12 /dev/urandom | tr -d ' \n' >"$pw")
  [[ -s $jwt ]] || (umask 077 && od -An -v -tx1 -N32 /dev/urandom | tr -d ' \n' >"$jwt")
  (
    umask 077
    cat >"$COMPOSE_ENV" <<ENV
CITAFLOW_IMAGE=$IMAGE
CITAFLOW_POSTGRES_IMAGE=$LOCAL_POSTGRES
CITAFLOW_KAFKA_IMAGE=$LOCAL_KAFKA
CITAFLOW_REGISTRY_IMAGE=$LOCAL_REGISTRY
CITAFLOW_MAILPIT_IMAGE=$LOCAL_MAILPIT
CITAFLOW_API_PORT=$COMPOSE_API_PORT
CITAFLOW_MAILPIT_UI_PORT=$COMPOSE_MAILPIT_PORT
CITAFLOW_SMS_SINK_PORT=$COMPOSE_SMS_SINK_PORT
CITAFLOW_ADMIN_PASSWORD=$(<"$pw")
CITAFLOW_JWT_SECRET=$(<"$jwt")
ENV
  )
}

compose() { docker-compose --project-name "$PROJECT" --project-directory "$ROOT" -f "$ROOT/compose.yaml" --env-file "$COMPOSE_ENV" "$@"; }

compose_up() {
  "$SCRIPTS/containers/engine.sh" up
  "$SCRIPTS/containers/infra.sh" all
  image_exists "$IMAGE" || "$SCRIPTS/containers/image.sh" build
  write_compose_env
  local t0=$SECONDS
  say "compose: up (project $PROJECT; API on 127.0.0.1:$COMPOSE_API_PORT, Mailpit on :$COMPOSE_MAILPIT_PORT)"
  compose up -d --no-build >"$RUN/logs/compose-up.log" 2>&1 || {
    compose ps >>"$RUN/logs/compose-up.log" 2>&1 || true
    compose logs --no-color --tail 30 >>"$RUN/logs/compose-up.log" 2>&1 || true
    die_log compose-up "docker-compose up failed"
  }
  local i
  for ((i = 0; i < 120; i++)); do
    http_ok "http://127.0.0.1:$COMPOSE_API_PORT/health/ready" && break
    sleep 0.5
  done
  http_ok "http://127.0.0.1:$COMPOSE_API_PORT/health/ready" || {
    compose logs --no-color --tail 30 ingest-api >&2 || true
    die "compose: the API is not ready on 127.0.0.1:$COMPOSE_API_PORT"
  }
  say "compose: platform up in $((SECONDS - t0)) s"
  compose ps
}

compose_down() {
  engine_running || return 0
  [[ -f $COMPOSE_ENV ]] || write_compose_env
  say "compose: down (volumes removed)"
  compose down -v --remove-orphans >"$RUN/logs/compose-down.log" 2>&1 || die_log compose-down "docker-compose down failed"
}

compose_verify() {
  local rc=0 t0=$SECONDS default
  # compose.yaml runs the image the chart deploys
  default=$(sed -n 's/^  image: \${CITAFLOW_IMAGE:-\(.*\)}$/\1/p' "$ROOT/compose.yaml")
  [[ $default == "$(chart_image)" ]] ||
    die "compose.yaml's image ($default) is not the chart's ($(chart_image): image.repository, appVersion)"
  say "compose: compose.yaml and the Helm chart both run $default"
  compose_up
  say "compose: smoke test against the platform in Compose"
  CITAFLOW_DEV_API_URL=http://127.0.0.1:$COMPOSE_API_PORT \
    CITAFLOW_DEV_MAILPIT_URL=http://127.0.0.1:$COMPOSE_MAILPIT_PORT \
    CITAFLOW_DEV_SMS_SINK_URL=http://127.0.0.1:$COMPOSE_SMS_SINK_PORT \
    CITAFLOW_DEV_ADMIN_USERNAME=admin CITAFLOW_DEV_ADMIN_PASSWORD="$(<"$RUN/secrets/compose-admin-password")" \
    bash "$SCRIPTS/smoke.sh" || rc=$?
  if ((rc != 0)); then
    compose ps >&2 || true
    compose logs --no-color --tail 20 ingest-api booking-processor notifier-email notifier-sms >&2 || true
  fi
  compose_down
  ((rc == 0)) && say "compose: verified in $((SECONDS - t0)) s"
  return "$rc"
}

case ${1:-up} in
up) compose_up ;;
down) compose_down ;;
verify) compose_verify ;;
ps | logs | config)
  write_compose_env
  compose "$@"
  ;;
*) die "compose.sh: unknown command '$1' (up, down, verify, ps, logs, config)" ;;
esac

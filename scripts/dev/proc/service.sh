#!/usr/bin/env bash
# A service of the platform (ingest-api, booking-processor, notifier-email, notifier-sms):
# its binary from target/<profile>/ with the stack's environment (.run/stack.env, written by
# the env writer scripts/dev/env.sh), its HTTP port and, for a notifier, its channel.
. "$(dirname "$0")/common.sh"
name=${1:?usage: service.sh NAME}
bin=$(svc_path "$name")
[[ -x $bin ]] || die "$name: ${bin#"$ROOT"/} does not exist (not built yet?)"
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
export CITAFLOW__HTTP__PORT
CITAFLOW__HTTP__PORT=$(svc_port "$name")
case $name in
ingest-api)
  export CITAFLOW__HTTP__OPS_PORT=$API_OPS_PORT
  # The web app built by proc/web.sh.
  export CITAFLOW__API__WEB_DIR=$ROOT/web/dist
  ;;
notifier-email) export CITAFLOW__NOTIFIER__CHANNEL=email ;;
notifier-sms) export CITAFLOW__NOTIFIER__CHANNEL=sms ;;
esac
cd "$ROOT"
say "$name: starting on 127.0.0.1:$CITAFLOW__HTTP__PORT (${bin#"$ROOT"/})"
exec "$bin" </dev/null

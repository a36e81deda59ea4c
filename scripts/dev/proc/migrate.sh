#!/usr/bin/env bash
# One-shot, once the build and PostgreSQL are there: the database schema (ingest-api
# migrate) and the local admin (password in .run/secrets/admin-password; idempotent).
. "$(dirname "$0")/common.sh"
bin=$(svc_path ingest-api)
[[ -x $bin ]] || die "${bin#"$ROOT"/} does not exist (the build did not write it)"
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
cd "$ROOT"
say "services: ingest-api migrate"
timeout 300 "$bin" migrate </dev/null
CITAFLOW_ADMIN_PASSWORD=$(<"$ADMIN_PASSWORD_FILE") timeout 120 "$bin" create-admin --username admin </dev/null

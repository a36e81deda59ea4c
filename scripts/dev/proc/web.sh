#!/usr/bin/env bash
# One-shot: the web app (web/) built into web/dist, which ingest-api serves at /. `npm ci`
# only when package-lock.json changed (npm's cache in .cache/npm); the API client's types
# (from `ingest-api openapi`), the type check and `vite build` only when a source of the app
# or the API's document changed. Its output is .run/logs/web.log.
. "$(dirname "$0")/common.sh"
need npm "Node.js and npm build the web app"
bin=$(svc_path ingest-api)
[[ -x $bin ]] || die "web: ${bin#"$ROOT"/} does not exist (the API's document comes from it)"
stamps=$CACHE/web
mkdir -p "$stamps"
cd "$ROOT/web"

lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -d node_modules || $(cat "$stamps/npm-ci" 2>/dev/null || true) != "$lock_sum" ]]; then
  say "web: npm ci (cache .cache/npm)"
  npm ci --cache "$CACHE/npm" --prefer-offline --no-audit --no-fund </dev/null
  printf '%s\n' "$lock_sum" >"$stamps/npm-ci"
fi

source_sum=$({
  "$bin" openapi
  find src public e2e scripts index.html package-lock.json tsconfig.json vite.config.ts -type f \
    ! -name schema.d.ts -print0 | sort -z | xargs -0 sha256sum
} | sha256sum | cut -d' ' -f1)
if [[ -f dist/index.html && $(cat "$stamps/build" 2>/dev/null || true) == "$source_sum" ]]; then
  say "web: web/dist is up to date"
  exit 0
fi
say "web: npm run build (API types, tsc, vite build) -> web/dist"
CITAFLOW_INGEST_API_BIN=$bin npm run build </dev/null
printf '%s\n' "$source_sum" >"$stamps/build"

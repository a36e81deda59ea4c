#!/usr/bin/env bash
# scripts/dev/bench.sh — `./dev bench [--short]`: the benchmark, scripts/bench.py, against
# the stack. The full run uses release builds and fresh service processes (so "idle RSS" is
# what a service needs, not what earlier runs left it holding); --short (the CI variant,
# also the last step of ./dev test) uses the debug build already there and fails only on
# errors. Other arguments go to scripts/bench.py.
set -euo pipefail
# shellcheck source=scripts/dev/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ ${1:-} == --short ]]; then
  CITAFLOW_DEV_SERVICES=1 "$ROOT/dev" up
  exec python3 "$SCRIPTS/bench.py" --short --profile "$PROFILE"
fi
export CITAFLOW_DEV_PROFILE=release
CITAFLOW_DEV_SERVICES=1 "$ROOT/dev" up
for svc in ingest-api booking-processor notifier-email; do "$ROOT/dev" restart "$svc"; done
BENCH_PROFILE=release exec python3 "$SCRIPTS/bench.py" --profile release "$@"

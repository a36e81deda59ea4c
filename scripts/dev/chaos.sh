#!/usr/bin/env bash
# scripts/dev/chaos.sh — `./dev chaos [runs]`: the fault-injection run (tests/src/bin/chaos.rs)
# against the local stack, `runs` times in a row (default 3). It SIGKILLs the processor, the
# Kafka broker and the API and crashes PostgreSQL during a burst of bookings, then checks the
# workflow's invariants. It stops the shared broker and database, so it runs alone: not while
# `./dev test` runs.
set -euo pipefail
# shellcheck source=scripts/dev/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs=${1:-3}
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "usage: ./dev chaos [runs]"
CITAFLOW_DEV_SERVICES=1 "$ROOT/dev" up
# the run starts its own service processes from the debug build: build them, and itself
cargo build --quiet --bins -p ingest-api -p booking-processor -p notifier -p citaflow-tests
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
exec "$ROOT/target/debug/chaos" "$runs"

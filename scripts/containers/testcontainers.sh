#!/usr/bin/env bash
# scripts/containers/testcontainers.sh [cargo test args] — the black-box tests with their own
# infrastructure: CITAFLOW_TEST_STACK=testcontainers (tests/src/containers.rs) against this
# checkout's engine (scripts/containers/engine.sh), with the locally built infrastructure images
# (scripts/containers/infra.sh) since no registry is reachable here. Without arguments: the
# walking-skeleton tests (what CI runs). The containers the tests started (label
# io.citaflow.testcontainers) are removed afterwards, whatever the outcome.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../dev/lib.sh"
. "$SCRIPTS/containers/lib.sh"

remove_test_containers() {
  local ids
  ids=$(docker ps -aq --filter "label=io.citaflow.testcontainers" 2>/dev/null || true)
  [[ -n $ids ]] || return 0
  # shellcheck disable=SC2086 # one id per word
  docker rm -f $ids >/dev/null
}

"$SCRIPTS/containers/engine.sh" up
"$SCRIPTS/containers/infra.sh" all
# --workspace: the features cargo test --workspace builds with, so its artifacts are reused
(($# > 0)) || set -- --workspace --test walking_skeleton
cd "$ROOT"
remove_test_containers # nothing left from an interrupted run: these tests start them fresh
trap remove_test_containers EXIT
say "testcontainers: cargo test $* (CITAFLOW_TEST_STACK=testcontainers, DOCKER_HOST=$DOCKER_HOST)"
t0=$SECONDS
rc=0
# none of the ./dev stack's variables (./dev test has loaded them): the tests reach only the
# containers they start
unset_dev=()
while read -r v; do unset_dev+=(-u "$v"); done < <(compgen -e | grep -E '^CITAFLOW_(_|DEV_)' || true)
env "${unset_dev[@]}" CITAFLOW_TEST_STACK=testcontainers DOCKER_HOST="$DOCKER_HOST" \
  CITAFLOW_POSTGRES_IMAGE="$LOCAL_POSTGRES" CITAFLOW_KAFKA_IMAGE="$LOCAL_KAFKA" \
  CITAFLOW_REGISTRY_IMAGE="$LOCAL_REGISTRY" CITAFLOW_MAILPIT_IMAGE="$LOCAL_MAILPIT" \
  nice -n 10 cargo test "$@" || rc=$?
say "testcontainers: $( ((rc == 0)) && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - t0)) s"
exit "$rc"

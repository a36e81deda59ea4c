#!/usr/bin/env bash
# scripts/dev/test.sh — the whole test suite, the CI pipeline (`./dev test`, which .ci/run
# calls). This is THE place where the steps of `./dev test` are: extend it here.
#
#  1. the stack up with the services (./dev up) and the test tools installed;
#  2. with .run/stack.env loaded: formatting, the environment against the settings contract
#     (`citaflow settings check`), every Rust test (unit and black-box
#     integration against the real stack), the end-to-end smoke test against the services,
#     the web app's unit tests (Vitest) and browser tests (Playwright driving Debian's
#     Chromium against the stack's own ingest-api, which serves the app built by ./dev up),
#     the offline checks of the Helm chart and Kubernetes manifests, and the short benchmark
#     (fails on errors only, never on timing);
#  3. containers, on this checkout's own engine (dockerd started and stopped by PID): the service
#     image built from the Dockerfile and checked running in place of the ./dev services
#     (`./dev image test`), compose.yaml end to end (`./dev compose verify`), and the
#     walking-skeleton tests with their own infrastructure through testcontainers
#     (scripts/containers/testcontainers.sh). CITAFLOW_TEST_CONTAINERS=0 leaves them out.
#
# Arguments go to `cargo test` (e.g. `./dev test -p citaflow-tests walking`); then the
# formatting check, the smoke test, the chart checks and the benchmark are skipped.
set -euo pipefail
# shellcheck source=scripts/dev/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

disk_report start
CITAFLOW_DEV_SERVICES=1 "$ROOT/dev" up
"$DEV_DIR/install.sh" test-tools
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a

run_tests() {
  if (($# == 0)) && command -v rustfmt >/dev/null; then
    cargo fmt --all -- --check >/dev/null || {
      warn "code is not formatted: run 'cargo fmt --all'"
      return 1
    }
  fi
  if (($# == 0)); then
    # the launcher's environment against the services' settings contract
    "$ROOT/target/$PROFILE/citaflow" settings check --env-file "$ENV_FILE" || return $?
  fi
  cargo test --workspace "$@" || return $?
  if (($# == 0)); then
    disk_report "Rust tests done"
    bash scripts/smoke.sh || return $?
    (cd web && npm test --silent && CITAFLOW_DEV_CHROMIUM=$CHROMIUM npx playwright test) || return $?
    bash scripts/check-k8s.sh || return $?
    lean_drop "$CACHE/k8s-tools/go" "the chart tools' Go module and build caches"
    python3 scripts/bench.py --short --profile "$PROFILE" || return $?
    if [[ ${CITAFLOW_TEST_CONTAINERS:-1} != 0 ]]; then
      disk_report "before the container steps"
      bash scripts/containers/image.sh test || return $?
      bash scripts/containers/compose.sh verify || return $?
      disk_report "compose verified"
      bash scripts/containers/testcontainers.sh || return $?
    fi
  fi
}

cd "$ROOT"
say "running tests: cargo test --workspace $*"
# the container engine is stopped again if this run started it
engine_was_up=0
bash scripts/containers/engine.sh status >/dev/null 2>&1 && engine_was_up=1
rc=0
disk_report "stack up"
run_tests "$@" || rc=$?
disk_report "end"
if ((engine_was_up == 0)); then bash scripts/containers/engine.sh down || true; fi
if ((rc == 0)); then say "tests passed"; else say "tests FAILED (exit $rc)"; fi
exit "$rc"

#!/usr/bin/env bash
# One-shot: cargo build --bins of the services (release with CITAFLOW_DEV_PROFILE=release),
# after the Debian packages the build needs. Its output is .run/logs/cargo-build.log.
. "$(dirname "$0")/common.sh"
need cargo "the Rust toolchain builds the services"
"$DEV_DIR/install.sh" build
flags=(--bins)
[[ $PROFILE == release ]] && flags+=(--release)
say "services: cargo build ${flags[*]}"
cd "$ROOT"
CARGO_TARGET_DIR="$ROOT/target" exec cargo build "${flags[@]}" </dev/null

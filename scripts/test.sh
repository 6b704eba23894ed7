#!/usr/bin/env bash
# Runs every REEF test. Installs what it needs first (idempotent): the Rust toolchain if missing,
# and the Debian packages the build uses. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_rust
ensure_apt_packages build-essential pkg-config

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reef/target}"
if [ -z "${REEF_TEST_MONGODB_URI:-}" ]; then
  echo "note: REEF_TEST_MONGODB_URI is not set: the MongoDB half of the conformance suite will report itself skipped."
fi
step "cargo test (workspace)"
cargo test --workspace --locked 2>&1 | tee "${REEF_TEST_LOG:-/tmp/reef-cargo-test.log}"
status=${PIPESTATUS[0]}
exit "$status"

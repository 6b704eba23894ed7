#!/usr/bin/env bash
# Runs REEF on the embedded store (no services needed), with demo data on first start.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_rust
ensure_apt_packages build-essential pkg-config
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reef/target}"
step "building reef"
cargo build --locked -p reef-cli --release
reef="$CARGO_TARGET_DIR/release/reef"
"$reef" demo
"$reef" status
echo
echo "REEF is running on the embedded store. Watching every change (Ctrl-C to stop);"
echo "in another terminal try: $reef task add 'Write the changelog' --agent scout"
exec "$reef" watch

#!/usr/bin/env bash
# Runs REEF on the embedded store (no services needed), with demo data on first start:
# the desktop app where there is a display, else the headless engine view in this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_rust
ensure_apt_packages build-essential pkg-config
# bubblewrap: the sandbox CLI agents run in (without it REEF refuses to start them).
ensure_apt_packages bubblewrap
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reef/target}"
# The in-process embedding model for memory search; without it REEF falls back to word hashing.
ensure_model "${XDG_CACHE_HOME:-$HOME/.cache}/reef/models/all-minilm-l6-v2" || echo "(memory search will use word hashing until scripts/setup-model.sh succeeds)"
reef="$CARGO_TARGET_DIR/release/reef"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  # shellcheck disable=SC2086
  ensure_apt_packages $APP_PACKAGES
  build_ui
  step "building REEF (release)"
  cargo build --locked --release -p reef-cli -p reef-app
  "$reef" demo
  exec "$CARGO_TARGET_DIR/release/reef-app"
fi
step "building reef (release)"
cargo build --locked -p reef-cli --release
"$reef" demo
"$reef" status
echo
echo "No display here, so REEF runs headless: watching every change (Ctrl-C to stop)."
echo "With a display, this command opens the desktop app. In another terminal try:"
echo "  $reef task add 'Write the changelog' --agent scout"
exec "$reef" watch

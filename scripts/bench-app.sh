#!/usr/bin/env bash
# The desktop app's footprint, against its targets: idle memory of the whole process tree
# (≤ 150 MB), cold start to first paint (≤ 1 s) and the .deb size (≤ 15 MB). Release build,
# under Xvfb, on the demo factory. Run from a fresh shell; takes a few minutes the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_app_build
step "building the release app and its .deb"
(cd ui && npm install --no-audit --no-fund --silent --no-save @tauri-apps/cli@2)
(cd src-tauri && ../ui/node_modules/.bin/tauri build --bundles deb --config '{"build":{"beforeBuildCommand":""}}' >/dev/null)
cargo build --locked --release -p reef-cli
app="$CARGO_TARGET_DIR/release/reef-app"
deb=$(ls -t "$CARGO_TARGET_DIR"/release/bundle/deb/*.deb | head -1)
step "re-packing the .deb with xz"
repack_deb_xz "$deb"
dpkg-deb --info "$deb" >/dev/null   # still a valid package

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export REEF_DATA_DIR="$work/data" REEF_CONFIG="$work/config.toml"
: > "$REEF_CONFIG"
# The engine runs in the app (model prices beside the config), paused so that idle means idle:
# nothing dispatched, no model loaded, the window showing the overview.
cp litellm-config.yaml "$work/"
"$CARGO_TARGET_DIR/release/reef" demo >/dev/null
"$CARGO_TARGET_DIR/release/reef" pause --reason "bench: idle" >/dev/null
cd "$work"

# PSS (kB) of a process and its descendants, summed.
tree_pss='total=0
  for p in $1 $(pgrep -P $1) $(for c in $(pgrep -P $1); do pgrep -P $c; done); do
    kb=$(awk "/^Pss:/ {print \$2}" /proc/$p/smaps_rollup 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo $total'

# Paints the window several times (cold = a fresh process each time) and keeps the median.
export REEF_BENCH_PAINT_FILE="$work/paint"
paints=()
for i in 1 2 3 4 5; do
  rm -f "$REEF_BENCH_PAINT_FILE"
  xvfb-run -a -s "-screen 0 1440x900x24" dbus-run-session -- bash -c '
    "$0" & pid=$!
    for _ in $(seq 1 200); do [ -s "$REEF_BENCH_PAINT_FILE" ] && break; sleep 0.05; done
    if [ "$1" = 5 ]; then
      sleep 10   # idle: the first view drawn, nothing to do
      pss() { '"$tree_pss"'; }
      pss $pid > "$REEF_BENCH_PAINT_FILE.mem"
    fi
    kill $pid; wait $pid 2>/dev/null || true' "$app" "$i"
  paints+=("$(cat "$REEF_BENCH_PAINT_FILE")")
done

# Baseline, same screen, same run: WebKitGTK's own MiniBrowser showing an empty page — what the
# platform's web view costs before any REEF code.
mini=/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser
echo '<!doctype html><title>blank</title><body></body>' > "$work/blank.html"
base_kb=0
if [ -x "$mini" ]; then
  xvfb-run -a -s "-screen 0 1440x900x24" dbus-run-session -- bash -c '
    "$0" "file://$1" & pid=$!
    sleep 12
    pss() { '"$tree_pss"'; }
    pss $pid > "$2"
    kill $pid; wait $pid 2>/dev/null || true' "$mini" "$work/blank.html" "$work/base.mem"
  base_kb=$(cat "$work/base.mem")
fi

median=$(printf '%s\n' "${paints[@]}" | sort -n | sed -n 3p)
mem_mb=$(( $(cat "$REEF_BENCH_PAINT_FILE.mem") / 1024 ))
base_mb=$(( base_kb / 1024 ))
deb_mb=$(awk -v b="$(stat -c %s "$deb")" 'BEGIN { printf "%.1f", b / 1048576 }')
ok() { if awk "BEGIN { exit !($1) }"; then echo "✓"; else echo "✗"; fi; }
echo
echo "cold start to first paint  median ${median} ms of ${paints[*]}   target ≤ 1000 ms $(ok "$median <= 1000")"
echo "idle memory (PSS, tree)    ${mem_mb} MB   target ≤ 150 MB $(ok "$mem_mb <= 150")"
if [ "$base_mb" -gt 0 ]; then
  echo "  baseline: WebKitGTK MiniBrowser, empty page: ${base_mb} MB  → REEF / baseline = $(awk -v a="$mem_mb" -v b="$base_mb" 'BEGIN { printf "%.2f", a / b }')×"
fi
echo ".deb                       ${deb_mb} MB ($(basename "$deb"))   target ≤ 15 MB $(ok "$deb_mb <= 15")"

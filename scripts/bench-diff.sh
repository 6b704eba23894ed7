#!/usr/bin/env bash
# A large change in the window: a 5,000-file, 200,000-line change (`reef bench diff --seed`, which
# also prints the file list's cost against bare git in the same run), opened in the real window
# under Xvfb, driven by WebDriver: from the click on its task to its file list on screen, p50/p95,
# against the demo's 5-file change in the same run. Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_app_build
cargo build --locked --release -p reef-cli -p reef-app
(cd tests/e2e && npm install --no-audit --no-fund --silent)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export REEF_DATA_DIR="$work/data" REEF_CONFIG="$work/config.toml"
: > "$REEF_CONFIG"
reef="$CARGO_TARGET_DIR/release/reef"
"$reef" demo >/dev/null
"$reef" --json bench diff --seed > "$work/seed.json"
demo=$("$reef" --json task list --search "Harden QuickForm" | python3 -c 'import json,sys; print([t["_id"] for t in json.load(sys.stdin)["tasks"] if t["title"].startswith("Harden")][0])')
python3 - "$work/seed.json" "$demo" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); s["demo_task"] = sys.argv[2]
print(f"reef bench diff: {s['files']} files, {s['lines']} lines; snapshot {s['snapshot_ms']:.0f} ms; file list p50 {s['file_list_ms']['p50']:.1f} ms, "
      f"p95 {s['file_list_ms']['p95']:.1f} ms vs bare git diff --numstat p50 {s['bare_numstat_ms']['p50']:.1f} ms ({s['ratio_p50']:.2f}x)")
json.dump(s, open(sys.argv[1], "w"))
PY
cd "$work"
xvfb-run -a -s "-screen 0 1440x900x24" dbus-run-session -- node "$OLDPWD/tests/e2e/bench-diff.mjs" "$CARGO_TARGET_DIR/release/reef-app" "$work/seed.json" "${RUNS:-7}"

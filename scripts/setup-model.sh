#!/usr/bin/env bash
# Fetches the in-process embedding model (all-MiniLM-L6-v2) into REEF's cache, or $1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir="${1:-${REEF_EMBED_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reef/models/all-minilm-l6-v2}}"
ensure_model "$dir"
echo "model ready in $dir"

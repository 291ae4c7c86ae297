#!/usr/bin/env bash
# CI for the VS Code extension, from a clean checkout with only node/npm and a Python that
# can import lloom_lsp ($PYTHON, else the repository's .venv, else python3), and PyPI (or
# a pip cache) for the bundled server's pinned wheels.
#
#   bash editors/vscode/scripts/ci.sh
#
# Steps: npm ci, settings-vs-schema check, typecheck, lint, bundled server, unit tests
# (which spawn the real server, and fail rather than skip without a Python), build, vsix.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x ../../.venv/bin/python ]]; then PYTHON="$PWD/../../.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHON
export LLOOM_REQUIRE_PYTHON=1

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "npm ci"
npm ci --no-audit --no-fund

step "settings match the server schema"
npm run --silent check-settings

step "typecheck"
npm run --silent typecheck

step "lint"
npm run --silent lint

step "bundled server (bundled/libs)"
bash bundled/build.sh

step "unit tests"
npm test --silent

step "build"
npm run --silent build

step "package"
rm -f lloom.vsix
# The local vsce (a devDependency); --no-dependencies because dist/ is a bundle, and it
# never prompts: repository and LICENSE are set, so there is nothing to ask.
# --no-rewrite-relative-links: the README's picture ships in the .vsix (images/), and the
# repository is not on GitHub or GitLab, where vsce would point relative links.
npx @vscode/vsce package --no-dependencies --no-rewrite-relative-links --out lloom.vsix </dev/null
ls -l lloom.vsix
# The .vsix must carry the server, and no bytecode the unit tests' Python wrote.
listing="$("$PYTHON" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' lloom.vsix)"
for want in extension/bundled/tool/lsp_server.py extension/bundled/libs/lloom_lsp/__main__.py \
  extension/bundled/libs/pygls/__init__.py extension/dist/extension.js; do
  grep -qx "$want" <<<"$listing" || { echo "ci: $want is missing from lloom.vsix" >&2; exit 1; }
done
if grep -E '__pycache__|\.pyc$|/testmodel/' <<<"$listing"; then
  echo "ci: lloom.vsix holds files not needed at runtime (above)" >&2
  exit 1
fi

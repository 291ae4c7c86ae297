#!/usr/bin/env bash
# CI for the VS Code extension, from a clean checkout with only node/npm and a Python that
# can import lloom_lsp ($PYTHON, else the repository's .venv, else python3).
#
#   bash editors/vscode/scripts/ci.sh
#
# Steps: npm ci, settings-vs-schema check, typecheck, lint, unit tests, build, vsix.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "npm ci"
npm ci --no-audit --no-fund

step "settings match the server schema"
npm run --silent check-settings

step "typecheck"
npm run --silent typecheck

step "lint"
npm run --silent lint

step "unit tests"
npm test --silent

step "build"
npm run --silent build

step "package"
rm -f lloom.vsix
# The local vsce (a devDependency); --no-dependencies because dist/ is a bundle, and it
# never prompts: repository and LICENSE are set, so there is nothing to ask.
npx @vscode/vsce package --no-dependencies --out lloom.vsix </dev/null
ls -l lloom.vsix

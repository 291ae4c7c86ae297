#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs
#   1. pytest: engine, backends, the language server (pytest-lsp), Neovim headless,
#      all against a real llama-server serving the project's own test model;
#   2. the VS Code extension's CI: schema check, typecheck, lint, unit tests, .vsix with
#      the server bundled;
#   3. the .vsix in a real VS Code (code-server + Playwright + Debian's Chromium), with
#      nothing but a bare Python to run its bundled server (--no-e2e skips it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

e2e=1
for arg in "$@"; do
  case "$arg" in
    --e2e) e2e=1 ;;  # the default; kept for old command lines
    --no-e2e) e2e=0 ;;
    *) echo "test.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

scripts/setup.sh --editors
# Everything real is installed now: a test that would skip for a missing part fails instead.
export LLOOM_REQUIRE_REAL=1

printf '\033[1m== lint and types\033[0m\n'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy lloom_lsp

printf '\033[1m== pytest\033[0m\n'
.venv/bin/python -m pytest

printf '\033[1m== Neovim plugin on Neovim 0.11\033[0m\n'
LLOOM_TEST_NVIM="$PWD/.cache/nvim-0.11/bin/nvim" .venv/bin/python -m pytest tests/editors/test_neovim*.py

printf '\033[1m== VS Code extension\033[0m\n'
PYTHON="$PWD/.venv/bin/python" bash editors/vscode/scripts/ci.sh

if [ "$e2e" = 1 ]; then
  printf '\033[1m== VS Code end to end (code-server)\033[0m\n'
  PYTHON="$PWD/.venv/bin/python" bash editors/vscode/e2e/run.sh
fi

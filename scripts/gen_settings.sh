#!/usr/bin/env bash
# Regenerate every file derived from the one settings schema (lloom_lsp/config.py):
# VS Code's package.json and its README's settings table, the Neovim schema and help, and
# the settings reference in docs/settings.md.  Tests fail when any of them is stale.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-.venv/bin/python}
PYTHON="$PWD/$PYTHON" node editors/vscode/scripts/gen-settings.mjs
"$PYTHON" editors/neovim/scripts/gen_schema.py
"$PYTHON" scripts/gen_settings_doc.py

#!/usr/bin/env bash
# The main job on a fresh machine: install, build the test model, start llama-server
# on it, and weave a story in the terminal (three rounds, accepting the best beam).
#   scripts/demo.sh ["Your story start"]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
exec .venv/bin/lloom-lsp demo "$@"

#!/usr/bin/env bash
# Fills bundled/libs with the language server and its runtime dependencies, for the .vsix,
# as Microsoft's Python tools extensions do (`pip install --target bundled/libs --no-deps`).
#
#   bash editors/vscode/bundled/build.sh
#
# Uses $PYTHON's pip (else the repository's .venv, else python3); needs PyPI, or a pip
# cache that holds the pinned wheels.  Dependencies come from requirements.txt (pinned,
# hashed, pure-Python wheels for Python 3.10+); the server itself from this checkout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi
# Built beside libs/ and swapped in at the end, so a .vsix packaged meanwhile (another
# checkout user's ci.sh or e2e) never sees half a bundle.
libs="$(mktemp -d "$here/.libs-XXXXXX")"
# The server is built from a copy of its sources: an in-tree build would leave build/ and
# egg-info in the checkout, and a stale build/lib would ship modules deleted since.
src="$(mktemp -d)"
trap 'rm -rf "$libs" "$src"' EXIT
cp "$repo/pyproject.toml" "$repo/README.md" "$src/"
cp -R "$repo/lloom_lsp" "$src/lloom_lsp"
find "$src" -name __pycache__ -prune -exec rm -rf {} +
pip=("$python" -m pip install --quiet --disable-pip-version-check --no-compile --no-deps --target "$libs")

# --implementation py with --only-binary: a wheel that is not pure Python fails here,
# since one .vsix must run on every platform.
"${pip[@]}" --require-hashes --only-binary=:all: --implementation py --python-version 3.10 \
  -r "$here/requirements.txt"
"${pip[@]}" --upgrade "$src"

# Not needed at runtime: the bigram test model's builder (the `demo` command only) and
# installed console scripts.
rm -rf "$libs/lloom_lsp/testmodel" "$libs/bin"
find "$libs" -name __pycache__ -prune -exec rm -rf {} +
"$python" -I -B -c "import sys; sys.path.insert(0, sys.argv[1]); import lloom_lsp.cli" "$libs"
chmod 755 "$libs"
rm -rf "$here/libs" && mv "$libs" "$here/libs"
echo "bundled/libs: $(du -sk "$here/libs" | cut -f1) KiB, $(ls "$here/libs" | grep -vc dist-info) packages"

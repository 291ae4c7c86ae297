"""``python -m lloom_lsp``: the same as the ``lloom-lsp`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())

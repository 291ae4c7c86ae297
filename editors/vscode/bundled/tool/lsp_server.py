"""Runs the lloom-lsp that the .vsix carries in ``bundled/libs``.

The VS Code extension starts this file as ``python -I bundled/tool/lsp_server.py`` (the
layout of Microsoft's Python tools extensions).  ``-I`` keeps the working directory,
PYTHONPATH and the user's site-packages off ``sys.path``; this file then puts
``bundled/libs`` first, so the bundled server and its pinned dependencies win over
whatever the interpreter has installed.
"""

import os
import sys

MIN_PYTHON = (3, 10)

if sys.version_info < MIN_PYTHON:
    # %-formatting and tuple concatenation on purpose: an old Python must parse this file
    # to say why it cannot run the server (no f-strings, no unpacking in displays).
    sys.stderr.write(
        "lloom-lsp needs Python %d.%d or newer; this is %s (%s)\n"  # noqa: UP031
        % (MIN_PYTHON + (sys.version.split()[0], sys.executable))  # noqa: RUF005
    )
    raise SystemExit(1)

LIBS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "libs")
sys.path.insert(0, LIBS)

from lloom_lsp.cli import main  # noqa: E402  (needs LIBS on sys.path first)

if __name__ == "__main__":
    raise SystemExit(main())

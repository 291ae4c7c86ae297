"""The command line (``lloom-lsp``, ``python -m lloom_lsp``): serving the language server, and
weaving, checking and describing from a terminal.

- :mod:`.main`: the argument parser and what each subcommand runs;
- :mod:`.commands`: the terminal's own weave, check and tree commands;
- :mod:`.terminal`: the beam list as a terminal shows it.
"""

from .main import main

__all__ = ["main"]

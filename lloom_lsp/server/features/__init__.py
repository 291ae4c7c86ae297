"""One module per LSP feature, each with ``register(server)``."""

from . import code_actions, commands, completion, inline, lifecycle

ALL = (lifecycle, completion, inline, code_actions, commands)

__all__ = ["ALL"]

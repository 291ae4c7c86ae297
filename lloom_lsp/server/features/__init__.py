"""One module per LSP feature, each with ``register(server)``."""

from . import code_actions, commands, completion, hover, inline, lifecycle, tree, warmup

ALL = (lifecycle, completion, inline, code_actions, hover, commands, tree, warmup)

__all__ = ["ALL"]

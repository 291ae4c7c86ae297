"""One module per LSP feature, each with ``register(server)``."""

from . import code_actions, commands, completion, inline, lifecycle, warmup

ALL = (lifecycle, completion, inline, code_actions, commands, warmup)

__all__ = ["ALL"]

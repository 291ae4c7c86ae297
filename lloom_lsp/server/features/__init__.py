"""One module per LSP feature, each with ``register(server)``."""

from . import (
    code_actions,
    commands,
    completion,
    hover,
    inline,
    lifecycle,
    shading,
    tree,
    warmup,
)

ALL = (lifecycle, completion, inline, code_actions, hover, commands, tree, warmup, shading)

__all__ = ["ALL"]

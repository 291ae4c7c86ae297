"""lloom-lsp: LLooM's weave of LLM token probabilities, as a language server.

Four rooms: :mod:`lloom_lsp.engine` (the weave), :mod:`lloom_lsp.backends` (wire
protocols), :mod:`lloom_lsp.server` (pygls) and the editor clients under ``editors/``.
:mod:`lloom_lsp.config` holds the one settings schema they share.
"""

__version__ = "0.1.0"

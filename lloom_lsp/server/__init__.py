"""The pygls language server: translates LSP to engine calls and back.

It owns settings, progress, cancellation and error reporting; the weave itself lives
in :mod:`lloom_lsp.engine` and the wire protocols in :mod:`lloom_lsp.backends`.
"""

from __future__ import annotations

import logging
import sys

from .app import LloomServer, LspLogHandler
from .features import ALL

__all__ = ["LloomServer", "create_server", "serve"]


def create_server() -> LloomServer:
    server = LloomServer()
    for feature in ALL:
        feature.register(server)
    return server


def serve(tcp: str | None = None, log_level: str = "WARNING") -> int:
    """Run the server on stdio (default) or TCP.  Only JSON-RPC ever goes to stdout.

    The client gets INFO and up as window/logMessage; stderr (which most clients also
    show) gets ``log_level`` and up, WARNING by default, so lines are not shown twice.
    """
    server = create_server()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    stderr.setLevel(log_level.upper())
    root = logging.getLogger()
    root.addHandler(stderr)
    root.setLevel(min(logging.INFO, stderr.level))
    # pygls logs every message body at INFO; keep that out of the user's log.
    logging.getLogger("pygls").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    to_client = LspLogHandler(server)
    to_client.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.getLogger("lloom_lsp").addHandler(to_client)
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not port.isdigit():
            raise SystemExit(f"lloom-lsp: error: --tcp wants HOST:PORT (got {tcp!r})")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()
    return server.exit_code

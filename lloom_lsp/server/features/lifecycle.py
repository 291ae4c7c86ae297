"""initialize (initializationOptions), configuration changes, closed documents, shutdown."""

from __future__ import annotations

import logging

from lsprotocol import types

from ..app import LloomServer
from . import shading

log = logging.getLogger("lloom_lsp.server.lifecycle")


def register(server: LloomServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: LloomServer, params: types.InitializeParams) -> None:
        # pygls does not keep initializationOptions: read them here, before
        # capabilities are computed.
        ls.store.set_init(params.initialization_options)
        client = params.client_info.name if params.client_info else "unknown client"
        log.info("lloom-lsp %s initialised by %s", ls.version, client)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: LloomServer, params: types.DidChangeConfigurationParams
    ) -> None:
        pushed = ls.store.set_pushed(params.settings)
        log.info("configuration changed (%s)", "pushed" if pushed else "pull again")
        # validated now, so a bad value is reported at once; only what changed is rebuilt
        await ls.weaver.settings_changed(await ls.settings_for(None))
        await shading.publish_all(ls)  # lloom.woven.shading may have turned on or off

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LloomServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.weaver.forget(params.text_document.uri)
        ls.spans.closed(params.text_document.uri)
        shading.forget(ls, params.text_document.uri)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: LloomServer, params: None) -> None:
        ls.weaver.cancel()
        await ls.weaver.reset()

"""The language server object: state shared by the feature modules, plus the two
places where pygls needed correcting (invalid params, error reporting) and logging."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.workspace import TextDocument

from .. import __version__
from ..config import Settings
from .settings import SettingsStore
from .weaving import WeaveService

__all__ = ["LloomProtocol", "LloomServer", "LspLogHandler"]

log = logging.getLogger("lloom_lsp.server")


#: The workDoneToken of the workspace/executeCommand being handled.  pygls hands
#: command handlers only the unpacked arguments, so the token travels beside them.
command_progress_token: contextvars.ContextVar[types.ProgressToken | None] = contextvars.ContextVar(
    "command_progress_token", default=None
)


class LloomProtocol(LanguageServerProtocol):
    """Three corrections to pygls' protocol.

    * Requests whose params cannot be read get -32602, as JSON-RPC requires; pygls
      logs the failure and drops the request, so the client would wait forever.
    * A command's workDoneToken reaches its handler (``command_progress_token``).
    * Cancelling a workspace/executeCommand cancels the command's task.
    """

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(
        self, params: types.ExecuteCommandParams
    ) -> Generator[Any, Any, Any]:
        # The handler's task copies this context when pygls starts it.
        command_progress_token.set(params.work_done_token)
        return (yield from super().lsp_workspace__execute_command(params))

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        inner = self._request_futures.get(msg_id)
        if inner is None:
            return
        # pygls never forgets the ids it makes up (one per notification, one per command a
        # request yields to): about 8 KB per keystroke, for as long as the server runs.
        inner.add_done_callback(lambda done: self._forget(msg_id, done))
        # A handler that a request's generator yields to (the command of a
        # workspace/executeCommand) runs under an id of its own, so $/cancelRequest
        # cancelled only the request's future and the weave went on: link the two.
        outer = getattr(callback, "keywords", {}).get("result_future")
        if outer is not None:
            outer.add_done_callback(lambda done: inner.cancel() if done.cancelled() else None)

    def _forget(self, msg_id: Any, done: Any) -> None:
        if self._request_futures.get(msg_id) is done:
            del self._request_futures[msg_id]

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                reason = exc.__cause__ or exc
                error = JsonRpcInvalidParams(f"invalid params for {data['method']}: {reason}")
                self._send_response(data["id"], None, error.to_response_error())
            raise


class LloomServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("lloom-lsp", __version__, protocol_cls=LloomProtocol)
        self.store = SettingsStore(self.show_error, self.show_warning)
        self.weaver = WeaveService(self)

    def report_server_error(self, error: Exception, source: Any) -> None:
        # Request errors already reach the client as responses; anything else is
        # logged rather than shown, so a bad message never spams the user.
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)

    def show_error(self, message: str) -> None:
        log.error("%s", message)
        self.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Error, message=message)
        )

    def show_warning(self, message: str) -> None:
        self.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=message)
        )

    def document(self, uri: str) -> TextDocument | None:
        """The open document, or None for a URI the client never opened."""
        try:
            doc = self.workspace.get_text_document(uri)
        except Exception as exc:  # odd URIs must never crash a request
            log.warning("cannot read document %r: %s", uri, exc)
            return None
        return doc if uri in self.workspace.text_documents else None

    async def settings_for(self, uri: str | None) -> Settings:
        """Settings for a document, pulling workspace/configuration once per scope."""
        if not self.store.has_pulled(uri) and self._can_pull():
            try:
                answer = await self.workspace_configuration_async(
                    types.ConfigurationParams(
                        items=[types.ConfigurationItem(scope_uri=uri, section="lloom")]
                    )
                )
                self.store.set_pulled(uri, answer[0] if answer else None)
            except Exception as exc:
                log.warning("workspace/configuration failed: %s", exc)
                self.store.set_pulled(uri, None)
        return self.store.get(uri)

    def _can_pull(self) -> bool:
        workspace = self.client_capabilities.workspace
        return bool(workspace and workspace.configuration)


class LspLogHandler(logging.Handler):
    """Forwards lloom_lsp's log records to the client as window/logMessage."""

    _LEVELS = (
        (logging.ERROR, types.MessageType.Error),
        (logging.WARNING, types.MessageType.Warning),
        (logging.INFO, types.MessageType.Info),
    )

    def __init__(self, server: LanguageServer) -> None:
        super().__init__(logging.INFO)
        self.server = server

    def emit(self, record: logging.LogRecord) -> None:
        if self.server.protocol.writer is None:
            return
        kind = next(
            (kind for level, kind in self._LEVELS if record.levelno >= level),
            types.MessageType.Log,
        )
        try:
            self.server.window_log_message(
                types.LogMessageParams(type=kind, message=self.format(record))
            )
        except Exception:  # logging must never break the server
            self.handleError(record)

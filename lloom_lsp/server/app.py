"""The language server object: state shared by the feature modules, plus the two
places where pygls needed correcting (invalid params, error reporting) and logging."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from collections.abc import Generator
from typing import Any

import attrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcMethodNotFound,
    JsonRpcServerNotInitialized,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol.language_server import lsp_method
from pygls.workspace import TextDocument

from .. import __version__
from ..config import Settings
from .documents import DocumentsProtocol
from .settings import SettingsStore
from .weave_service import WeaveService
from .woven_spans import WovenSpans

__all__ = ["LloomProtocol", "LloomServer", "LspLogHandler"]

log = logging.getLogger("lloom_lsp.server")


#: The workDoneToken of the workspace/executeCommand being handled.  pygls hands
#: command handlers only the unpacked arguments, so the token travels beside them.
command_progress_token: contextvars.ContextVar[types.ProgressToken | None] = contextvars.ContextVar(
    "command_progress_token", default=None
)


class LloomProtocol(DocumentsProtocol):
    """Corrections to pygls' protocol.

    * Every request is answered, as JSON-RPC requires; pygls logged and dropped those it
      could not read (-32602 now, or -32601 for an unknown method), those named like a
      notification and those after shutdown (-32600 now), so the client waited forever.
      An id that is not JSON (1e400 reads as infinity), or not a string or a number (an
      object, an array, a boolean), is refused with a null id.
    * Only the message itself is structured, not every object inside it (see below).
    * A client's answer that cannot be read fails the request it answers, instead of being
      dropped while the server waits for it.
    * A command's workDoneToken reaches its handler (``command_progress_token``).
    * Cancelling a workspace/executeCommand cancels the command's task.
    * The lifecycle is LSP's: before ``initialize`` a request is answered -32002 and a
      notification other than ``exit`` dropped (pygls served both, on a workspace that did
      not exist yet), a second ``initialize`` is refused (pygls made a new workspace, and
      the open documents were lost), and the process exits 0 after ``shutdown`` and 1
      without it (pygls' stdio loop swallowed the 1: see ``exit_code``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._initialized = False  # initialize has come (and was read)
        self._shutdown_asked = False  # shutdown has come: pygls' _shutdown waits for its end
        #: The process's exit status once ``exit`` has come: 0 after shutdown, else 1.
        self.exit_code: int | None = None

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        # LSP: 0 "if the shutdown request has been received before".  pygls asks whether the
        # shutdown handler has ended, and an exit sent right behind the shutdown was a 1.
        self._shutdown = self._shutdown or self._shutdown_asked
        self.exit_code = 0 if self._shutdown else 1
        return (yield from super().lsp_exit(*args))

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
            # And the other way: a command whose weave someone else stopped (lloom.cancel, a
            # settings change) ends cancelled, which pygls' generator raised out of a
            # callback, so the request was never answered.  Now it is answered -32800.
            inner.add_done_callback(
                lambda done: outer.cancel() if done.cancelled() and not outer.done() else None
            )

    def _handle_response(self, msg_id: Any, result: Any = None, error: Any = None) -> None:
        # A request of ours (workspace/configuration, say) whose asker was cancelled while
        # the client answered: pygls set the answer on the cancelled future, which raised
        # InvalidStateError and logged "Unable to handle message" as an error.
        future = self._request_futures.get(msg_id)
        if future is not None and future.done():
            del self._request_futures[msg_id]
            log.debug("the answer to %s came after its asker was cancelled", msg_id)
            return
        super()._handle_response(msg_id, result, error)

    def _forget(self, msg_id: Any, done: Any) -> None:
        # Not at once: pygls' shutdown cancels every request's future while it iterates over
        # them, and a callback that deleted one there failed the shutdown ("dictionary
        # changed size during iteration") whenever a request was still running.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._drop(msg_id, done)
        else:
            loop.call_soon(self._drop, msg_id, done)

    def _drop(self, msg_id: Any, done: Any) -> None:
        if self._request_futures.get(msg_id) is done:
            del self._request_futures[msg_id]

    # -- reading messages ------------------------------------------------------------
    #
    # pygls structures every object json.loads meets (its object_hook), nested ones too, so
    # params holding an object with a "jsonrpc" key were taken for a message.  Here the hook
    # leaves every object as it is, and the whole message is structured once it is read.

    def structure_message(self, data: dict[str, Any]) -> Any:
        return data

    def handle_message(self, message: Any) -> None:
        if isinstance(message, dict):
            message = self._structured(message)
            if message is None:
                return
        super().handle_message(message)

    def _structured(self, data: dict[str, Any]) -> Any:
        """The message ``data`` stands for, or None once it has been answered (or dropped,
        for a notification or an answer that cannot be read)."""
        msg_id, method = data.get("id"), data.get("method")
        is_request = "id" in data and isinstance(method, str)
        if isinstance(msg_id, float) and not math.isfinite(msg_id):
            # 1e400 reads as infinity, which would go back as Infinity: not JSON
            self._refuse(None, JsonRpcInvalidRequest(f"not a JSON-RPC id: {msg_id}"))
            return None
        if isinstance(msg_id, (bool, dict, list)) and isinstance(method, str):
            # JSON-RPC ids are strings or numbers (null is discouraged, and pygls copes); an
            # object id broke pygls' bookkeeping, answered -32603 with a traceback
            kind = {bool: "boolean", dict: "object", list: "array"}[type(msg_id)]
            self._refuse(None, JsonRpcInvalidRequest(f"not a JSON-RPC id: an {kind}"))
            return None
        if is_request and data.get("jsonrpc") != "2.0":
            self._refuse(msg_id, JsonRpcInvalidRequest('"jsonrpc" must be "2.0"'))
            return None
        if not self._initialized and method != types.INITIALIZE:
            if is_request:
                self._refuse(
                    msg_id, JsonRpcServerNotInitialized(f"{method}: initialize has not come yet")
                )
                return None
            if "id" not in data and isinstance(method, str) and method != types.EXIT:
                log.debug("dropped %s: initialize has not come yet", method)
                return None
        if is_request and method == types.INITIALIZE and self._initialized:
            self._refuse(msg_id, JsonRpcInvalidRequest("initialize may only be sent once"))
            return None
        if is_request and self._shutdown and method != types.EXIT:
            self._refuse(msg_id, JsonRpcInvalidRequest("the server is shutting down"))
            return None
        if is_request and (token := _bad_token(data.get("params"))):
            # lsprotocol lets any JSON through where a ProgressToken goes, and pygls' table
            # of tokens then failed on an array or object: -32603 with our traceback
            self._refuse(msg_id, JsonRpcInvalidParams(f"invalid params for {method}: {token}"))
            return None
        if is_request and _is_notification(self.get_message_type(method)):
            # pygls dropped the id and handled it as the notification: nobody answered
            self._refuse(msg_id, JsonRpcInvalidRequest(f"{method} is a notification"))
            return None
        try:
            message = super().structure_message(data)
        except JsonRpcException as exc:
            reason = exc.__cause__ or exc
            if is_request and self.get_message_type(method) is None:
                self._refuse(msg_id, JsonRpcMethodNotFound(f"method not found: {method}"))
            elif is_request:
                self._refuse(msg_id, JsonRpcInvalidParams(f"invalid params for {method}: {reason}"))
            elif "id" in data and "method" not in data:
                # The client's answer to one of our requests (workspace/applyEdit, say):
                # pygls logs and drops it, and whoever awaits it would wait forever.
                future = self._request_futures.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_exception(
                        JsonRpcInvalidParams(f"the client's answer could not be read: {reason}")
                    )
            return None
        # Only once read: an initialize with invalid params was refused, and never came.
        if is_request and method == types.INITIALIZE:
            self._initialized = True
        elif is_request and method == types.SHUTDOWN:
            self._shutdown_asked = True
        return message

    def _refuse(self, msg_id: Any, error: JsonRpcException) -> None:
        if msg_id is None:  # pygls would leave the id out, and JSON-RPC asks for a null one
            code, message = error.to_response_error().code, error.to_response_error().message
            self._send_data(
                {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
            )
            return
        self._send_response(msg_id, None, error.to_response_error())


def _bad_token(params: Any) -> str:
    """What is wrong with a request's progress tokens (LSP: an integer or a string)."""
    if not isinstance(params, dict):
        return ""
    for key in ("workDoneToken", "partialResultToken"):
        token = params.get(key)
        if token is not None and (isinstance(token, bool) or not isinstance(token, (int, str))):
            return f"{key} must be an integer or a string, not {type(token).__name__}"
    return ""


def _is_notification(message_type: Any) -> bool:
    """Whether an lsprotocol message type is a notification's (it has no ``id``)."""
    try:
        return message_type is not None and not any(
            field.name == "id" for field in attrs.fields(message_type)
        )
    except (TypeError, attrs.exceptions.NotAnAttrsClassError):
        return False


class LloomServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("lloom-lsp", __version__, protocol_cls=LloomProtocol)
        self.store = SettingsStore(self.show_error, self.show_warning)
        self.weaver = WeaveService(self)
        self.weaver.windows.warn = self.show_warning  # a memory block or file unread
        #: The woven tokens of every document (:mod:`.spans`).
        self.spans = WovenSpans()
        #: The documents whose last ``lloom/spans`` was not empty, so an empty one is owed
        #: once their spans are gone or the shading is turned off (:mod:`.features.shading`).
        self.shaded: set[str] = set()

    @property
    def exit_code(self) -> int:
        """What the process exits with: 1 after an ``exit`` that no ``shutdown`` came before,
        as LSP asks; otherwise 0 (a client that closed the stream without ``exit`` included)."""
        protocol = self.protocol
        return (protocol.exit_code or 0) if isinstance(protocol, LloomProtocol) else 0

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

    async def story(
        self, doc: TextDocument, position: types.Position, settings: Settings, *, inserted: str = ""
    ) -> str:
        """The story at ``position`` (with ``inserted`` typed there first): the one place
        every feature gets it (:mod:`.story`)."""
        return await self.weaver.windows.story_at(doc, position, settings, inserted=inserted)

    def story_now(
        self, doc: TextDocument, position: types.Position, settings: Settings, *, inserted: str = ""
    ) -> str:
        """:meth:`story` without waiting: sized by what is known of the backend now."""
        return self.weaver.windows.story_now(doc, position, settings, inserted=inserted)

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

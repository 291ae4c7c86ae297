"""Work-done progress as a context manager: begin, report, and end in ``finally``.

Uses the client's token where it sent one; otherwise creates one when the client
supports ``window.workDoneProgress``; otherwise does nothing.
"""

from __future__ import annotations

import logging
import uuid
from types import TracebackType

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ..engine.closing import BackgroundTasks, shielded

__all__ = ["Progress"]

log = logging.getLogger("lloom_lsp.server.progress")

#: ``window/workDoneProgress/create`` requests whose weave was cancelled before the client
#: answered: kept until the answer comes, so that it lands on a live future.
_unanswered = BackgroundTasks()


class Progress:
    def __init__(
        self,
        server: LanguageServer,
        token: types.ProgressToken | None,
        title: str,
        *,
        enabled: bool = True,
    ) -> None:
        self.server = server
        self.enabled = enabled
        self.token = token
        self.title = title
        self.end_message = ""
        self._active = False

    def _client_supports(self) -> bool:
        window = self.server.client_capabilities.window
        return bool(window and window.work_done_progress)

    async def __aenter__(self) -> Progress:
        if not self.enabled:
            return self
        if self.token is None:
            if not self._client_supports():
                return self
            self.token = f"lloom-{uuid.uuid4()}"
            # The request runs in a task of its own that a cancelled weave leaves alone.
            # Cancelled inside, pygls turned the cancellation into a JsonRpcException (which
            # the refusal handler below swallowed, so the cancelled weave went on), and the
            # client's answer later hit a cancelled future (pygls #621: InvalidStateError).
            try:
                await shielded(self.server.work_done_progress.create_async(self.token), _unanswered)
            except Exception as exc:  # a client may refuse; weaving goes on without
                log.debug("progress token refused: %s", exc)
                return self
        self.server.work_done_progress.begin(
            self.token, types.WorkDoneProgressBegin(title=self.title, cancellable=False)
        )
        self._active = True
        return self

    def report(self, message: str) -> None:
        if self._active and self.token is not None:
            self.server.work_done_progress.report(
                self.token, types.WorkDoneProgressReport(message=message)
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._active and self.token is not None:
            message = self.end_message or ("cancelled" if exc_type else "done")
            self.server.work_done_progress.end(
                self.token, types.WorkDoneProgressEnd(message=message)
            )
            self._active = False

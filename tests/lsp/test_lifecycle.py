"""The LSP lifecycle over real stdio: nothing is served before ``initialize``, which comes
once, and ``exit`` ends the process with 0 after ``shutdown`` and 1 without it.

The server runs as a subprocess on raw pipes, so that the test can send what a well-behaved
client (pytest-lsp's included) never would: requests before ``initialize``, ``initialize``
twice, ``exit`` with no ``shutdown``.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from typing import Any

from conftest import SERVER

#: Seconds the server has to answer, or to end after ``exit``.
TIMEOUT = 30.0
SERVER_NOT_INITIALIZED = -32002
INVALID_REQUEST = -32600
URI = "file:///lifecycle/story.txt"
#: Settings that every check refuses, so that the server says so when it reads them.
BAD_SETTINGS = {"lloom": {"weave": {"maxDepth": 0}}}


class RawClient:
    """``python -m lloom_lsp`` on pipes: frames written as they are, and read by a thread."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        #: Every message the server wrote, in order, answers included.
        self.received: list[dict[str, Any]] = []
        self.stderr = b""
        self._ids = 0
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while True:
                length = None
                while (line := stdout.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("ascii").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if not line or length is None:
                    return
                self._inbox.put(json.loads(stdout.read(length)))
        finally:
            self._inbox.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"method": method} if params is None else {"method": method, "params": params})

    def request(self, method: str, params: Any = None) -> int:
        """Send a request; returns its id, for :meth:`answer`."""
        self._ids += 1
        message: dict[str, Any] = {"id": self._ids, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self._ids

    def answer(self, msg_id: int) -> dict[str, Any]:
        """The server's response to request ``msg_id`` (what came before it is kept)."""
        while True:
            message = self._inbox.get(timeout=TIMEOUT)
            assert message is not None, f"the server ended before answering {msg_id}"
            self.received.append(message)
            if message.get("id") == msg_id and "method" not in message:
                return message

    def wait_for(self, method: str, text: str) -> None:
        """Read on until a ``method`` notification whose message holds ``text`` comes."""
        while True:
            message = self._inbox.get(timeout=TIMEOUT)
            assert message is not None, f"the server ended before a {method} with {text!r}"
            self.received.append(message)
            if message.get("method") == method and text in message["params"]["message"]:
                return

    def call(self, method: str, params: Any = None) -> dict[str, Any]:
        return self.answer(self.request(method, params))

    def initialize(self, options: Any = None) -> dict[str, Any]:
        params = {"processId": None, "rootUri": None, "capabilities": {}}
        if options is not None:
            params["initializationOptions"] = options
        answer = self.call("initialize", params)
        assert "capabilities" in answer.get("result", {}), answer
        self.notify("initialized", {})
        return answer

    def exit_code(self) -> int:
        """Close stdin after the messages sent, and the code the process ends with."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(TIMEOUT)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for thread in self._threads:
            thread.join(TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def shown(self, text: str) -> list[str]:
        """The window/showMessage and window/logMessage texts received that hold ``text``."""
        return [
            m["params"]["message"]
            for m in self.received
            if m.get("method") in ("window/showMessage", "window/logMessage")
            and text in m["params"]["message"]
        ]


# -- exit -----------------------------------------------------------------------------


def test_exit_after_shutdown_ends_with_0() -> None:
    lsp = RawClient()
    lsp.initialize()
    assert lsp.call("shutdown") == {"jsonrpc": "2.0", "id": 2, "result": None}
    lsp.notify("exit")
    assert lsp.exit_code() == 0, lsp.stderr.decode()


def test_exit_sent_with_shutdown_unanswered_ends_with_0() -> None:
    # "0 if the shutdown request has been received before": received, not answered.  The
    # shutdown handler awaits the weaves' end, and pygls only marks the server shut down
    # once it is done, so an exit right behind the shutdown found it still running.
    lsp = RawClient()
    lsp.initialize()
    lsp.request("shutdown")
    lsp.notify("exit")
    assert lsp.exit_code() == 0, lsp.stderr.decode()


def test_exit_without_shutdown_ends_with_1() -> None:
    lsp = RawClient()
    lsp.initialize()
    lsp.notify("exit")
    assert lsp.exit_code() == 1, lsp.stderr.decode()


def test_exit_before_initialize_ends_with_1() -> None:
    # exit is the one message a server that was never initialised must act on
    lsp = RawClient()
    lsp.notify("exit")
    assert lsp.exit_code() == 1, lsp.stderr.decode()


# -- before initialize ----------------------------------------------------------------


def test_requests_before_initialize_are_refused_with_server_not_initialized() -> None:
    lsp = RawClient()
    position = {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 0}}
    early = [
        lsp.call("textDocument/hover", position),
        lsp.call("workspace/executeCommand", {"command": "lloom.cancel", "arguments": []}),
        lsp.call("lloom/no-such-method", {}),
        lsp.call("shutdown"),
    ]
    for answer in early:
        assert answer["error"]["code"] == SERVER_NOT_INITIALIZED, answer
        assert "result" not in answer
    # The refused shutdown did not count: the server starts, and ends as usual.
    lsp.initialize()
    assert lsp.call("shutdown")["result"] is None
    lsp.notify("exit")
    assert lsp.exit_code() == 0, lsp.stderr.decode()


def test_notifications_before_initialize_are_dropped() -> None:
    lsp = RawClient()
    lsp.notify("workspace/didChangeConfiguration", {"settings": BAD_SETTINGS})
    lsp.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": URI, "languageId": "plaintext", "version": 1, "text": "Once"}},
    )
    lsp.notify("$/setTrace", {"value": "verbose"})
    lsp.initialize()
    # Before its answer to initialize, the server said only what initialize itself logs.
    assert [m["method"] for m in lsp.received[:-1]] == ["window/logMessage"], lsp.received
    assert "initialised by" in lsp.received[0]["params"]["message"]
    # Dropped, not read late: the same settings pushed now are refused, and only now.
    lsp.notify("workspace/didChangeConfiguration", {"settings": BAD_SETTINGS})
    lsp.wait_for("window/showMessage", "lloom.weave.maxDepth")
    lsp.call("shutdown")
    assert len([m for m in lsp.received if m.get("method") == "window/showMessage"]) == 1
    assert lsp.shown("server error") == []  # nothing failed for want of a workspace
    lsp.notify("exit")
    assert lsp.exit_code() == 0
    assert b"has the server been initialized" not in lsp.stderr, lsp.stderr.decode()


# -- initialize twice -----------------------------------------------------------------


def test_a_second_initialize_is_refused_and_changes_nothing() -> None:
    lsp = RawClient()
    lsp.initialize()
    lsp.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": URI, "languageId": "plaintext", "version": 1, "text": "Once"}},
    )
    params = {"processId": None, "rootUri": None, "capabilities": {}}
    again = lsp.call("initialize", {**params, "initializationOptions": BAD_SETTINGS})
    assert again["error"]["code"] == INVALID_REQUEST, again
    assert "once" in again["error"]["message"]
    assert "result" not in again
    # The server goes on as it was: pygls made a new workspace, and the open document was
    # lost (a change to it failed with a KeyError).
    lsp.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": URI, "version": 2},
            "contentChanges": [{"text": "Once upon a time"}],
        },
    )
    assert lsp.call("shutdown")["result"] is None
    assert lsp.shown("server error") == []
    lsp.notify("exit")
    assert lsp.exit_code() == 0, lsp.stderr.decode()

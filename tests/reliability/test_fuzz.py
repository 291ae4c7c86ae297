"""Fuzzing the server over stdio with Hypothesis.

The server runs as a subprocess on raw pipes and this file is its client, with its own
framing.  Every byte the server writes to stdout must belong to a ``Content-Length`` frame
holding one JSON-RPC 2.0 message, in strict JSON (no ``NaN``, no ``Infinity``), that
lsprotocol's types accept for its method (the answers to our requests included).  The inputs:
malformed frames, unknown methods, params of the wrong types, positions past the end or
inside a surrogate pair, didChange with bad ranges, 5 MB documents.  After every example:

* each request sent with a valid id (an integer or a string) has exactly one response, with
  that id, within ``REPLY_TIMEOUT``, of the shape its method promises; no response names an
  id that was never sent;
* a request with an id JSON-RPC does not allow (a fraction, a boolean, an object, an array,
  null), or that is not JSON-RPC 2.0 at all, gets at most one response, with that id or
  null: JSON-RPC 2.0 answers an Invalid Request with id null, a lenient server echoes it;
* the process is alive and a probe (``lloom.cancel``) still answers.

At the end of each test ``shutdown`` and ``exit`` end the process with code 0, and the only
tracebacks in its stderr are pygls' logs of a message it refused (answered, where it had a
valid id).  Any other traceback (an asyncio task that died, lloom's own "weave failed"
catch-all for bugs, a crash) fails the test.

The backend is a stand-in for llama-server, in this process: it answers every request with
HTTP 400 at once (no retry) and records each ``/completion`` prompt.  So weaves fail in
milliseconds with empty answers, and the prompt shows the story the server read at the
requested position.  ``test_unknown_methods`` and ``test_refused_backend`` use the refused
port 9 instead (a weave there takes about 0.4 s of connection retries).

Each test keeps one server for all its examples, so state builds up; an example that fails
leaves a fresh server to the next (and to Hypothesis' shrinking).  Examples are
derandomized: every run tries the same inputs.  The module prints how many cases ran.

``LLOOM_FUZZ_LONG=1`` is the long mode: 10,000 cases in all instead of about 400 (every
property's examples thirty times over) and the 5 MB documents, one of them a single line,
edited and asked again and again.  Through them the server's memory (VmRSS, from
``/proc/<pid>/status``) is sampled and must stay under ``RSS_CAP_MB``, and grow no more
than ``RSS_GROWTH_MB`` after the first round; its start, peak and end are printed with the
slowest answers.  CI runs the short mode.

Server bugs found here are pinned by tests at the end: a fixed one by a plain test, an open
one by a ``known_bug`` (xfail, strict) test (none is open now).  The strategies leave an
open bug's inputs out (``KNOWN_BAD_KEYS`` and comments that name its test), so that the
properties stay green until the bug is fixed, when the pinning test passes, fails as XPASS,
and the strategy can take the inputs back.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lsprotocol.converters import get_converter
from lsprotocol.types import METHOD_TO_TYPES, Range

from lloom_lsp.server.features.shading import SPANS_NOTIFICATION
from lloom_lsp.server.weave_service import STATUS_NOTIFICATION

SERVER = [sys.executable, "-m", "lloom_lsp"]
#: Seconds a request has to be answered (the backend stand-in fails a weave in milliseconds).
REPLY_TIMEOUT = 10.0
#: Seconds the xfail tests wait for a response that does not come, once a probe sent after
#: it has been answered (the server reads messages in order).
GRACE = 0.5
REFUSED = "http://127.0.0.1:9"
URI = "file:///fuzz/story.txt"
NEVER_OPENED = "file:///fuzz/never-opened.txt"
MAX_CONTEXT_CHARS = 16000  # lloom.story.maxContextChars' default
FAR = 2**31 - 1  # the largest line or character LSP allows (a uinteger)
VALID_ID_STYLES = ("int", "negative", "huge", "string")
ODD_ID_STYLES = ("fraction", "true", "false", "null", "object", "array")

#: Fuzz cases run (Hypothesis examples and fixed cases), by test; printed at the end.
FUZZ_CASES: Counter[str] = Counter()
#: Messages sent in those cases, and internal errors (-32603) answered.
FUZZ_TOTALS: Counter[str] = Counter()
#: The slowest answer of each kind that the big documents got, in seconds; printed too.
TIMINGS: dict[str, float] = {}
#: The server's RSS through each 5 MB document test, in MiB: start, peak, end; printed too.
MEMORY: dict[str, tuple[float, float, float]] = {}

#: ``LLOOM_FUZZ_LONG=1``: every property's examples this many times over (10,000 in all).
LONG = os.environ.get("LLOOM_FUZZ_LONG") == "1"
SCALE = 30 if LONG else 1
#: Rounds of edits and requests each 5 MB document gets.
BIG_ROUNDS = 40 if LONG else 2
#: The server's RSS must stay under this with a 5 MB document open (its text is 21 MB in
#: Python: one emoji makes every character four bytes), and grow no more than
#: RSS_GROWTH_MB after the first round of edits.
RSS_CAP_MB = 600
RSS_GROWTH_MB = 64

#: A long-mode test runs past pytest's 300 s timeout (pyproject.toml).
pytestmark = [pytest.mark.timeout(3600)] if LONG else []

FUZZ = settings(
    max_examples=40 * SCALE,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        # One server serves every example of a test: on purpose, state builds up.
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


class Missing:
    """Params left out of a message."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


class ProtocolViolation(AssertionError):
    pass


def frame(body: bytes, *, content_type: bool = False, type_first: bool = False) -> bytes:
    headers = [b"Content-Length: %d\r\n" % len(body)]
    if content_type:
        kind = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
        headers.insert(0 if type_first else 1, kind)
    return b"".join(headers) + b"\r\n" + body


def id_key(value: Any) -> str:
    """A hashable name for an id (``true`` and ``1`` differ, and ``1`` and ``1.0``)."""
    return json.dumps(value, sort_keys=True)


def _not_json(name: str) -> Any:
    raise ProtocolViolation(f"{name} is not JSON")


# -- the backend stand-in ------------------------------------------------------------------------


class RecordingBackend:
    """A llama-server that refuses everything (HTTP 400: no retry) and records prompts."""

    def __init__(self) -> None:
        self.prompts: list[Any] = []
        self._lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._refuse()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/completion":
                    with backend._lock:
                        backend.prompts.append(json.loads(body).get("prompt"))
                self._refuse()

            def _refuse(self) -> None:
                answer = b'{"error": {"code": 400, "message": "the fuzz backend says no"}}'
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def taken(self) -> list[Any]:
        """The prompts recorded since the last call."""
        with self._lock:
            prompts, self.prompts = self.prompts, []
        return prompts

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


# -- the client --------------------------------------------------------------------------------

#: Structures messages as lsprotocol's types: the server must send LSP, not just JSON-RPC.
LSP_TYPES = get_converter()
_HEADER = re.compile(rb"(Content-Length|Content-Type): ([^\r\n]*)\r\n")
_LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([A-Z]+) (\S+): (.*)")
#: pygls' logs of a message it could not take (and answered, if it had an id): the only
#: records allowed a traceback.
_HANDLED = (
    "Unable to deserialize message",
    "Unable to handle message",
    "Exception occurred for message",
    "Failed to handle request",
    "Failed to handle notification",
)


class LspProcess:
    """``python -m lloom_lsp`` on raw pipes, read by a strict frame reader.

    A writer thread does every write, so the reader never waits on a full stdin while the
    server waits on a full stdout; the reader answers the server's own requests.
    """

    def __init__(
        self,
        backend_url: str,
        *,
        encoding: str = "utf-16",
        apply_edit_reply: dict[str, Any] | None = None,
    ) -> None:
        self.apply_edit_reply = apply_edit_reply or {
            "result": {"applied": False, "failureReason": "the fuzz client applies nothing"}
        }
        self.proc = subprocess.Popen(
            SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._cond = threading.Condition()
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self.received: list[dict[str, Any]] = []
        self.responses: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self.sent: dict[str, str] = {}  # valid ids: exactly one response each
        self.methods: dict[str, Any] = {}  # the method of each request sent, by id
        self._creates = 0
        self.lenient: Counter[str] = Counter()  # other ids: at most one response per send
        self.violations: list[str] = []
        self.write_error: str | None = None
        self.stdout_done = False
        self.stderr = bytearray()
        self._ids = 0
        self._threads = [
            threading.Thread(target=self._write, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            self._initialize(backend_url, encoding)
        except BaseException:
            self.kill()
            raise

    # -- writing

    def _write(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        while (data := self._outbox.get()) is not None:
            if self.write_error is None:
                try:
                    stdin.write(data)
                    stdin.flush()
                except OSError as exc:
                    self.write_error = f"writing to the server failed: {exc!r}"
        try:
            stdin.close()
        except OSError:
            pass

    def send_raw(self, data: bytes) -> None:
        """Bytes for stdin as they are: a frame, or not."""
        FUZZ_TOTALS["messages"] += 1
        self._outbox.put(data)

    def send(self, message: Any) -> None:
        self.send_raw(frame(json.dumps(message).encode()))

    def new_id(self, style: str = "int") -> Any:
        """A fresh id in a ``VALID_ID_STYLES`` or ``ODD_ID_STYLES`` style."""
        self._ids += 1
        n = self._ids
        return {
            "int": n,
            "negative": -n,
            "huge": 2**70 + n,
            "string": f"fuzz-{n}",
            "fraction": n + 0.5,
            "true": True,
            "false": False,
            "null": None,
            "object": {"n": n},
            "array": [n],
        }[style]

    def expect(self, message_id: Any, what: str) -> str:
        """Note a request sent with a valid id: it must get exactly one response."""
        key = id_key(message_id)
        assert key not in self.sent, f"id {key} reused"
        self.sent[key] = what
        return key

    def request(self, method: Any, params: Any = MISSING, *, style: str = "int") -> str:
        """Send a request; returns its id's key (for ``reply``)."""
        message_id = self.new_id(style)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": message_id, "method": method}
        if params is not MISSING:
            message["params"] = params
        body = json.dumps(message).encode()
        key = id_key(message_id)
        self.methods[key] = method
        # Noted before it is sent: the answer can come before this thread goes on, and the
        # reader would take it for the answer to an id never sent.
        if style in VALID_ID_STYLES:
            self.expect(message_id, body.decode()[:500])
        else:
            self.lenient[key] += 1
        self.send_raw(frame(body))
        return key

    def notify(self, method: Any, params: Any = MISSING) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not MISSING:
            message["params"] = params
        self.send(message)

    # -- reading

    def _read_stderr(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        while chunk := stderr.read1(65536):
            self.stderr += chunk

    def _read_stdout(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while True:
                length = None
                while True:
                    line = stdout.readline()
                    if not line:
                        if length is not None:
                            raise ProtocolViolation("stdout ended inside a frame's headers")
                        return
                    if line == b"\r\n":
                        break
                    header = _HEADER.fullmatch(line)
                    if header is None:
                        raise ProtocolViolation(f"not a frame header on stdout: {line[:200]!r}")
                    if header[1] == b"Content-Length":
                        if not header[2].isdigit():
                            raise ProtocolViolation(f"a bad Content-Length: {line!r}")
                        length = int(header[2])
                if length is None:
                    raise ProtocolViolation("a frame without Content-Length")
                body = stdout.read(length)
                if len(body) != length:
                    raise ProtocolViolation(f"stdout ended inside a frame: {body[:200]!r}")
                self._take(self._parse(body))
        except ProtocolViolation as exc:
            with self._cond:
                self.violations.append(str(exc))
                self._cond.notify_all()
            stdout.read()  # drain, so that the server never blocks on a full pipe
        finally:
            with self._cond:
                self.stdout_done = True
                self._cond.notify_all()

    @staticmethod
    def _parse(body: bytes) -> dict[str, Any]:
        try:
            message = json.loads(body.decode("utf-8"), parse_constant=_not_json)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProtocolViolation(f"a frame that is not JSON ({exc}): {body[:300]!r}") from None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise ProtocolViolation(f"not a JSON-RPC 2.0 message: {body[:300]!r}")
        if "method" in message:
            if not isinstance(message["method"], str):
                raise ProtocolViolation(f"a method that is not a string: {body[:300]!r}")
            return message
        if "id" not in message or ("result" in message) == ("error" in message):
            raise ProtocolViolation(f"a response needs an id, and result or error: {body[:300]!r}")
        error = message.get("error")
        if error is not None and not (
            isinstance(error, dict)
            and type(error.get("code")) is int
            and isinstance(error.get("message"), str)
        ):
            raise ProtocolViolation(f"a malformed error object: {body[:300]!r}")
        return message

    def _lsp_violation(self, message: dict[str, Any]) -> str | None:
        """Why ``message`` is not what LSP defines for its method (None: it is)."""
        if "method" in message:
            method = message["method"]
            if method == STATUS_NOTIFICATION:  # our documented extensions
                return _status_violation(message)
            if method == SPANS_NOTIFICATION:
                return _spans_violation(message)
            kind = METHOD_TO_TYPES.get(method, (None,))[0]
            if kind is None:
                return f"a method LSP does not define: {method!r}"
        else:  # a response to a request with a valid id (the others may echo any id)
            key = id_key(message["id"])
            method = self.methods.get(key) if key in self.sent else None
            types = METHOD_TO_TYPES.get(method) if isinstance(method, str) else None
            if "result" not in message or types is None or types[1] is None:
                return None
            kind = types[1]
        try:
            LSP_TYPES.structure(message, kind)
        except Exception as exc:
            return f"not a valid {kind.__name__} ({exc!r}): {json.dumps(message)[:300]}"
        return None

    def _take(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:
            self._answer(message)
        invalid = self._lsp_violation(message)
        with self._cond:
            if invalid is not None:
                self.violations.append(invalid)
            self.received.append(message)
            if "method" not in message:
                key = id_key(message["id"])
                answers = self.responses[key]
                answers.append(message)
                if message["id"] is None:
                    pass  # a Parse error or an Invalid Request: allowed, to nobody in particular
                elif key in self.sent:
                    if len(answers) > 1:
                        self.violations.append(f"answered {len(answers)} times: {self.sent[key]}")
                elif key in self.lenient:
                    if len(answers) > self.lenient[key]:
                        self.violations.append(f"odd id {key} answered more often than sent")
                else:
                    self.violations.append(f"a response for an id never sent: {message}")
                if message.get("error") and message["error"]["code"] == -32603:
                    # a handler raised what nobody expected: a bug, whatever the input
                    FUZZ_TOTALS["internal errors"] += 1
                    self.violations.append(f"internal error: {message['error']['message']}")
            self._cond.notify_all()

    def _answer(self, request: dict[str, Any]) -> None:
        """Answer the server's requests, so that it is never left waiting."""
        method = request["method"]
        reply: dict[str, Any] = {"result": None}
        if method == "workspace/applyEdit":
            reply = self.apply_edit_reply
        elif method == "window/workDoneProgress/create":
            self._creates += 1  # every other token is refused: the server weaves on
            if self._creates % 2 == 0:
                reply = {"error": {"code": -32603, "message": "the fuzz client has no progress"}}
        elif method == "workspace/configuration":
            items = (request.get("params") or {}).get("items") or []
            reply = {"result": [None for _ in items]}
        answer = {"jsonrpc": "2.0", "id": request["id"], **reply}
        self._outbox.put(frame(json.dumps(answer).encode()))

    # -- waiting and checking

    def _broken(self) -> str | None:
        if self.violations:
            return "protocol violation: " + "; ".join(self.violations[:5])
        if self.stdout_done:
            return f"the server closed stdout (exit code {self.proc.poll()})"
        return self.write_error

    def _fail(self, why: str) -> None:
        tail = self.stderr.decode(errors="replace")[-3000:]
        raise AssertionError(f"{why}\n--- the server's stderr, its end ---\n{tail}")

    def reply(self, key: str, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        """The response to a request, waiting up to ``timeout``; fails on any violation."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.responses.get(key):
                if (why := self._broken()) is not None:
                    self._fail(why)
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fail(f"no response within {timeout} s to {self.sent.get(key, key)}")
                self._cond.wait(min(left, 0.5))
            return self.responses[key][0]

    def answered(self, key: str, timeout: float) -> bool:
        """Whether a response for ``key`` arrives within ``timeout`` (the xfail tests)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.responses.get(key) and not self.violations and not self.stdout_done:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.2))
            return bool(self.responses.get(key))

    def call(self, method: str, params: Any = MISSING) -> dict[str, Any]:
        return self.reply(self.request(method, params))

    def probe(self) -> None:
        answer = self.call("workspace/executeCommand", {"command": "lloom.cancel"})
        cancelled = (answer.get("result") or {}).get("cancelled")
        assert type(cancelled) is int and cancelled >= 0, answer

    def settle(self) -> None:
        """Every request with a valid id is answered, and the server still serves."""
        for key in list(self.sent):
            self.reply(key)
        self.probe()
        with self._cond:
            if (why := self._broken()) is not None:
                self._fail(why)
        assert self.proc.poll() is None, "the server exited"

    def probed(self) -> bool:
        """A probe for the xfail tests: whether it is answered, without checking anything."""
        return self.answered(
            self.request("workspace/executeCommand", {"command": "lloom.cancel"}), REPLY_TIMEOUT
        )

    def _initialize(self, backend_url: str, encoding: str) -> None:
        answer = self.call(
            "initialize",
            {
                "processId": None,
                "rootUri": None,
                "clientInfo": {"name": "fuzz"},
                "capabilities": {
                    "general": {"positionEncodings": [encoding]},
                    "workspace": {
                        "configuration": False,
                        "applyEdit": True,
                        "workspaceEdit": {"documentChanges": True},
                    },
                    "window": {"workDoneProgress": True},
                    "textDocument": {"inlineCompletion": {}, "codeAction": {}},
                },
                "initializationOptions": {
                    "lloom": {
                        "backend": {"url": backend_url, "type": "llamacpp"},
                        "warmup": {"enabled": False},
                    }
                },
            },
        )
        assert answer["result"]["capabilities"]["positionEncoding"] == encoding, answer
        self.notify("initialized", {})

    def open(self, text: str, uri: str = URI, version: int = 1) -> None:
        document = {"uri": uri, "languageId": "plaintext", "version": version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": document})

    def close_document(self, uri: str = URI) -> None:
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    def change(self, version: int, *changes: dict[str, Any], uri: str = URI) -> None:
        params = {"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}
        self.notify("textDocument/didChange", params)

    def story_at(self, backend: RecordingBackend, line: int, character: int) -> Any:
        """The prompt the backend got for a completion at (line, character)."""
        backend.taken()
        position = {"line": line, "character": character}
        answer = self.call(
            "textDocument/completion", {"textDocument": {"uri": URI}, "position": position}
        )
        assert answer.get("result") == {"isIncomplete": False, "items": []}, answer
        prompts = backend.taken()
        assert prompts, f"the weave at {position} never asked the backend"
        assert all(prompt == prompts[0] for prompt in prompts), prompts
        return prompts[0]

    # -- ending

    def finish(self) -> None:
        """shutdown and exit: code 0, and no traceback but pygls' handled ones in stderr."""
        self.settle()
        answer = self.call("shutdown")
        assert "result" in answer and answer["result"] is None, answer
        self.notify("exit")
        self._outbox.put(None)
        try:
            code = self.proc.wait(REPLY_TIMEOUT)
        finally:
            self.kill()
        stderr = self.stderr.decode(errors="replace")
        assert code == 0, f"exit code {code}\n{stderr[-3000:]}"
        assert not self.violations, self.violations
        unexpected = unexpected_tracebacks(stderr)
        assert not unexpected, "\n\n".join(unexpected)[:6000]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def unexpected_tracebacks(stderr: str) -> list[str]:
    """Log records (or stray output) in stderr with a traceback that pygls did not handle."""
    records: list[list[str]] = [[]]
    for line in stderr.splitlines():
        if _LOG_RECORD.match(line):
            records.append([line])
        else:
            records[-1].append(line)
    found = []
    for lines in records:
        text = "\n".join(lines)
        if "Traceback" not in text and "was never retrieved" not in text:
            continue
        head = _LOG_RECORD.match(lines[0]) if lines else None
        if head and head[2].startswith("pygls.") and head[3].startswith(_HANDLED):
            continue
        found.append(text)
    return found


class Harness:
    """One server for every example of a test; a failed example leaves a fresh one."""

    def __init__(self, name: str, backend_url: str, **options: Any) -> None:
        self.name = name
        self.backend_url = backend_url
        self.options = options
        self.lsp = LspProcess(backend_url, **options)

    @contextmanager
    def case(self) -> Iterator[LspProcess]:
        FUZZ_CASES[self.name] += 1
        try:
            yield self.lsp
            self.lsp.settle()
        except Exception:  # not Hypothesis' StopTest (a BaseException): the server is fine
            # A broken server would fail every later example, Hypothesis' shrinking included.
            self.lsp.kill()
            self.lsp = LspProcess(self.backend_url, **self.options)
            raise


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    started = time.monotonic()
    yield
    by_test = ", ".join(f"{name} {n}" for name, n in sorted(FUZZ_CASES.items()))
    line = (
        f"fuzz: {sum(FUZZ_CASES.values())} cases ({by_test}) and "
        f"{FUZZ_TOTALS['known-bug cases']} known-bug cases, {FUZZ_TOTALS['messages']} "
        f"messages, {FUZZ_TOTALS['internal errors']} answered -32603, in "
        f"{time.monotonic() - started:.1f} s"
    )
    shown = {"known-bug cases", "messages", "internal errors"}
    extra = [f"{name} {n}" for name, n in sorted(FUZZ_TOTALS.items()) if name not in shown]
    if extra:
        line += "; " + ", ".join(extra)
    if TIMINGS:
        line += "; slowest answers: " + ", ".join(f"{k} {v:.2f} s" for k, v in TIMINGS.items())
    if MEMORY:
        line += "; server RSS start/peak/end: " + ", ".join(
            f"{k} {a:.0f}/{b:.0f}/{c:.0f} MiB" for k, (a, b, c) in MEMORY.items()
        )
    # shown in every run, not only with -s (as capsys.disabled() does it)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture
def backend() -> Iterator[RecordingBackend]:
    stand_in = RecordingBackend()
    yield stand_in
    stand_in.close()


@pytest.fixture
def start(
    backend: RecordingBackend, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Harness]]:
    """This test's server (one per set of options, shared by its examples), ended with
    shutdown and exit, and checked."""
    started: dict[str, Harness] = {}

    def start(url: str | None = None, **options: Any) -> Harness:
        key = repr((url, sorted(options.items())))
        if key not in started:
            started[key] = Harness(request.node.name, url or backend.url, **options)
        return started[key]

    yield start
    for harness in started.values():
        harness.lsp.finish()


class SharedServerBroken(RuntimeError):
    """Not the bug a known-bug test pins: it must not count as that bug."""


@pytest.fixture(scope="module")
def shared_backend() -> Iterator[RecordingBackend]:
    stand_in = RecordingBackend()
    yield stand_in
    stand_in.close()


@pytest.fixture(scope="module")
def _shared_buggy(shared_backend: RecordingBackend) -> Iterator[LspProcess]:
    lsp = LspProcess(shared_backend.url)
    yield lsp
    lsp.kill()


@pytest.fixture
def buggy(_shared_buggy: LspProcess) -> LspProcess:
    """One server for the known-bug tests whose bug leaves it serving (a request left
    unanswered, a wrong story): killed at the end, never checked.  It must answer a probe
    first, or the test fails (``SharedServerBroken``) instead of passing as the bug."""
    FUZZ_TOTALS["known-bug cases"] += 1
    if not _shared_buggy.probed():
        raise SharedServerBroken(_shared_buggy._broken() or "the probe got no answer")
    return _shared_buggy


@pytest.fixture
def fresh_buggy(backend: RecordingBackend) -> Iterator[LspProcess]:
    """A server of its own for a known-bug test whose bug breaks the stream or the ids."""
    FUZZ_TOTALS["known-bug cases"] += 1
    lsp = LspProcess(backend.url)
    yield lsp
    lsp.kill()


def _status_violation(message: dict[str, Any]) -> str | None:
    """Why a ``lloom/status`` notification is not what docs/protocol.md documents (None: it
    is)."""
    params = message.get("params")
    if "id" in message or not isinstance(params, dict):
        return f"lloom/status must be a notification with params: {json.dumps(message)[:300]}"
    if set(params) != {"uri", "state", "message"} or params["state"] not in {
        "weaving",
        "done",
        "failed",
        "cancelled",
        "idle",
    }:
        return f"a malformed lloom/status: {json.dumps(message)[:300]}"
    if not isinstance(params["uri"], str) or not isinstance(params["message"], str):
        return f"a malformed lloom/status: {json.dumps(message)[:300]}"
    return None


def _spans_violation(message: dict[str, Any]) -> str | None:
    """Why a ``lloom/spans`` notification is not what the README documents (None: it is)."""
    params = message.get("params")
    bad = f"a malformed lloom/spans: {json.dumps(message)[:300]}"
    if "id" in message or not isinstance(params, dict):
        return f"lloom/spans must be a notification with params: {json.dumps(message)[:300]}"
    if set(params) != {"uri", "version", "spans"} or not isinstance(params["uri"], str):
        return bad
    if not (params["version"] is None or type(params["version"]) is int):
        return bad
    spans = params["spans"]
    if not isinstance(spans, list):
        return bad
    for span in spans:
        try:
            LSP_TYPES.structure(span["range"], Range)
        except Exception:
            return bad
        prob = span.get("prob")
        if not isinstance(span.get("text"), str) or not isinstance(prob, (int, float)):
            return bad
        if not 0 <= prob <= 1:
            return bad
    return None


def known_bug(reason: str) -> pytest.MarkDecorator:
    """xfail, strict: the day the bug is fixed the test passes, and fails as XPASS."""
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)


# -- strategies --------------------------------------------------------------------------------

#: Keys of real params, so that junk often lands where the server looks.
FIELDS = (
    "textDocument uri position line character range start end context triggerKind only "
    "diagnostics command arguments text version contentChanges rangeLength workDoneToken "
    "partialResultToken selectedCompletionInfo triggerCharacter id method params settings "
    "languageId value token"
).split()
#: Keys that a known bug pins: none now ("jsonrpc", which lost the request, is fixed: see
#: test_params_holding_a_jsonrpc_key_are_answered).
KNOWN_BAD_KEYS: frozenset[str] = frozenset()
#: Settings groups: junk must not move the backend or start warm-ups.
SETTING_GROUPS = frozenset({"lloom", "backend", "weave", "story", "inline", "warmup"})
SPECIAL_CHARS = list('ab z\t\n\r"\\/{}:,.é猫🍎🙂\x00\x7f\u200b')
# No lone surrogates: test_a_lone_surrogate_in_the_document_still_weaves.
CHARS = st.one_of(
    st.sampled_from(SPECIAL_CHARS),
    st.integers(0x20, 0x10FFFF).filter(lambda c: not 0xD800 <= c <= 0xDFFF).map(chr),
)
STRINGS = st.text(CHARS, max_size=12)
KEYS = st.one_of(st.sampled_from(FIELDS), STRINGS).filter(
    lambda key: key not in KNOWN_BAD_KEYS and key not in SETTING_GROUPS
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    STRINGS,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=10,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*path, index))


@st.composite
def corrupted(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """A valid value with 0 to 2 corruptions, each at a random place in it: replaced by
    any JSON value (a wrong type, a wrong shape, a number out of range), deleted, or given
    an extra key.  A third are left whole, so that many requests get past the params."""
    value = draw(valid)
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(list(_paths(value))))
        if not path:
            value = draw(JSON)
            continue
        *head, last = path
        parent = value
        for step in head:
            parent = parent[step]
        how = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if how == "replace":
            parent[last] = draw(JSON)
        elif how == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(JSON)
        else:
            parent.append(draw(JSON))
    return value


#: Lines and characters LSP allows (uintegers): small ones, and the largest.  Negative and
#: larger numbers come from corruptions.
COORD = st.one_of(st.integers(0, 8), st.just(FAR))
POSITION = st.fixed_dictionaries({"line": COORD, "character": COORD})
RANGE = st.fixed_dictionaries({"start": POSITION, "end": POSITION})
DOC_URI = st.sampled_from(
    [URI] * 5 + [NEVER_OPENED, "", "not a uri", "file://", "untitled:Untitled-1", "file:///%zz"]
)
TEXT_DOCUMENT = st.fixed_dictionaries({"uri": DOC_URI})
TOKEN = st.one_of(st.integers(0, 2**31), STRINGS)
#: Documents: emoji (surrogate pairs in UTF-16), CJK, accents, all three LSP line breaks, and
#: characters str.splitlines breaks at but LSP does not (a form feed, NEL, U+2028).
DOC_TEXT = st.text(st.sampled_from(list("ab z\t.é猫🍎🙂\n\r\x0c\x85\u2028")), max_size=40)

COMPLETION = st.fixed_dictionaries(
    {"textDocument": TEXT_DOCUMENT, "position": POSITION},
    optional={
        "context": st.fixed_dictionaries(
            {"triggerKind": st.integers(1, 3)}, optional={"triggerCharacter": STRINGS}
        ),
        "workDoneToken": TOKEN,
        "partialResultToken": TOKEN,
    },
)
INLINE = st.fixed_dictionaries(
    {
        "textDocument": TEXT_DOCUMENT,
        "position": POSITION,
        "context": st.fixed_dictionaries({"triggerKind": st.integers(1, 2)}),
    },
    optional={"workDoneToken": TOKEN},
)
CODE_ACTION = st.fixed_dictionaries(
    {
        "textDocument": TEXT_DOCUMENT,
        "range": RANGE,
        "context": st.fixed_dictionaries(
            {"diagnostics": st.just([])},
            optional={
                "only": st.lists(st.sampled_from(["quickfix", "refactor", ""]), max_size=2),
                "triggerKind": st.integers(1, 2),
            },
        ),
    },
    optional={"workDoneToken": TOKEN},
)
HOVER = st.fixed_dictionaries({"textDocument": TEXT_DOCUMENT, "position": POSITION})
COMMAND_ARGUMENTS = {
    "lloom.weave": st.tuples(DOC_URI, POSITION),
    "lloom.accept": st.tuples(DOC_URI, st.integers(0, 3), POSITION, STRINGS),
    "lloom.cancel": st.one_of(st.tuples(), st.tuples(DOC_URI)),
    "lloom.tree": st.tuples(DOC_URI, POSITION),
    "lloom.nope": st.lists(JSON, max_size=2),  # not a command: -32602
}
EXECUTE_COMMAND = st.sampled_from(sorted(COMMAND_ARGUMENTS)).flatmap(
    lambda command: st.fixed_dictionaries(
        {"command": st.just(command), "arguments": COMMAND_ARGUMENTS[command].map(list)},
        optional={"workDoneToken": TOKEN},
    )
)
REAL_REQUESTS = {
    "textDocument/completion": COMPLETION,
    "textDocument/inlineCompletion": INLINE,
    "textDocument/codeAction": CODE_ACTION,
    "textDocument/hover": HOVER,
    "workspace/executeCommand": EXECUTE_COMMAND,
}
CONTENT_CHANGE = st.fixed_dictionaries(
    {"text": DOC_TEXT}, optional={"range": RANGE, "rangeLength": st.integers(0, 9)}
)
REAL_NOTIFICATIONS = {
    "textDocument/didChange": st.fixed_dictionaries(
        {
            "textDocument": st.fixed_dictionaries({"uri": DOC_URI, "version": st.integers(0, 9)}),
            "contentChanges": st.lists(CONTENT_CHANGE, max_size=3),
        }
    ),
    "textDocument/didOpen": st.fixed_dictionaries(
        {
            "textDocument": st.fixed_dictionaries(
                {
                    "uri": DOC_URI,
                    "languageId": st.just("plaintext"),
                    "version": st.integers(0, 9),
                    "text": DOC_TEXT,
                }
            )
        }
    ),
    "textDocument/didClose": st.fixed_dictionaries({"textDocument": TEXT_DOCUMENT}),
    "$/cancelRequest": st.fixed_dictionaries({"id": st.one_of(st.integers(0, 99), STRINGS)}),
    "$/setTrace": st.fixed_dictionaries({"value": st.sampled_from(["off", "messages", "verbose"])}),
    "window/workDoneProgress/cancel": st.fixed_dictionaries({"token": TOKEN}),
    # weave settings only: junk must not move the backend or start warm-ups
    "workspace/didChangeConfiguration": st.fixed_dictionaries(
        {"settings": st.fixed_dictionaries({"lloom": st.fixed_dictionaries({"weave": JSON})})}
    ),
}


@st.composite
def real_message(draw: st.DrawFn) -> tuple[str, str, Any, str]:
    """("request" | "notify" | "cancel", method, params, id style): params valid, corrupted,
    or left out.  A "cancel" cancels one of the example's earlier requests (params: which)."""
    kind = draw(st.sampled_from(["request", "request", "request", "notify", "cancel"]))
    style = draw(st.sampled_from(VALID_ID_STYLES))
    if kind == "cancel":
        return kind, "$/cancelRequest", draw(st.integers(0, 5)), style
    table = REAL_REQUESTS if kind == "request" else REAL_NOTIFICATIONS
    method = draw(st.sampled_from(sorted(table)))
    params = draw(st.one_of(corrupted(table[method]), st.just(MISSING)))
    if method == "workspace/didChangeConfiguration" and isinstance(params, dict):
        settings = params.get("settings")
        if not (isinstance(settings, dict) and set(settings) <= {"lloom"}):
            params = {"settings": {"lloom": {"weave": settings}}}
        elif isinstance(settings.get("lloom"), dict):
            settings["lloom"] = {"weave": settings["lloom"].get("weave")}
    return kind, method, params, style


def check_result(method: str, params: Any, answer: dict[str, Any]) -> None:
    """What a request the server could read gets from a backend that always fails."""
    if "error" in answer:
        code = answer["error"]["code"]
        assert -32899 <= code <= -32000, answer  # the codes JSON-RPC and LSP reserve
        if method == "textDocument/hover":  # params unreadable (or, unserved, not found)
            assert code in (-32601, -32602), answer
        return
    result = answer["result"]
    if method == "textDocument/hover":  # over woven text only: none here
        assert result is None or isinstance(result.get("contents"), (dict, str, list)), answer
    elif method == "textDocument/completion":
        assert result == {"isIncomplete": False, "items": []}, answer
    elif method == "textDocument/inlineCompletion":
        assert result == {"items": []}, answer
    elif method == "textDocument/codeAction":
        assert result == [], answer
    else:
        command = params["command"]
        assert command in ("lloom.weave", "lloom.accept", "lloom.cancel", "lloom.tree"), answer
        FUZZ_TOTALS[f"{command} answered"] += 1
        if command == "lloom.cancel":
            assert type(result["cancelled"]) is int, answer
        elif command == "lloom.weave":
            assert result["beams"] == [] and isinstance(result["error"], str), answer
        elif command == "lloom.tree":
            assert "tree" not in result and isinstance(result["error"], str), answer
        else:
            assert result["applied"] is False and isinstance(result["reason"], str), answer


# -- the model of a document: LSP's lines and units ---------------------------------------------

LSP_BREAK = re.compile(r"\r\n|\r|\n")


def lsp_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line's text, line breaks left out: LSP knows only \\n, \\r\\n, \\r."""
    spans, start = [], 0
    for brk in LSP_BREAK.finditer(text):
        spans.append((start, brk.start()))
        start = brk.end()
    spans.append((start, len(text)))
    return spans


def units(char: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(char.encode())
    return 2 if ord(char) > 0xFFFF else 1


def offsets_at(text: str, line: int, character: int, encoding: str) -> set[int]:
    """Where (line, character) is in ``text``: past the last line, its end; past the end of a
    line, the line's end (LSP says so); inside a character (a surrogate pair, a UTF-8
    sequence), either side of it."""
    spans = lsp_lines(text)
    if line >= len(spans):
        return {len(text)}
    start, end = spans[line]
    count = 0
    for index in range(start, end):
        if count >= character:
            return {index}
        width = units(text[index], encoding)
        if count + width > character:
            return {index, index + 1}
        count += width
    return {end}


def position_of(text: str, offset: int, encoding: str = "utf-16") -> dict[str, int]:
    spans = lsp_lines(text)
    line = next(i for i, (start, end) in enumerate(spans) if start <= offset <= end)
    start = spans[line][0]
    return {"line": line, "character": sum(units(c, encoding) for c in text[start:offset])}


@st.composite
def position_in(draw: st.DrawFn, text: str, encoding: str) -> tuple[int, int]:
    """A line of ``text`` and a character from its start to a little past its end (a
    surrogate pair's or a UTF-8 sequence's middle included) or the largest, or a line past
    the last one and any character."""
    spans = lsp_lines(text)
    line = draw(st.one_of(st.integers(0, len(spans) - 1), st.integers(len(spans), FAR)))
    if line >= len(spans):
        return line, draw(st.one_of(st.integers(0, 3), st.just(FAR)))
    start, end = spans[line]
    width = sum(units(c, encoding) for c in text[start:end])
    return line, draw(st.one_of(st.integers(0, width + 2), st.just(FAR)))


def edit_points(text: str) -> list[int]:
    """Offsets a position can name: not between the \\r and \\n of a line break."""
    return [
        i for i in range(len(text) + 1) if not (0 < i < len(text) and text[i - 1 : i + 1] == "\r\n")
    ]


@st.composite
def named(draw: st.DrawFn, text: str, offset: int) -> dict[str, int]:
    """The position of ``offset`` in ``text``, or, at the end of a line, one past it that
    LSP reads as the same place (a character past the line's end, a line past the last)."""
    position = position_of(text, offset)
    spans = lsp_lines(text)
    if offset == len(text) and draw(st.booleans()):
        return {"line": draw(st.sampled_from([len(spans), FAR])), "character": draw(COORD)}
    if offset == spans[position["line"]][1]:
        position["character"] += draw(st.sampled_from([0, 0, 1, 7]))
    return position


@st.composite
def edits(draw: st.DrawFn, text: str) -> tuple[list[dict[str, Any]], str]:
    """1 to 3 valid incremental changes, each on the text the one before left, and that text.
    A position at the end of a line may name it from past its end."""
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        points = edit_points(text)
        a, b = sorted((draw(st.sampled_from(points)), draw(st.sampled_from(points))))
        new = draw(st.text(st.sampled_from(list("xy 🍎\n\r\x0c\u2028")), max_size=6))
        change_range = {"start": draw(named(text, a)), "end": draw(named(text, b))}
        changes.append({"range": change_range, "text": new})
        text = text[:a] + new + text[b:]
    return changes, text


@st.composite
def bad_changes(draw: st.DrawFn, text: str) -> list[dict[str, Any]]:
    """Changes LSP leaves undefined or that cannot be read: reversed ranges, lines past the
    end, negative or huge numbers, wrong types, a range without text."""
    points = edit_points(text)
    a, b = sorted((draw(st.sampled_from(points)), draw(st.sampled_from(points))))
    reversed_range = {"start": position_of(text, b), "end": position_of(text, a)}
    past = draw(st.integers(len(lsp_lines(text)), FAR))
    beyond = {"start": {"line": past, "character": 0}, "end": {"line": FAR, "character": FAR}}
    kind = st.sampled_from(["reversed", "past the end", "junk range", "no text", "junk"])
    changes = []
    for choice in draw(st.lists(kind, min_size=1, max_size=3)):
        new = draw(DOC_TEXT)
        if choice == "reversed":
            changes.append({"range": reversed_range, "text": new})
        elif choice == "past the end":
            changes.append({"range": beyond, "text": new})
        elif choice == "junk range":  # negative, huge, wrong types, keys missing
            changes.append(
                draw(corrupted(st.fixed_dictionaries({"range": RANGE, "text": DOC_TEXT})))
            )
        elif choice == "no text":
            changes.append({"range": reversed_range})
        else:
            changes.append(draw(JSON))
    return changes


# -- properties --------------------------------------------------------------------------------


@settings(FUZZ, max_examples=100 * SCALE)
@given(text=DOC_TEXT, messages=st.lists(real_message(), min_size=1, max_size=6))
def test_real_methods_with_junk_params(
    start: Callable[..., Harness],
    backend: RecordingBackend,
    text: str,
    messages: list[tuple[str, str, Any, str]],
) -> None:
    """Completion, inline completion, code actions, hover and executeCommand requests,
    didOpen/didChange/didClose, $/cancelRequest, $/setTrace, workDoneProgress/cancel and
    didChangeConfiguration notifications, with right and wrong params, pipelined, some
    requests cancelled in flight: one answer each, of the shape its method promises."""
    with start().case() as lsp:
        lsp.open(text)
        asked: list[tuple[str, str, Any]] = []
        for kind, method, params, style in messages:
            if kind == "request":
                asked.append((lsp.request(method, params, style=style), method, params))
            elif kind == "notify":
                lsp.notify(method, params)
            elif asked:
                key = asked[params % len(asked)][0]
                lsp.notify("$/cancelRequest", {"id": json.loads(key)})
        for key, method, params in asked:
            answer = lsp.reply(key)
            if answer.get("error", {}).get("code") != -32800:  # cancelled: answered all the same
                check_result(method, params, answer)
        lsp.close_document()
    FUZZ_TOTALS["weaves asked of the backend"] += len(backend.taken())


SERVED = frozenset(
    {
        "initialize",
        "shutdown",
        "workspace/executeCommand",
        "textDocument/completion",
        "textDocument/inlineCompletion",
        "textDocument/codeAction",
    }
)
#: LSP requests the server does not serve (and two that go the other way): params first.
UNSERVED_LSP_REQUESTS = sorted(
    method
    for method, types in METHOD_TO_TYPES.items()
    if types[1] is not None and method not in SERVED
)
#: LSP notifications sent as notifications with junk params (exit would end the test).
LSP_NOTIFICATIONS = sorted(
    method for method, types in METHOD_TO_TYPES.items() if types[1] is None and method != "exit"
)
METHOD_NAMES = st.one_of(
    STRINGS,
    st.builds(
        "{}/{}".format, st.sampled_from(["textDocument", "workspace", "$", "lloom"]), STRINGS
    ),
).filter(lambda name: name not in METHOD_TO_TYPES)


@FUZZ
@given(
    calls=st.lists(
        st.one_of(
            st.tuples(
                st.just("request"),
                st.sampled_from(UNSERVED_LSP_REQUESTS),
                st.one_of(st.just(MISSING), JSON),
                st.sampled_from(VALID_ID_STYLES),
            ),
            # params left out: test_an_unknown_method_without_params_is_not_found
            st.tuples(st.just("request"), METHOD_NAMES, JSON, st.sampled_from(VALID_ID_STYLES)),
            st.tuples(
                st.just("notify"),
                st.one_of(
                    METHOD_NAMES,
                    st.sampled_from(UNSERVED_LSP_REQUESTS),  # a request's name, without an id
                    st.sampled_from(LSP_NOTIFICATIONS),
                ),
                st.one_of(st.just(MISSING), JSON),
                st.just("none"),
            ),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_unknown_methods(
    start: Callable[..., Harness], calls: list[tuple[str, str, Any, str]]
) -> None:
    """Unknown requests get -32601 (an LSP request that is not served may get -32602: pygls
    reads its params first); notifications get nothing.  The backend is the refused port 9."""
    with start(REFUSED).case() as lsp:
        asked = []
        for kind, method, params, style in calls:
            if kind == "request":
                asked.append((lsp.request(method, params, style=style), method))
            else:
                lsp.notify(method, params)
        for key, method in asked:
            answer = lsp.reply(key)
            allowed = (-32601, -32602) if method in METHOD_TO_TYPES else (-32601,)
            assert answer.get("error", {}).get("code") in allowed, answer


CANCEL = {"command": "lloom.cancel"}
MALFORMED_KINDS = [
    "bytes",
    "truncated",
    "not an object",
    "batch",
    "jsonrpc",
    "odd id",
    "odd method",
    "client response",
    "empty",
    "deep",
    "bad utf-8",
]


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, Any]:
    """(kind, detail): one message that JSON-RPC 2.0 or the LSP base protocol forbids."""
    kind = draw(st.sampled_from(MALFORMED_KINDS))
    detail: Any = draw(st.integers(1, 80))
    if kind == "bytes":
        detail = draw(st.binary(max_size=40))
    elif kind == "not an object":
        detail = draw(JSON.filter(lambda value: not isinstance(value, dict)))
    elif kind == "jsonrpc":  # missing, or not "2.0"
        detail = draw(st.sampled_from([MISSING, "1.0", "2", 2.0, None, ["2.0"]]))
    elif kind in ("odd id", "batch"):
        detail = draw(st.sampled_from(ODD_ID_STYLES))
    elif kind == "odd method":
        detail = draw(st.one_of(st.integers(), st.none(), st.lists(STRINGS, max_size=2)))
    elif kind == "client response":  # to nothing the server asked
        detail = draw(
            st.one_of(
                st.fixed_dictionaries({"id": JSON, "result": JSON}),
                st.fixed_dictionaries({"id": JSON, "error": JSON}),
                st.fixed_dictionaries({"id": JSON}),
            )
        )
    elif kind == "deep":
        detail = draw(st.sampled_from([100, 5000, 100_000]))
    return kind, detail


def send_malformed(lsp: LspProcess, kind: str, detail: Any) -> None:
    def lenient(message: dict[str, Any]) -> bytes:
        lsp.lenient[id_key(message["id"])] += 1
        return json.dumps(message).encode()

    if kind == "bytes":
        lsp.send_raw(frame(detail))
    elif kind == "truncated":
        body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "workspace/executeCommand"})
        lsp.send_raw(frame(body.encode()[: detail % len(body)]))
    elif kind == "not an object":
        lsp.send_raw(frame(json.dumps(detail).encode()))
    elif kind == "batch":  # LSP has no batches: each request answered once at most
        batch = [
            {"jsonrpc": "2.0", "id": lsp.new_id(style), "method": "workspace/executeCommand"}
            for style in ("int", detail)
        ]
        for message in batch:
            message["params"] = CANCEL
            lenient(message)
        lsp.send_raw(frame(json.dumps(batch).encode()))
    elif kind == "jsonrpc":
        message = {"id": lsp.new_id(), "method": "workspace/executeCommand", "params": CANCEL}
        if detail is not MISSING:
            message["jsonrpc"] = detail
        lsp.send_raw(frame(lenient(message)))
    elif kind == "odd id":
        lsp.request("workspace/executeCommand", CANCEL, style=detail)
    elif kind == "odd method":
        lsp.send_raw(frame(lenient({"jsonrpc": "2.0", "id": lsp.new_id(), "method": detail})))
    elif kind == "client response":
        lsp.send_raw(frame(json.dumps({"jsonrpc": "2.0", **detail}).encode()))
    elif kind == "empty":
        lsp.send_raw(frame(b""))
    elif kind == "deep":
        lsp.send_raw(frame(b"[" * detail + b"]" * detail))
    else:  # "bad utf-8": a string of bytes that are not UTF-8
        message = {"jsonrpc": "2.0", "id": lsp.new_id(), "method": "workspace/executeCommand"}
        message["params"] = {"command": "lloom.cancel", "arguments": ["@"]}
        lsp.send_raw(frame(lenient(message).replace(b"@", b"\xff\xfe" * (detail % 4 + 1))))


#: A valid request after a malformed one: (headers, where its frame is cut into writes).
VALID_AFTER = st.tuples(
    st.sampled_from(["plain", "typed", "typed first"]),
    st.lists(st.integers(1, 150), max_size=3),
)


@settings(FUZZ, max_examples=80 * SCALE)
@given(junk=st.lists(st.tuples(malformed(), st.none() | VALID_AFTER), min_size=1, max_size=5))
@example(  # every kind at least once, whatever the examples drawn
    junk=[
        ((kind, detail), ("typed first", [3, 40]))
        for kind, detail in [
            ("bytes", b"\x00{]"),
            ("truncated", 30),
            ("not an object", [1, "two"]),
            *[("batch", style) for style in ODD_ID_STYLES],
            *[("jsonrpc", version) for version in (MISSING, "1.0", None)],
            *[("odd id", style) for style in ODD_ID_STYLES],
            ("odd method", 7),
            ("odd method", ["a", "b"]),
            ("client response", {"id": "nobody", "result": None}),
            ("client response", {"id": 1, "error": "junk"}),
            ("empty", 1),
            ("deep", 100_000),
            ("bad utf-8", 2),
        ]
    ]
)
def test_malformed_frames(
    start: Callable[..., Harness],
    junk: list[tuple[tuple[str, Any], tuple[str, list[int]] | None]],
) -> None:
    """Invalid JSON, bodies that are not objects, batches, a missing or wrong "jsonrpc", ids
    JSON-RPC forbids, methods that are not strings, stray responses, empty and deeply nested
    bodies, invalid UTF-8: the server survives them, and the valid requests between them
    (with a Content-Type header before or after Content-Length, written in pieces) are
    answered."""
    with start().case() as lsp:
        asked = []
        for (kind, detail), valid in junk:
            send_malformed(lsp, kind, detail)
            if valid is not None:
                headers, cuts = valid
                message_id = lsp.new_id("string")
                message = {"jsonrpc": "2.0", "id": message_id, "method": "workspace/executeCommand"}
                body = json.dumps({**message, "params": CANCEL}).encode()
                typed, first = headers != "plain", headers == "typed first"
                data = frame(body, content_type=typed, type_first=first)
                asked.append(lsp.expect(message_id, body.decode()))  # before it can be answered
                for start_at, end_at in itertools.pairwise([0, *sorted(cuts), len(data)]):
                    lsp.send_raw(data[start_at:end_at])
        for key in asked:
            assert "result" in lsp.reply(key)
        lsp.probe()
        with lsp._cond:
            for answer in lsp.responses.get("null", []):
                # Parse error, Invalid Request: errors, unless a request had id null
                assert "error" in answer or lsp.lenient["null"], answer


ENCODINGS = ["utf-16", "utf-8"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@FUZZ
@given(text=DOC_TEXT, data=st.data())
def test_story_ends_at_the_position(
    start: Callable[..., Harness],
    backend: RecordingBackend,
    encoding: str,
    text: str,
    data: st.DataObject,
) -> None:
    """The story the backend gets is the document up to the position, in the negotiated
    encoding: inside a surrogate pair (or a UTF-8 sequence) it stops on either side of the
    character, never in it; past the last line it is the whole document."""
    with start(encoding=encoding).case() as lsp:
        line, character = data.draw(position_in(text, encoding), label="position")
        lsp.open(text)
        prompt = lsp.story_at(backend, line, character)
        stories = {text[:offset] for offset in offsets_at(text, line, character, encoding)}
        assert prompt in {story.rstrip(" \t") for story in stories}
        lsp.close_document()


def _units(text: str, encoding: str) -> int:
    return sum(units(char, encoding) for char in text)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_story_at_chosen_positions(
    start: Callable[..., Harness], backend: RecordingBackend, encoding: str
) -> None:
    """The property's corners, every run: inside a surrogate pair (UTF-16) or a UTF-8
    sequence, right after one, the end of a CRLF line and the next line, past the last line,
    an empty document, a document ending in a line break."""
    harness = start(encoding=encoding)
    apple, cat = "Once upon a 🍎 time", "猫 and 🙂\r\nthe end"
    cases = [
        (apple, 0, _units("Once upon a ", encoding) + 1),
        (apple, 0, _units("Once upon a 🍎", encoding)),
        (cat, 0, _units("猫 and 🙂", encoding)),
        (cat, 1, 3),
        ("two\nlines", 5, 0),
        ("", 0, 0),
        ("ends with a break\n", 1, 0),
    ]
    for text, line, character in cases:
        with harness.case() as lsp:
            lsp.open(text)
            stories = {text[:offset] for offset in offsets_at(text, line, character, encoding)}
            prompt = lsp.story_at(backend, line, character)
            assert prompt in {story.rstrip(" \t") for story in stories}, (text, line, character)
            lsp.close_document()
    assert offsets_at(apple, 0, _units("Once upon a ", encoding) + 1, encoding) == {12, 13}


@FUZZ
@given(
    text=DOC_TEXT,
    steps=st.lists(st.sampled_from(["edit", "edit", "bad"]), min_size=1, max_size=5),
    data=st.data(),
)
def test_document_sync(
    start: Callable[..., Harness],
    backend: RecordingBackend,
    text: str,
    steps: list[str],
    data: st.DataObject,
) -> None:
    """Incremental didChange keeps the server's copy equal to the client's (read back as the
    story at the end of the document); changes with bad ranges, or unreadable, break nothing
    a full-text change cannot mend."""
    with start().case() as lsp:
        lsp.open(text)
        version = 1
        for step in steps:
            version += 1
            if step == "edit":
                changes, text = data.draw(edits(text), label="edits")
                lsp.change(version, *changes)
            else:
                lsp.change(version, *data.draw(bad_changes(text), label="bad changes"))
                assert isinstance(lsp.story_at(backend, FAR, 0), str)
                version += 1
                lsp.change(version, {"text": text})
            assert lsp.story_at(backend, FAR, 0) == text.rstrip(" \t")
        lsp.close_document()


def five_megabytes(separator: str) -> str:
    sentence = "Once upon a 🍎 time, the cat sat on the mat." + separator
    text = sentence * (5_000_000 // len(sentence.encode()) + 1)
    assert len(text.encode()) > 5_000_000
    return text


def assert_story_of_the_end(text: str, prompt: Any) -> None:
    """The last maxContextChars characters at most, cut at whitespace."""
    told = text.rstrip(" \t")
    assert isinstance(prompt, str) and 0 < len(prompt) <= MAX_CONTEXT_CHARS < len(text)
    assert told.endswith(prompt) and told[-len(prompt) - 1].isspace(), prompt[:80]


def timed(name: str, ask: Callable[[], Any]) -> Any:
    started = time.monotonic()
    answer = ask()
    TIMINGS[name] = max(TIMINGS.get(name, 0.0), time.monotonic() - started)
    return answer


def test_five_megabyte_document(start: Callable[..., Harness], backend: RecordingBackend) -> None:
    """5 MB in 100,000 lines: opened, asked at its end (by a line past it, and by its last
    line's end) and in its middle, edited at its end and asked again, and asked for inline
    completions and code actions; each answer comes in time and the story is right."""
    text = five_megabytes("\n")
    with start().case() as lsp:
        timed("5 MB didOpen", lambda: (lsp.open(text), lsp.probe()))
        prompt = timed("5 MB completion", lambda: lsp.story_at(backend, FAR, 0))
        assert_story_of_the_end(text, prompt)
        end = position_of(text, len(text))
        assert lsp.story_at(backend, end["line"], end["character"]) == prompt
        middle = position_of(text, len(text) // 2)
        assert text[: len(text) // 2].endswith(lsp.story_at(backend, **middle))
        lsp.change(2, {"range": {"start": end, "end": end}, "text": "The end."})
        text += "The end."
        assert_story_of_the_end(text, lsp.story_at(backend, FAR, 0))
        end = position_of(text, len(text))
        for method, params in (
            ("textDocument/inlineCompletion", {"position": end, "context": {"triggerKind": 1}}),
            (
                "textDocument/codeAction",
                {"range": {"start": end, "end": end}, "context": {"diagnostics": []}},
            ),
        ):
            check_result(method, params, lsp.call(method, {"textDocument": {"uri": URI}, **params}))


def test_five_megabyte_line(start: Callable[..., Harness], backend: RecordingBackend) -> None:
    """5 MB in one line, asked at its end.  pygls converted the position code point by code
    point (about 1.5-2.5 s of blocked event loop); the server converts it within its line,
    in C, and reads only the story window's characters."""
    text = five_megabytes(" ")
    end = position_of(text, len(text))
    with start().case() as lsp:
        lsp.open(text)
        prompt = timed("5 MB line completion", lambda: lsp.story_at(backend, **end))
        assert_story_of_the_end(text, prompt)


class RssSampler:
    """A process's VmRSS in MiB, sampled every 20 ms on a thread while in use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def now(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError(f"no VmRSS for process {self.pid}")

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.samples.append(self.now())
            except (OSError, AssertionError):
                return  # the process ended: the test says why

    def __enter__(self) -> RssSampler:
        self.samples.append(self.now())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak(self) -> float:
        return max(self.samples)


def position_at(text: str, offset: int) -> dict[str, int]:
    """``position_of`` for a text with no \\r, quickly (a 5 MB line in Python's loop: 1 s)."""
    line_start = text.rfind("\n", 0, offset) + 1
    units = len(text[line_start:offset].encode("utf-16-le")) // 2
    return {"line": text.count("\n", 0, offset), "character": units}


@pytest.mark.parametrize("shape", ["lines", "one line"])
def test_five_megabyte_documents_over_time(
    start: Callable[..., Harness], backend: RecordingBackend, shape: str
) -> None:
    """5 MB in 100,000 lines, or in one line, through ``BIG_ROUNDS`` rounds (40 in the long
    mode): typed at its end (the last key named past the line's end), edited in its middle
    (a form feed and U+2028 among the text) and asked there, asked for completions, inline
    completions and code actions at its end, replaced whole, closed and opened again.
    Every story is right, every answer in time, the server stays up, and its RSS stays under
    ``RSS_CAP_MB`` and grows no more than ``RSS_GROWTH_MB`` after the first round."""
    text = five_megabytes("\n" if shape == "lines" else " ")
    harness = start()
    version = 1
    with RssSampler(harness.lsp.proc.pid) as rss:
        with harness.case() as lsp:
            timed(f"5 MB {shape}: didOpen", lambda: (lsp.open(text), lsp.probe()))
        after_first = rss.now()
        for round_ in range(BIG_ROUNDS):
            with harness.case() as lsp:
                for key in "The end. ":
                    end = position_at(text, len(text))
                    past = {"line": end["line"], "character": end["character"] + (key == " ")}
                    version += 1
                    lsp.change(version, {"range": {"start": past, "end": past}, "text": key})
                    text += key
                prompt = timed(f"5 MB {shape}: completion", lambda: lsp.story_at(backend, FAR, 0))
                assert_story_of_the_end(text, prompt)
                end = position_at(text, len(text))
                here = {"textDocument": {"uri": URI}}
                for method, params in (
                    (
                        "textDocument/inlineCompletion",
                        {"position": end, "context": {"triggerKind": 1}},
                    ),
                    (
                        "textDocument/codeAction",
                        {"range": {"start": end, "end": end}, "context": {"diagnostics": []}},
                    ),
                ):
                    ask = functools.partial(lsp.call, method, {**here, **params})
                    answer = timed(f"5 MB {shape}: {method[13:]}", ask)
                    check_result(method, params, answer)
                middle = len(text) // 2 + 37 * round_
                new = "🍎 \x0c\u2028mid "
                cut = {"start": position_at(text, middle), "end": position_at(text, middle + 3)}
                version += 1
                lsp.change(version, {"range": cut, "text": new})
                text = text[:middle] + new + text[middle + 3 :]
                told = text[: middle + len(new)].rstrip(" \t")
                assert told.endswith(lsp.story_at(backend, **position_at(text, middle + len(new))))
                if round_ % 5 == 1:
                    version += 1
                    lsp.change(version, {"text": text})
                if round_ % 8 == 1:
                    lsp.close_document()
                    version = 1
                    lsp.open(text)
                assert_story_of_the_end(text, lsp.story_at(backend, FAR, 0))
            if round_ == 0:
                after_first = rss.now()
        harness.lsp.close_document()
        harness.lsp.probe()
        end_rss = rss.now()
    MEMORY[f"5 MB {shape}"] = (rss.samples[0], rss.peak, end_rss)
    assert rss.peak < RSS_CAP_MB, f"RSS peaked at {rss.peak:.0f} MiB"
    assert end_rss - after_first < RSS_GROWTH_MB, (after_first, end_rss)


def test_refused_backend(start: Callable[..., Harness]) -> None:
    """The refused port 9 under pipelined requests of every weaving kind: each answered,
    empty, and the user told once, naming the URL."""
    with start(REFUSED).case() as lsp:
        lsp.open("Once upon a 🍎 time")
        end = {"line": 0, "character": 18}
        here = {"textDocument": {"uri": URI}}
        asked = [
            ("textDocument/completion", {**here, "position": end}),
            (
                "textDocument/inlineCompletion",
                {**here, "position": end, "context": {"triggerKind": 1}},
            ),
            (
                "textDocument/codeAction",
                {**here, "range": {"start": end, "end": end}, "context": {"diagnostics": []}},
            ),
            ("workspace/executeCommand", {"command": "lloom.weave", "arguments": [URI, end]}),
        ]
        keys = [lsp.request(method, params) for method, params in asked]
        for key, (method, params) in zip(keys, asked):
            check_result(method, params, lsp.reply(key))
        shown = [
            m["params"]["message"]
            for m in lsp.received
            if m.get("method") == "window/showMessage" and m["params"]["type"] == 1
        ]
        assert len(shown) == 1 and "http://127.0.0.1:9" in shown[0], shown


# -- bugs it found: fixed (pinned by plain tests) and known (strict xfails) ---------------------


# Was a bug (pygls), fixed in LloomProtocol (lloom_lsp/server/app.py).
@pytest.mark.parametrize(
    "inner", [{"jsonrpc": "2.0"}, {"jsonrpc": "2.0", "id": "x"}], ids=["no method", "no result"]
)
def test_params_holding_a_jsonrpc_key_are_answered(
    buggy: LspProcess, inner: dict[str, Any]
) -> None:
    key = buggy.request(
        "workspace/executeCommand", {"command": "lloom.cancel", "arguments": [inner]}
    )
    assert buggy.probed()
    assert buggy.answered(key, GRACE), "no response"


# Was a bug (pygls), fixed in LloomProtocol (lloom_lsp/server/app.py).
def test_a_nested_message_never_answers_for_its_id(fresh_buggy: LspProcess) -> None:
    lsp = fresh_buggy
    inner = {"jsonrpc": "2.0", "id": 999_999, "method": "initialize", "params": 1}
    key = lsp.request("workspace/executeCommand", {"command": "lloom.cancel", "arguments": [inner]})
    lsp.probed()  # a violation ends the wait: the response for an id never sent
    lsp.answered(key, GRACE)
    assert id_key(999_999) not in lsp.responses, lsp.responses[id_key(999_999)]
    assert lsp.responses.get(key), "the request itself got no response"


# Was a bug (pygls), fixed in LloomProtocol (lloom_lsp/server/app.py).
@pytest.mark.parametrize(
    "method, params",
    [
        ("$/cancelRequest", {"id": 123456}),
        ("textDocument/didClose", {"textDocument": {"uri": NEVER_OPENED}}),
    ],
)
def test_a_request_named_like_a_notification_is_answered(
    buggy: LspProcess, method: str, params: dict[str, Any]
) -> None:
    key = buggy.request(method, params)
    assert buggy.probed()
    assert buggy.answered(key, GRACE), "no response"


@pytest.mark.parametrize(
    "reply",
    [{"result": None}, {"result": {}}, {"error": "refused"}],
    ids=["null", "empty", "error not an object"],
)
def test_accept_survives_a_malformed_apply_edit_answer(
    buggy: LspProcess, reply: dict[str, Any]
) -> None:
    buggy.apply_edit_reply = reply
    try:
        buggy.open("Once upon a time")
        arguments = [URI, 1, {"line": 0, "character": 16}, " there was"]
        params = {"command": "lloom.accept", "arguments": arguments}
        key = buggy.request("workspace/executeCommand", params)
        deadline = time.monotonic() + REPLY_TIMEOUT
        while not any(m.get("method") == "workspace/applyEdit" for m in buggy.received):
            if time.monotonic() > deadline:
                raise SharedServerBroken("no workspace/applyEdit came")
            time.sleep(0.01)
        assert buggy.probed()  # sent after the answer to applyEdit, so read after it
        assert buggy.answered(key, GRACE), "lloom.accept never answered"
    finally:
        buggy.received.clear()
        buggy.apply_edit_reply = {"result": {"applied": False}}


# Was a bug: pygls serializes with json.dumps(allow_nan=True), so an id of 1e400 (a valid
# JSON number, which Python reads as a float infinity) was echoed as Infinity, which is not
# JSON; LloomProtocol now refuses such an id with a null one.
def test_an_id_python_cannot_hold_is_not_echoed_as_non_json(fresh_buggy: LspProcess) -> None:
    body = b'{"jsonrpc": "2.0", "id": 1e400, "method": "workspace/executeCommand", '
    fresh_buggy.send_raw(frame(body + b'"params": {"command": "lloom.cancel"}}'))
    fresh_buggy.probed()
    assert not fresh_buggy.violations


# Was a bug: lsprotocol took any JSON for a ProgressToken, and an array or object reached
# pygls' table of tokens as a key: -32603 "unhashable type" with the server's traceback.
@pytest.mark.parametrize("token", [[1, 2], {"a": 1}, True])
def test_a_progress_token_that_is_neither_string_nor_integer_is_invalid_params(
    buggy: LspProcess, token: Any
) -> None:
    buggy.open("Once upon a time")
    span = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 4}}
    params = {"textDocument": {"uri": URI}, "range": span, "context": {"diagnostics": []}}
    answer = buggy.call("textDocument/codeAction", {**params, "workDoneToken": token})
    assert answer["error"]["code"] == -32602, answer
    assert "workDoneToken must be an integer or a string" in answer["error"]["message"]


# Was a bug: an object or array id reached pygls' table of running requests as a key, which
# raised TypeError (unhashable), answered -32603 with a traceback of the server's own code.
@pytest.mark.parametrize("msg_id", [b'{"a": 1}', b"[1, 2]", b"true"])
def test_an_id_that_is_neither_string_nor_number_is_an_invalid_request(
    fresh_buggy: LspProcess, msg_id: bytes
) -> None:
    body = b'{"jsonrpc": "2.0", "id": ' + msg_id + b', "method": "workspace/executeCommand", '
    fresh_buggy.send_raw(frame(body + b'"params": {"command": "lloom.cancel"}}'))
    assert fresh_buggy.probed()
    refused = [m for m in fresh_buggy.received if "error" in m and m.get("id") is None]
    assert [m["error"]["code"] for m in refused] == [-32600], fresh_buggy.received
    assert "not a JSON-RPC id" in refused[0]["error"]["message"]
    assert not fresh_buggy.violations


# Was a bug (pygls' PositionCodec.position_from_client_units clamps a character past the end
# of a line to the line's length counting its line break, minus one); the story now reads
# past the end of a line as its end (lloom_lsp/server/convert.py, _offset).
@pytest.mark.parametrize(
    "text, line, character, story",
    [
        ("Once upon a time", 0, 100, "Once upon a time"),
        ("Once upon a time", 0, 17, "Once upon a time"),
        ("Once\nupon", 0, 5, "Once"),
        ("Once\r\nupon", 0, 5, "Once"),
    ],
)
def test_past_the_end_of_a_line_means_its_end(
    buggy: LspProcess,
    shared_backend: RecordingBackend,
    text: str,
    line: int,
    character: int,
    story: str,
) -> None:
    buggy.open(text)
    assert buggy.story_at(shared_backend, line, character) == story


# Was a bug (the same clamp in pygls' incremental didChange: an insertion past the end of the
# last line landed before its last character, and the server's copy of the document differed
# from the client's), fixed in lloom_lsp/server/documents.py.
def test_an_edit_past_the_end_of_a_line_lands_at_its_end(
    buggy: LspProcess, shared_backend: RecordingBackend
) -> None:
    buggy.open("Once upon a time")
    past = {"line": 0, "character": 100}
    buggy.change(2, {"range": {"start": past, "end": past}, "text": ", the end"})
    assert buggy.story_at(shared_backend, FAR, 0) == "Once upon a time, the end"


# Was a bug (pygls split lines with str.splitlines, which also breaks at \f, \v, \x1c-\x1e,
# \x85, U+2028 and U+2029; LSP breaks lines only at \n, \r\n and \r, so every position after
# such a character named another place), fixed in lloom_lsp/server/documents.py.
@pytest.mark.parametrize("separator", ["\x0c", "\x85", "\u2028"], ids=["FF", "NEL", "LS"])
def test_only_lsp_line_breaks_split_lines(
    buggy: LspProcess, shared_backend: RecordingBackend, separator: str
) -> None:
    buggy.open(f"Page one{separator}still line one\nline two")
    assert buggy.story_at(shared_backend, 1, 4) == f"Page one{separator}still line one\nline"


# Was a bug (a story holding a lone surrogate, which JSON allows as the escape \ud83c, could
# not be encoded as UTF-8 by httpx): the story now replaces it with U+FFFD.
def test_a_lone_surrogate_in_the_document_still_weaves(
    buggy: LspProcess, shared_backend: RecordingBackend
) -> None:
    buggy.open("Once upon a \ud83c time")
    assert isinstance(buggy.story_at(shared_backend, FAR, 0), str)


# Was a bug (pygls), fixed in LloomProtocol (lloom_lsp/server/app.py).
def test_an_unknown_method_without_params_is_not_found(buggy: LspProcess) -> None:
    answer = buggy.call("lloom/noSuchMethod")
    assert answer.get("error", {}).get("code") == -32601, answer


# Was a bug (pygls), fixed in LloomProtocol (lloom_lsp/server/app.py).
def test_a_request_after_shutdown_is_answered(fresh_buggy: LspProcess) -> None:
    assert fresh_buggy.call("shutdown").get("result", "missing") is None
    command = fresh_buggy.request("workspace/executeCommand", CANCEL)
    shutdown = fresh_buggy.request("shutdown")
    fresh_buggy.answered(command, 2 * GRACE)
    assert fresh_buggy.answered(command, 0) and fresh_buggy.answered(shutdown, GRACE)

"""A typing storm against the real llama-server.

One document, N keystrokes 20 ms apart, with a pause of 0.3 s every 50.  Each keystroke is
a ``didChange`` that appends one character and an automatic ``textDocument/inlineCompletion``
(as VS Code sends on every keystroke); every third keystroke also asks for
``textDocument/completion`` and every fifth for an invoked inline completion, and most of
those are cancelled (``$/cancelRequest``) 0-50 ms later.  Before every other pause the last
40 keystrokes send no requests, so the warm-ups get the backend too.  A last invoked
inline completion, never cancelled, asks at the final text.

The server reaches llama-server through a counting reverse proxy in this process, which
passes every answer on as it arrives (server-sent events included) after holding it back
``FIRST_TOKEN_S`` (a real model's time to its first token), counts the backend requests in
flight (weaves and warm-ups together) and remembers the story each was for.  The storm runs
once per module; each test checks one property of it:

* backend requests in flight never exceed ``lloom.backend.concurrency``, and a cancelled
  weave's requests close at once: none stays open after nobody waits for its weave, none
  goes out for an older story once a newer one has, and the last request waits for none;
* every request gets exactly one answer, a result or -32800 (cancelled), in time;
* stale weaves are cancelled: the server answers the stale requests -32800 itself, sends
  far fewer backend requests than weaving every version would take, and nothing is in
  flight soon after the last answer, nor starts after it;
* the last request answers with the beams of the final text;
* the server's memory stays bounded (VmRSS sampled through the storm);
* cancelling is not an error in the server's log.

N is 200 by default (5 s of storm, 10-40 s in all); ``LLOOM_STORM_FULL=1`` runs the full
2,000 (52 s of storm).  The figures are printed (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import select
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from lsprotocol import types
from proxies import ROUTES, check_installed, through
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lloom_lsp.backends.llamacpp import LlamaCppBackend
from lloom_lsp.config import parse_settings
from lloom_lsp.engine import weave

FULL = os.environ.get("LLOOM_STORM_FULL") == "1"
KEYSTROKES = 2000 if FULL else 200
INTERVAL = 0.020  # seconds between keystrokes
PAUSE_EVERY = 50  # keystrokes between pauses
PAUSE = 0.300  # seconds
#: Before every other pause the last keystrokes are typed without requests: the weaves
#: finish, and the warm-ups (which wait for no weave to be running) reach the backend.
QUIET = 40
CONCURRENCY = 2
#: The test model answers in a millisecond, a real model after tens of ms (its prompt
#: evaluation and first token): the proxy holds each /completion answer back this long.
FIRST_TOKEN_S = float(os.environ.get("LLOOM_STORM_DELAY", "0.05"))
#: Seconds every request has, after the last keystroke, to be answered.
ANSWER_TIMEOUT = 60.0
#: Seconds a weave request may stay open after the last request that wanted it was
#: answered.  A cancelled weave closes its requests at once (0.01 s measured on an idle
#: machine, 0.17 s once with four test runs sharing 2 cores); the bug this catches left
#: them open 1.3-2.6 s.
UNWANTED_S = 0.5
#: RSS the server may grow by between 10% of the storm and its end.
RSS_GROWTH_LIMIT_KB = 10 * 1024

SERVER = [sys.executable, "-m", "lloom_lsp"]
URI = "file:///storm/tale.txt"
CORPUS = Path(__file__).resolve().parents[2] / "lloom_lsp" / "testmodel" / "corpus.txt"
#: LLooM's rules, ~10 requests and some hundred ms a weave on the test model, more as the
#: text grows; maxSuggestions never binds, so the beams do not depend on the order answers
#: arrive in and the last answer can be compared with a weave asked directly.
#: reuse off: the storm types the test model's own corpus, so its greedy path is the text
#: typed next, and a weave continuing that known path by token ids sends the older story's
#: text (plus ids), which the proxy would count as a request for an older story.
WEAVE = {
    "strategy": "chain",
    "maxDepth": 8,
    "cutoff": 0.1,
    "maxSuggestions": 1000,
    "reuse": False,
}


def options(url: str) -> dict[str, Any]:
    return {
        "lloom": {
            "backend": {"url": url, "type": "llamacpp", "concurrency": CONCURRENCY},
            "weave": WEAVE,
            "inline": {"automatic": True, "debounceMs": 20},
            "warmup": {"enabled": True, "debounceMs": 10},
        }
    }


def end_of(text: str) -> types.Position:
    """The position after ``text`` in UTF-16 code units."""
    lines = text.split("\n")
    return types.Position(len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2)


# -- the counting proxy ------------------------------------------------------------------


@dataclass(eq=False)
class Exchange:
    """One request the proxy forwarded to llama-server."""

    started: float
    method: str
    path: str
    prompt: str | None = None  # the story (text part of the prompt) of a /completion
    warmup: bool = False  # n_predict 0: a warm-up, not a weave request
    ended: float | None = None
    how: str = ""  # "answered", "client left", "upstream failed"
    slot: int | None = None  # id_slot
    head_at: float | None = None  # when llama-server's answer began
    client: Any = None  # the client's socket


@dataclass(eq=False)
class CountingProxy:
    """A reverse proxy to ``upstream`` that counts the requests in flight.

    A request is in flight from the moment its head and body have arrived until its answer's
    last byte has been passed on, or its client closed the connection (then the upstream
    connection is closed at once, which is how llama-server learns to stop).  Every request
    goes upstream on a connection of its own; the client's connection is kept alive.
    """

    upstream: str
    #: Seconds each /completion answer is held back before it is passed on.
    delay: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    exchanges: list[Exchange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _open: set[Exchange] = field(default_factory=set)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    url: str = ""
    _server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # -- bookkeeping, synchronous so the order of events is the order they were seen ---

    def _begin(self, exchange: Exchange) -> None:
        # A client that closed one request's connection and then sent the next: this loop
        # may read the request before it wakes the watcher of the close (on a loaded
        # machine, tens of ms later).  Which came first is on the wire: a closed
        # connection is readable (a client sends nothing while it waits for an answer).
        for other in list(self._open):
            if other.client is not None and _readable(other.client):
                self._end(other, "client left", at=exchange.started)
        self.exchanges.append(exchange)
        self._open.add(exchange)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _end(self, exchange: Exchange, how: str, at: float | None = None) -> None:
        if exchange.ended is None:
            exchange.ended = time.monotonic() if at is None else at
            exchange.how = how
            self._open.discard(exchange)
            self.in_flight -= 1

    # -- HTTP/1.1, just enough for httpx and llama-server ----------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                    method, target, headers = _parse_head(head)
                    if "chunked" in headers.get("transfer-encoding", ""):
                        self.errors.append(f"chunked request body: {method} {target}")
                        return
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the client closed an idle connection, or left mid-request
                if not await self._exchange(reader, writer, method, target, head, body):
                    return
        except asyncio.CancelledError:
            pass  # closing; on 3.11 a handler that ends cancelled is an error to start_server
        except Exception as exc:
            self.errors.append(f"proxy failed: {exc!r}")
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            self._handlers.discard(task)

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        target: str,
        head: bytes,
        body: bytes,
    ) -> bool:
        """Forward one request; True when the client's connection can carry another."""
        exchange = Exchange(time.monotonic(), method, urlsplit(target).path)
        exchange.client = writer.get_extra_info("socket")
        if exchange.path == "/completion":
            with contextlib.suppress(ValueError, AttributeError):
                payload = json.loads(body)
                prompt = payload.get("prompt")
                if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
                    prompt = prompt[0]
                exchange.prompt = prompt if isinstance(prompt, str) else None
                exchange.warmup = payload.get("n_predict") == 0
                exchange.slot = payload.get("id_slot")
        self._begin(exchange)
        up = urlsplit(self.upstream)
        try:
            up_reader, up_writer = await asyncio.open_connection(up.hostname, up.port)
        except OSError as exc:
            self._end(exchange, "upstream failed")
            self.errors.append(f"cannot reach llama-server: {exc!r}")
            return False
        try:
            up_writer.write(_rewrite_request(head, up.netloc) + body)
            relay = asyncio.ensure_future(self._relay(exchange, up_reader, writer))
            watch = asyncio.ensure_future(self._watch(exchange, reader))
            try:
                await asyncio.wait({relay, watch}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (relay, watch):
                    task.cancel()
                await asyncio.gather(relay, watch, return_exceptions=True)
            if relay.cancelled() or isinstance(relay.exception(), _ClientLeft):
                return False
            if relay.exception() is not None:
                if exchange.ended is None:  # not the client: llama-server or our relay
                    self.errors.append(f"relay failed: {exchange.path}: {relay!r}")
                    self._end(exchange, "upstream failed")
                return False
            return relay.result()
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()

    async def _watch(self, exchange: Exchange, reader: asyncio.StreamReader) -> None:
        """The client sends nothing while it waits for an answer; end of file means it
        left (closed the stream early, or was cancelled)."""
        try:
            data = await reader.read(65536)
        except ConnectionError:
            data = b""
        if data:
            self.errors.append(f"data from the client during an answer: {data[:80]!r}")
        self._end(exchange, "client left")

    async def _relay(
        self, exchange: Exchange, up: asyncio.StreamReader, down: asyncio.StreamWriter
    ) -> bool:
        """Pass the answer on as it arrives; True when it had a length (keep-alive)."""
        head = await up.readuntil(b"\r\n\r\n")
        if self.delay and exchange.path == "/completion":
            await asyncio.sleep(self.delay)
        exchange.head_at = time.monotonic()
        status_line, _, rest = head.partition(b"\r\n")
        status = int(status_line.split()[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (
                line.decode("latin-1").partition(":") for line in rest.split(b"\r\n") if line
            )
        }
        lines = [status_line] + [
            line
            for line in rest.split(b"\r\n")
            if line and not line.lower().startswith((b"connection:", b"keep-alive:"))
        ]
        chunked = "chunked" in headers.get("transfer-encoding", "")
        length = headers.get("content-length")
        bodiless = exchange.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        delimited = chunked or length is not None or bodiless
        if not delimited:
            lines.append(b"Connection: close")
        await self._pass(exchange, down, b"\r\n".join(lines) + b"\r\n\r\n", drain=False)
        if bodiless:
            self._end(exchange, "answered")
        elif chunked:
            while True:
                size_line = await up.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    trailer = size_line
                    while (line := await up.readuntil(b"\r\n")) != b"\r\n":
                        trailer += line
                    await self._pass(exchange, down, trailer + b"\r\n", drain=False)
                    self._end(exchange, "answered")
                    break
                await self._pass(exchange, down, size_line + await up.readexactly(size + 2))
        elif length is not None:
            left = int(length)
            while left > 0:
                piece = await up.read(min(left, 65536))
                if not piece:
                    raise ConnectionError("llama-server closed the answer early")
                left -= len(piece)
                await self._pass(exchange, down, piece, drain=left > 0)
            self._end(exchange, "answered")
        else:
            while piece := await up.read(65536):
                await self._pass(exchange, down, piece)
            self._end(exchange, "answered")
        with contextlib.suppress(ConnectionError):
            await down.drain()
        return delimited

    async def _pass(
        self, exchange: Exchange, down: asyncio.StreamWriter, data: bytes, *, drain: bool = True
    ) -> None:
        """Pass ``data`` on to the client.  The last piece is not drained before the
        request counts as answered: the client cannot start its next request earlier."""
        try:
            down.write(data)
            if drain:
                await down.drain()
        except ConnectionError as exc:
            self._end(exchange, "client left")
            raise _ClientLeft from exc


def over_limit(exchanges: list[Exchange], limit: int) -> list[tuple[float, float, int]]:
    """The spans (start, end, most in flight) in which more than ``limit`` were in flight."""
    events = sorted(
        [(e.started, 1) for e in exchanges]
        + [(e.ended, -1) for e in exchanges if e.ended is not None]
    )
    spans: list[tuple[float, float, int]] = []
    level, since, most = 0, 0.0, 0
    for at, step in events:
        level += step
        if level > limit and step > 0:
            if level - 1 <= limit:
                since, most = at, level
            most = max(most, level)
        elif level == limit and step < 0:
            spans.append((since, at, most))
    return spans


def _readable(sock: Any) -> bool:
    with contextlib.suppress(OSError, ValueError):
        return bool(select.select([sock.fileno()], [], [], 0)[0])
    return True  # closed already


class _ClientLeft(Exception):
    pass


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


def _rewrite_request(head: bytes, netloc: str) -> bytes:
    """The request head for llama-server: its own Host, one request per connection."""
    request_line, *lines = head.rstrip(b"\r\n").split(b"\r\n")
    kept = [
        line
        for line in lines
        if not line.lower().startswith((b"host:", b"connection:", b"keep-alive:"))
    ]
    host = f"Host: {netloc}".encode()
    return b"\r\n".join([request_line, host, *kept, b"Connection: close"]) + b"\r\n\r\n"


# -- the server process's memory -------------------------------------------------------


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


async def sample_rss(pid: int, samples: list[tuple[float, int]], every: float = 0.05) -> None:
    while True:
        samples.append((time.monotonic(), rss_kb(pid)))
        await asyncio.sleep(every)


# -- the storm -------------------------------------------------------------------------


@dataclass(eq=False)
class Sent:
    """One request of the storm."""

    kind: str  # "completion", "inline-auto", "inline-invoked"
    msg_id: str
    sent_at: float
    answer: asyncio.Future[Any]
    prompt: str = ""  # the story the request asks about, trailing spaces held back
    answered_at: float | None = None
    cancelled_by_us: bool = False

    @property
    def outcome(self) -> str:
        """How it was answered: "result", "cancelled", the error it got, or "unanswered"."""
        if not self.answer.done() or self.answer.cancelled():
            return "unanswered"
        exc = self.answer.exception()
        if exc is None:
            return "result"
        if isinstance(exc, JsonRpcRequestCancelled):
            return "cancelled"
        if isinstance(exc, JsonRpcException):
            return f"error {exc.code}: {exc}"
        return f"error {exc!r}"


@dataclass(eq=False)
class Storm:
    """What one storm did and what was seen of it."""

    started: float
    route: str = "direct"
    storm_s: float = 0.0
    text: str = ""
    sent: list[Sent] = field(default_factory=list)
    responses: Counter[Any] = field(default_factory=Counter)
    exchanges: list[Exchange] = field(default_factory=list)
    max_in_flight: int = 0
    proxy_errors: list[str] = field(default_factory=list)
    in_flight_after: int = -1  # 2 s after the last answer
    started_later: list[Exchange] = field(default_factory=list)  # in the second after that
    rss: list[tuple[float, int]] = field(default_factory=list)
    errors_logged: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # the final text's beams, asked directly
    requests_per_weave: int = 0  # of the final text, asked directly
    first_weave_requests: int = 0  # of the first story asked about, asked directly

    @property
    def every_version(self) -> int:
        """At least how many backend requests weaving every story asked about would take
        (weaves grow with the text: each takes at least what the first one took)."""
        return len({s.prompt for s in self.sent}) * self.first_weave_requests

    @property
    def final(self) -> Sent:
        return self.sent[-1]

    @property
    def final_answer_s(self) -> float:
        return (self.final.answered_at or float("inf")) - self.final.sent_at

    @property
    def weave_requests(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.path == "/completion" and not e.warmup]

    @property
    def superseded(self) -> list[Sent]:
        """Requests the server answered "cancelled" although the client never cancelled them."""
        return [s for s in self.sent if s.outcome == "cancelled" and not s.cancelled_by_us]

    def older_than_started(self) -> list[Exchange]:
        """Weave requests for an older story than one whose request had already started:
        work for a weave that a newer one should have cancelled."""
        newest, late = 0, []
        for exchange in sorted(self.weave_requests, key=lambda e: e.started):
            length = len(exchange.prompt or "")
            if length < newest:
                late.append(exchange)
            newest = max(newest, length)
        return late

    def behind_the_last(self) -> list[Exchange]:
        """Backend requests for an older story than the last request's that began after it
        was sent: what the last request's weave may have waited behind."""
        final = self.final
        return [
            e
            for e in self.exchanges
            if e.path == "/completion"
            and e.started >= final.sent_at
            and len(e.prompt or "") < len(final.prompt)
        ]

    def unwanted_for(self, exchange: Exchange) -> float:
        """Seconds a weave request stayed open after the last request that asked about its
        story was answered (nobody waits for that weave then: it is done or cancelled)."""
        asked = [s.answered_at or float("inf") for s in self.sent if s.prompt == exchange.prompt]
        return (exchange.ended or float("inf")) - max(asked, default=float("-inf"))

    def unwanted(self, more_than: float = UNWANTED_S) -> list[Exchange]:
        return [e for e in self.weave_requests if self.unwanted_for(e) > more_than]

    def rss_figures(self) -> tuple[int, int, int, int]:
        """(at the start, after 10% of the storm, peak, end) in kB."""
        tenth = self.started + self.storm_s / 10
        after_tenth = next((kb for at, kb in self.rss if at >= tenth), self.rss[-1][1])
        return self.rss[0][1], after_tenth, max(kb for _, kb in self.rss), self.rss[-1][1]

    def report(self) -> str:
        sent, ex, weaves = self.sent, self.exchanges, self.weave_requests
        outcomes = Counter((s.kind, s.outcome) for s in sent)
        spans = over_limit(ex, CONCURRENCY)
        unwanted = [self.unwanted_for(e) for e in weaves]
        rss = [kb / 1024 for kb in self.rss_figures()]
        lines = [
            f"storm ({self.route}): N={KEYSTROKES} keystrokes in {self.storm_s:.2f} s, "
            f"{len(sent)} requests, "
            f"{sum(s.cancelled_by_us for s in sent)} of them cancelled by the client, "
            f"{len(self.superseded)} by the server; the last answered "
            f"{self.final_answer_s:.2f} s after it was sent",
            *(f"storm:   {k:15} {how:12} {n}" for (k, how), n in sorted(outcomes.items())),
            f"storm: backend requests {len(ex)}: {len(weaves)} weave, "
            f"{sum(e.warmup for e in ex)} warm-up, {sum(e.path != '/completion' for e in ex)} "
            f"other; {sum(e.how == 'client left' for e in ex)} closed early by the server; "
            f"weaving every story asked about would take over {self.every_version}; "
            f"a weave of the first takes {self.first_weave_requests}, of the final text "
            f"{self.requests_per_weave}",
            f"storm: in flight at most {self.max_in_flight} (concurrency {CONCURRENCY}), over "
            f"it {len(spans)} times for {sum(b - a for a, b, _ in spans):.2f} s in all",
            f"storm: weave requests open > {UNWANTED_S} s after nobody wanted them: "
            f"{sum(u > UNWANTED_S for u in unwanted)}, the longest "
            f"{max(unwanted, default=0):.2f} s; for an older story than one already sent: "
            f"{len(self.older_than_started())}; in flight 2 s after the last answer: "
            f"{self.in_flight_after}, started in the second after: {len(self.started_later)}",
            f"storm: server RSS {rss[0]:.1f} MiB at the start, {rss[1]:.1f} MiB after 10%, "
            f"peak {rss[2]:.1f} MiB, end {rss[3]:.1f} MiB; errors logged: "
            f"{len(self.errors_logged)}",
        ]
        deciles = [
            next((kb for at, kb in self.rss if at >= self.started + self.storm_s * k / 10), 0)
            for k in range(11)
        ]
        lines.append(
            f"storm: RSS by tenths of the storm (MiB): {[round(kb / 1024, 1) for kb in deciles]}"
        )
        final = self.final
        lines.append(
            f"storm: the last request, +{final.sent_at - self.started:.3f} s: "
            f"{len(self.behind_the_last())} requests for older stories began after it; backend "
            "requests for older stories open then or begun after:"
        )
        lines.extend(
            f"storm:   slot {e.slot} prompt {len(e.prompt or '')} chars"
            f"{' (warm-up)' if e.warmup else ''} {e.path}, +{e.started - self.started:.3f}.."
            f"+{(e.ended or 0) - self.started:.3f} s, {e.how}"
            for e in ex
            if (e.ended or float("inf")) >= final.sent_at
            and len(e.prompt or "") < len(final.prompt)
        )
        for a, b, most in spans[:2]:
            lines.append(
                f"storm: {most} in flight from +{a - self.started:.3f} s for {b - a:.3f} s:"
            )
            lines.extend(
                f"storm:   slot {e.slot} prompt {len(e.prompt or '')} chars"
                f"{' (warm-up)' if e.warmup else ''}, +{e.started - self.started:.3f}.."
                f"+{(e.ended or 0) - self.started:.3f} s, answer began "
                f"+{(e.head_at or 0) - self.started:.3f} s, {e.how}"
                for e in ex
                if e.started <= b and (e.ended or float("inf")) >= a
            )
        return "\n".join(lines)


def count_responses(client: LanguageClient) -> Counter[Any]:
    """Counts every response the client receives, by message id (a second answer to one
    request would otherwise only be logged, as 'unknown message id')."""
    counts: Counter[Any] = Counter()
    handle = client.protocol._handle_response

    def counting(msg_id: Any, result: Any = None, error: Any = None) -> None:
        counts[msg_id] += 1
        handle(msg_id, result, error)

    client.protocol._handle_response = counting  # type: ignore[method-assign]
    return counts


async def weave_directly(url: str, story: str) -> tuple[list[str], int]:
    """The beams a weave of ``story`` with the storm's settings gives, asked of llama-server
    directly, and how many requests it took."""
    settings = parse_settings(options(url)["lloom"])
    backend = LlamaCppBackend(url, concurrency=CONCURRENCY)
    try:
        # folded as the server folds them (near-duplicates one suggestion)
        result = await weave(backend, story, settings.weave, concurrency=CONCURRENCY, fold=True)
    finally:
        await backend.aclose()
    return [beam.insert_text for beam in result.beams if beam.insert_text], result.stats.requests


async def run_storm(llama_server_url: str, route: str, workdir: Path) -> Storm:
    """The storm, with the server reaching the counting proxy through ``route``."""
    proxy = CountingProxy(llama_server_url, delay=FIRST_TOKEN_S)
    await proxy.start()
    try:
        async with through(route, proxy.url, workdir) as url:
            client = await ClientServerConfig(server_command=SERVER).start()
            assert isinstance(client, LanguageClient)
            try:
                storm = await _storm(client, proxy, url)
            finally:
                await client.shutdown_session()
                await client.stop()
    finally:
        await proxy.aclose()
    storm.route = route
    storm.exchanges, storm.max_in_flight = proxy.exchanges, proxy.max_in_flight
    storm.proxy_errors = proxy.errors
    storm.expected, storm.requests_per_weave = await weave_directly(llama_server_url, storm.text)
    first = storm.sent[0].prompt
    _, storm.first_weave_requests = await weave_directly(llama_server_url, first)
    return storm


async def _storm(client: LanguageClient, proxy: CountingProxy, url: str) -> Storm:
    caps = client_capabilities("visual-studio-code")
    assert caps.text_document is not None
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=caps,
            initialization_options=options(url),
            client_info=types.ClientInfo(name="pytest-lsp"),
        )
    )
    server_process = getattr(client, "_server", None)
    assert server_process is not None, "pygls's client no longer keeps the server process"
    corpus = CORPUS.read_text(encoding="utf-8")
    text, source, version = corpus[:40], corpus[40:], 1
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=URI, language_id="plaintext", version=version, text=text
            )
        )
    )
    storm = Storm(started=time.monotonic())
    storm.responses = count_responses(client)
    loop = asyncio.get_running_loop()
    rng = random.Random(2000)
    timers: list[asyncio.TimerHandle] = []

    def ask(kind: str) -> Sent:
        doc, position = types.TextDocumentIdentifier(uri=URI), end_of(text)
        params: Any
        if kind == "completion":
            method = types.TEXT_DOCUMENT_COMPLETION
            params = types.CompletionParams(text_document=doc, position=position)
        else:
            method = types.TEXT_DOCUMENT_INLINE_COMPLETION
            trigger = types.InlineCompletionTriggerKind.Invoked
            if kind == "inline-auto":
                trigger = types.InlineCompletionTriggerKind.Automatic
            context = types.InlineCompletionContext(trigger_kind=trigger)
            params = types.InlineCompletionParams(
                text_document=doc, position=position, context=context
            )
        msg_id = f"{kind}-{len(storm.sent)}"
        answer = asyncio.ensure_future(
            client.protocol.send_request_async(method, params, msg_id=msg_id)
        )
        request = Sent(kind, msg_id, time.monotonic(), answer, text.rstrip(" \t"))
        answer.add_done_callback(lambda done: answered(request, done))
        storm.sent.append(request)
        return request

    def answered(request: Sent, answer: asyncio.Future[Any]) -> None:
        if not answer.cancelled():  # cancelled: never answered, the loop closed under it
            request.answered_at = time.monotonic()

    def cancel_soon(request: Sent, delay: float) -> None:
        def cancel() -> None:
            if not request.answer.done():
                request.cancelled_by_us = True
                client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request.msg_id))

        timers.append(loop.call_later(delay, cancel))

    sampler = asyncio.ensure_future(sample_rss(server_process.pid, storm.rss))
    due = loop.time()
    try:
        for i in range(KEYSTROKES):
            due += INTERVAL + (PAUSE if i and i % PAUSE_EVERY == 0 else 0.0)
            await asyncio.sleep(max(0.0, due - loop.time()))
            char, at = source[i % len(source)], end_of(text)
            text, version = text + char, version + 1
            change = types.TextDocumentContentChangePartial(range=types.Range(at, at), text=char)
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                    content_changes=[change],
                )
            )
            if (i // PAUSE_EVERY) % 2 and i % PAUSE_EVERY >= PAUSE_EVERY - QUIET:
                continue  # typing on before a pause, no requests: the warm-up's turn
            ask("inline-auto")  # superseded by the next keystroke's
            if i % 3 == 0:
                request = ask("completion")
                if rng.random() < 0.7:
                    cancel_soon(request, rng.choice([0.0, 0.005, 0.02, 0.05]))
            if i % 5 == 2:
                request = ask("inline-invoked")
                if rng.random() < 0.5:
                    cancel_soon(request, rng.choice([0.0, 0.01, 0.04]))
        storm.storm_s = time.monotonic() - storm.started
        storm.text = text
        ask("inline-invoked")  # the last request, at the final text, never cancelled
        await asyncio.wait([s.answer for s in storm.sent], timeout=ANSWER_TIMEOUT)
        storm.responses = Counter(storm.responses)  # before shutdown's answer comes
        # No orphaned work: nothing in flight soon after the last answer, nothing new after.
        deadline = time.monotonic() + 2.0
        while proxy.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        storm.in_flight_after = proxy.in_flight
        before = len(proxy.exchanges)
        await asyncio.sleep(1.0)
        storm.started_later = proxy.exchanges[before:]
    finally:
        for timer in timers:
            timer.cancel()
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    storm.errors_logged = [
        m.message for m in client.log_messages if m.type == types.MessageType.Error
    ]
    return storm


#: The storms run so far, by route: each runs once for the module's tests.
_STORMS: dict[str, Storm] = {}


def _storm_by(
    route: str,
    llama_server_url: str,
    factory: pytest.TempPathFactory,
    real_part_missing: Callable[[str], None],
) -> Storm:
    check_installed(route, real_part_missing)
    if route not in _STORMS:  # its own event loop: it outlives a test's
        workdir = factory.mktemp(f"storm-{route}")
        _STORMS[route] = asyncio.run(run_storm(llama_server_url, route, workdir))
        print(f"\n{_STORMS[route].report()}")
    return _STORMS[route]


@pytest.fixture(scope="module", params=ROUTES)
def storm(
    request: pytest.FixtureRequest,
    llama_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    real_part_missing: Callable[[str], None],
) -> Storm:
    """The storm straight to llama-server, through nginx, and through a LAN: what a writer
    sees holds on each."""
    return _storm_by(request.param, llama_server_url, tmp_path_factory, real_part_missing)


@pytest.fixture(scope="module")
def direct_storm(
    llama_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    real_part_missing: Callable[[str], None],
) -> Storm:
    """The storm straight to llama-server, for what only the counting proxy right in front
    of it can time (a proxy between delays what it sees of every close)."""
    return _storm_by("direct", llama_server_url, tmp_path_factory, real_part_missing)


# -- what it shows ---------------------------------------------------------------------


def test_every_request_gets_one_answer(storm: Storm) -> None:
    assert storm.proxy_errors == []
    outcomes = Counter(s.outcome for s in storm.sent)
    assert set(outcomes) <= {"result", "cancelled"}, outcomes
    assert {msg_id: n for msg_id, n in storm.responses.items() if n != 1} == {}
    assert sorted(storm.responses) == sorted(s.msg_id for s in storm.sent)


def test_backend_requests_never_exceed_concurrency_nor_outlive_their_weave(
    direct_storm: Storm,
) -> None:
    storm = direct_storm
    assert storm.proxy_errors == []
    assert storm.max_in_flight <= CONCURRENCY, over_limit(storm.exchanges, CONCURRENCY)[:5]
    # a cancelled weave closes its requests at once and sends no more
    late = [(len(e.prompt or ""), round(storm.unwanted_for(e), 2)) for e in storm.unwanted()]
    assert late == []
    assert [len(e.prompt or "") for e in storm.older_than_started()] == []
    # so the last request waits behind no leftovers of the storm: at most one warm-up of an
    # older story runs on (it fills every slot), and one more that began before the server
    # read the last request.  Warm-ups of every story paused at queued here once, and the
    # last weave waited 8 s behind 30 of them on a loaded machine.
    behind = [(len(e.prompt or ""), e.warmup) for e in storm.behind_the_last()]
    assert len(behind) <= 2 * CONCURRENCY, behind


def test_stale_weaves_are_cancelled(storm: Storm) -> None:
    auto = [s for s in storm.sent if s.kind == "inline-auto"]
    # every automatic request but the last before a pause is stale by the next keystroke
    assert len([s for s in storm.superseded if s.kind == "inline-auto"]) >= 0.8 * len(auto)
    weaves = storm.weave_requests
    assert weaves  # the proxy saw them
    assert len(weaves) < storm.every_version / 2
    assert storm.in_flight_after == 0
    assert storm.started_later == []


def test_the_last_request_gets_the_final_texts_beams(storm: Storm) -> None:
    assert storm.final.outcome == "result"
    result = storm.final.answer.result()
    assert isinstance(result, types.InlineCompletionList)
    got = [str(item.insert_text) for item in result.items]
    assert got and sorted(got) == sorted(storm.expected)


def test_server_memory_stays_bounded(direct_storm: Storm) -> None:
    storm = direct_storm
    _, after_tenth, peak, _ = storm.rss_figures()
    assert len(storm.rss) > 20
    assert peak - after_tenth < RSS_GROWTH_LIMIT_KB


def test_cancelling_logs_no_errors(storm: Storm) -> None:
    assert storm.errors_logged == []

"""Warm-up and prefetch (``lloom.warmup``): the story is evaluated into llama-server's
slots once the writer pauses, any weave cancels that, and after ``lloom.accept`` the
continuation is woven in the background so the next request is a cache hit.

llama-server's ``GET /slots`` shows, per slot, the last task (``id_task``) and its prompt
length (``n_prompt_tokens``): a slot whose task changed to one of exactly the story's
token count has just evaluated the story.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import EXACT_WEAVE, URI, end_of, lloom_options, open_doc, start
from lsprotocol import types
from pygls.workspace import PositionCodec, TextDocument
from pytest_lsp import LanguageClient

from lloom_lsp.backends import BackendUnavailable
from lloom_lsp.config import Settings, parse_settings
from lloom_lsp.server.positions import change_end, end_of_document, from_lsp_story
from lloom_lsp.server.settings import lloom_section
from lloom_lsp.server.weave_service import WeaveService

TEXT = "Once upon a time,"
#: Pool size: the server's slots, at most lloom.backend.concurrency (default 4) of them.
CONCURRENCY = 4

# -- llama-server, observed ------------------------------------------------------------


async def slots(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = (await http.get(f"{url}/slots")).json()
    return list(answer)[:CONCURRENCY]


async def token_count(url: str, text: str) -> int:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = (await http.post(f"{url}/tokenize", json={"content": text})).json()
    return len(answer["tokens"])


async def idle_tasks(url: str) -> dict[int, Any]:
    """Each slot's last task, once no slot is processing (a previous test's leftovers)."""
    await until(lambda: _idle(url), "llama-server never became idle")
    return {s["id"]: s.get("id_task") for s in await slots(url)}


async def _idle(url: str) -> bool:
    return not any(s["is_processing"] for s in await slots(url))


async def holding(url: str, before: dict[int, Any], n_tokens: int) -> int:
    """How many slots ran a new task with a prompt of ``n_tokens`` tokens."""
    return sum(
        1
        for s in await slots(url)
        if s.get("id_task") != before.get(s["id"]) and s.get("n_prompt_tokens") == n_tokens
    )


async def until(check: Callable[[], Any], message: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.02)


def logged(client: LanguageClient, text: str) -> list[str]:
    return [m.message for m in client.log_messages if text in m.message]


# -- LSP helpers ---------------------------------------------------------------------


def options(url: str, **warmup: Any) -> dict[str, Any]:
    out = lloom_options(url, **EXACT_WEAVE)
    out["lloom"]["warmup"] = warmup
    return out


def insert(client: LanguageClient, at: types.Position, text: str, version: int) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(range=types.Range(at, at), text=text)
            ],
        )
    )


async def complete(client: LanguageClient, at: types.Position) -> types.CompletionList:
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=at)
    )
    assert isinstance(result, types.CompletionList)
    return result


def errors_shown(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Error]


# -- end to end ----------------------------------------------------------------------


async def test_opened_story_is_warmed_into_every_slot(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, options(llama_server_url))  # the default debounce
    story = "The miller and his daughter walked down to the river every morning, "
    wanted = await token_count(llama_server_url, story.rstrip())
    before = await idle_tasks(llama_server_url)
    open_doc(bare_client, story)
    await until(
        lambda: _all_hold(llama_server_url, before, wanted),
        "the story never reached every slot",
    )
    await until(
        lambda: logged(bare_client, f"warm-up: {CONCURRENCY} slot(s) now hold the story"),
        "the warm-up was not logged",
    )
    assert errors_shown(bare_client) == []
    assert not bare_client.progress_reports  # a warm-up shows no progress


async def _all_hold(url: str, before: dict[int, Any], n_tokens: int) -> bool:
    return await holding(url, before, n_tokens) == CONCURRENCY


async def test_change_warms_the_story_at_the_end_of_the_inserted_text(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    # maxContextChars applies as it does for a weave: at most the last 50 characters, from
    # a boundary, before the end of the text inserted mid-document.
    opts = options(llama_server_url, debounceMs=50)
    opts["lloom"]["story"] = {"maxContextChars": 50}
    await start(bare_client, opts)
    head, tail = "Once upon a time there was a little fox.", " The end of it all, told at last."
    open_doc(bare_client, head + tail)
    await until(lambda: logged(bare_client, "warm-up:"), "the opened story was never warmed")
    inserted = " It lived by the river,\nand it was happy"
    before = await idle_tasks(llama_server_url)
    insert(bare_client, end_of(head), inserted, version=2)
    story = _cut(head + inserted, 50)
    # the window starts at a sentence, a step past the start a plain cut would give
    assert story == "It lived by the river,\nand it was happy"
    at_the_end = _cut(head + inserted + tail, 50)  # what the end of the document would give
    wanted = await token_count(llama_server_url, story)
    assert wanted != await token_count(llama_server_url, at_the_end)
    await until(
        lambda: _all_hold(llama_server_url, before, wanted),
        "the story at the end of the inserted text never reached every slot",
    )
    await until(lambda: len(logged(bare_client, "warm-up:")) == 2, "the warm-up was not logged")
    assert f"the story ({len(story)} characters)" in logged(bare_client, "warm-up:")[1]


def _cut(text: str, max_chars: int) -> str:
    return from_lsp_story(TextDocument(URI, text), end_of(text), max_chars)


async def test_a_completion_right_after_a_change_cancels_the_pending_warm_up(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, options(llama_server_url))
    open_doc(bare_client, TEXT)
    insert(bare_client, end_of(TEXT), " there", version=2)
    text = TEXT + " there"
    result = await complete(bare_client, end_of(text))
    assert result.items  # answered, not held up by the warm-up
    await until(
        lambda: logged(bare_client, "cancelled 1 warm-up(s): a weave needs the backend"),
        "the weave did not cancel the pending warm-up",
    )
    # The cancelled warm-up never runs: the next pause warms only the next story.
    insert(bare_client, end_of(text), " was", version=3)
    await until(lambda: logged(bare_client, "warm-up:"), "the next change never warmed up")
    (line,) = logged(bare_client, "warm-up:")
    assert f"the story ({len(text + ' was')} characters)" in line
    assert errors_shown(bare_client) == []


async def test_no_warm_up_request_when_disabled(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, options(llama_server_url, enabled=False, debounceMs=0))
    story = "A shepherd counted his sheep on the hill above the village, "
    wanted = await token_count(llama_server_url, story.rstrip())
    before = await idle_tasks(llama_server_url)
    open_doc(bare_client, story)
    # A warm-up would start at once (debounce 0): watch the slots for a good while.
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert {s["id"]: s.get("id_task") for s in await slots(llama_server_url)} == before
        await asyncio.sleep(0.05)
    assert logged(bare_client, "warm-up") == []
    # The same session warms once it is switched on: the watch above was long enough.
    bare_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"lloom": {"warmup": {"enabled": True, "debounceMs": 0}}}
        )
    )
    insert(bare_client, end_of(story), "and", version=2)
    wanted = await token_count(llama_server_url, story + "and")
    await until(lambda: _all_hold(llama_server_url, before, wanted), "switched on, it never warmed")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_failing_backend_during_warm_up_is_only_logged(
    bare_client: LanguageClient,
) -> None:
    await start(bare_client, options(f"http://127.0.0.1:{_closed_port()}", debounceMs=0))
    open_doc(bare_client, TEXT)
    await until(lambda: logged(bare_client, "warm-up skipped"), "the warm-up never ran")
    assert errors_shown(bare_client) == []
    (line,) = [m for m in bare_client.log_messages if "warm-up skipped" in m.message]
    assert line.type == types.MessageType.Info


def accepting(client: LanguageClient, text: str, accepted: str) -> None:
    """Answer workspace/applyEdit as an editor does: apply it (send didChange) first."""

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        insert(client, end_of(text), accepted, version=2)
        return types.ApplyWorkspaceEditResult(applied=True)


async def accept(client: LanguageClient, accepted: str) -> None:
    pos = end_of(TEXT)
    applied = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="lloom.accept",
            arguments=[URI, 1, {"line": pos.line, "character": pos.character}, accepted],
        )
    )
    assert applied == {"applied": True}


SPEED = " suggestions in "


async def test_after_accept_the_next_completion_comes_from_the_cache(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, options(llama_server_url))
    accepting(bare_client, TEXT, " there was")
    open_doc(bare_client, TEXT)
    await accept(bare_client, " there was")
    await until(lambda: logged(bare_client, "prefetched"), "the continuation was not prefetched")
    assert len(logged(bare_client, SPEED)) == 1  # the prefetch, and nothing else
    before = await idle_tasks(llama_server_url)
    result = await complete(bare_client, end_of(TEXT + " there was"))
    assert result.items
    assert await idle_tasks(llama_server_url) == before  # nothing reached llama-server
    assert len(logged(bare_client, SPEED)) == 1
    assert not bare_client.progress_reports  # the prefetch showed no progress
    assert errors_shown(bare_client) == []


async def test_a_completion_during_the_prefetch_never_weaves_twice(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, options(llama_server_url))
    accepting(bare_client, TEXT, " there was")
    open_doc(bare_client, TEXT)
    await accept(bare_client, " there was")
    # At once: it shares the running prefetch (or, on a fast machine, its cached result).
    result = await complete(bare_client, end_of(TEXT + " there was"))
    assert result.items
    await until(lambda: logged(bare_client, "prefetched"), "the continuation was not prefetched")
    assert len(logged(bare_client, SPEED)) == 1  # one weave served both


async def test_without_prefetch_the_next_completion_weaves(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, options(llama_server_url, prefetch=False))
    accepting(bare_client, TEXT, " there was")
    open_doc(bare_client, TEXT)
    await accept(bare_client, " there was")
    before = await idle_tasks(llama_server_url)
    assert logged(bare_client, SPEED) == []
    result = await complete(bare_client, end_of(TEXT + " there was"))
    assert result.items
    assert await idle_tasks(llama_server_url) != before  # it asked llama-server
    assert len(logged(bare_client, SPEED)) == 1
    assert logged(bare_client, "prefetched") == []


# -- units: settings, positions -------------------------------------------------------


def test_warmup_settings_have_defaults_and_are_read_in_every_shape() -> None:
    assert Settings().warmup == parse_settings({}).warmup
    assert (Settings().warmup.enabled, Settings().warmup.debounce_ms) == (True, 750)
    assert Settings().warmup.prefetch is True
    for shape in (
        {"warmup": {"enabled": False}},
        {"lloom": {"warmup": {"enabled": False}}},
        {"lloom.warmup.enabled": False},
    ):
        assert parse_settings(lloom_section(shape)).warmup.enabled is False, shape


@pytest.mark.parametrize(
    ("source", "start", "text"),
    [
        ("Once upon a time", (0, 4), " there"),
        ("Once upon\na time", (0, 9), " there,\nand then\n"),
        ("Once upon\r\na time", (1, 2), "x\r\ny"),
        ("Once 🦊 upon", (0, 7), "🦊 and 🦊"),
        ("Once upon a time", (0, 4), ""),
    ],
)
@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-32"])
def test_change_end_is_just_after_the_inserted_text(
    source: str, start: tuple[int, int], text: str, encoding: str
) -> None:
    doc = TextDocument(URI, source, 1, position_codec=PositionCodec(encoding))
    at = types.Position(*start)
    offset = doc.offset_at_position(at)
    change = types.TextDocumentContentChangePartial(range=types.Range(at, at), text=text)
    doc.apply_change(change)
    assert doc.offset_at_position(change_end(doc, change)) == offset + len(text)


@pytest.mark.parametrize("source", ["", "one line", "two\nlines", "ends in a break\n", "🦊\n🦊"])
def test_whole_document_change_ends_at_the_end(source: str) -> None:
    doc = TextDocument(URI, "old")
    change = types.TextDocumentContentChangeWholeDocument(text=source)
    doc.apply_change(change)
    assert doc.offset_at_position(change_end(doc, change)) == len(source)
    assert from_lsp_story(doc, end_of_document(doc), 10_000) == source


def test_story_after_an_insertion_is_cut_like_any_story() -> None:
    doc = TextDocument(URI, "alpha beta gamma delta")
    at = types.Position(0, 10)
    after = from_lsp_story(doc, at, 16, inserted=" and then")
    assert after == _cut("alpha beta and then", 16) == "beta and then"


# -- units: the service, with a backend in memory ----------------------------------


class _Server:
    """The little of LanguageServer the weaving service touches."""

    def __init__(self) -> None:
        self.client_capabilities = types.ClientCapabilities()
        self.shown: list[str] = []

    def window_show_message(self, params: types.ShowMessageParams) -> None:
        self.shown.append(params.message)


class _Backend:
    protocol = "llamacpp"
    url = "http://memory"

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.gate = asyncio.Event()  # warm-ups and requests wait here
        self.warmed: list[str] = []
        self.warm_cancelled = 0
        self.requests = 0

    async def warm(self, story: str) -> int:
        self.warmed.append(story)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.warm_cancelled += 1
            raise
        if self.fail:
            raise BackendUnavailable(self.url, "nothing answers")
        return 1

    async def continue_prompt(self, prompt: Any, max_tokens: int, top_n: int) -> Any:
        self.requests += 1
        await self.gate.wait()
        raise BackendUnavailable(self.url, "nothing answers")

    async def check(self) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


def _service(backend: _Backend) -> tuple[WeaveService, _Server]:
    server = _Server()
    return WeaveService(server, lambda *_, **__: backend), server  # type: ignore[arg-type]


def _settings(debounce_ms: int = 0) -> Settings:
    return parse_settings({"warmup": {"debounceMs": debounce_ms}})


async def test_warm_up_debounces_per_document_and_holds_back_trailing_space() -> None:
    backend = _Backend()
    backend.gate.set()
    service, _ = _service(backend)
    settings = _settings(debounce_ms=20)
    service.warm_soon(URI, "Once upon", settings)
    service.warm_soon("file:///other.txt", "Elsewhere", settings)
    service.warm_soon(URI, "Once upon a time, ", settings)  # typed on: the first is dropped
    await until(lambda: len(backend.warmed) == 2, "the warm-ups never ran")
    await until(lambda: not service._warmups, "the warm-ups never finished")
    assert sorted(backend.warmed) == ["Elsewhere", "Once upon a time,"]


async def test_a_change_leaves_a_warm_up_that_is_evaluating_alone() -> None:
    backend = _Backend()
    service, _ = _service(backend)
    service.warm_soon(URI, "Once upon a time,", _settings())
    await until(lambda: backend.warmed, "the warm-up never started")
    service.warm_soon(URI, "Once upon a time, there", _settings(debounce_ms=60_000))
    service.warm_soon(URI, "Once upon a time, there was", _settings())  # ends that wait
    await asyncio.sleep(0.05)
    # The next warm-up of the document waits for the one evaluating, still pending: the
    # writer's next change replaces it, so stories they typed past never queue for slots.
    assert backend.warmed == ["Once upon a time,"]
    service.warm_soon(URI, "Once upon a time, there was a", _settings())
    await asyncio.sleep(0.05)
    assert backend.warmed == ["Once upon a time,"]
    backend.gate.set()
    await until(lambda: not service._warmups, "the warm-ups never finished")
    assert backend.warmed == ["Once upon a time,", "Once upon a time, there was a"]
    assert backend.warm_cancelled == 0


async def test_each_document_warms_up_on_its_own() -> None:
    backend = _Backend()
    service, _ = _service(backend)
    service.warm_soon(URI, "Once upon a time,", _settings())
    await until(lambda: backend.warmed, "the warm-up never started")
    service.warm_soon("file:///other.txt", "Elsewhere", _settings())
    await until(lambda: len(backend.warmed) == 2, "the other document waited")
    backend.gate.set()
    await until(lambda: not service._warmups, "the warm-ups never finished")


async def test_a_weave_of_another_story_cancels_a_running_warm_up() -> None:
    backend = _Backend()
    service, _ = _service(backend)
    settings = _settings()
    service.warm_soon(URI, "Once upon a time,", settings)
    await until(lambda: backend.warmed, "the warm-up never started")
    weave = asyncio.ensure_future(service.weave(URI, LONG_OTHER, settings))
    await until(lambda: backend.warm_cancelled == 1, "the weave did not cancel the warm-up")
    weave.cancel()
    await asyncio.gather(weave, return_exceptions=True)


async def test_a_weave_of_the_story_a_warm_up_is_evaluating_lets_it_finish() -> None:
    """Cutting it short would evaluate the story twice: once cut, once for the weave."""
    backend = _Backend()
    service, _ = _service(backend)
    settings = _settings()
    service.warm_soon(URI, "Once upon a time,", settings)
    await until(lambda: backend.warmed, "the warm-up never started")
    weave = asyncio.ensure_future(service.weave(URI, "Once upon a time, there", settings))
    await until(lambda: backend.requests, "the weave never asked")
    assert backend.warm_cancelled == 0
    backend.gate.set()
    await until(lambda: not service._warmups, "the warm-up never finished")
    assert backend.warm_cancelled == 0
    await asyncio.gather(weave, return_exceptions=True)


#: A story that shares nothing with the one warmed up.
LONG_OTHER = "A different story altogether. " * 60


async def test_no_warm_up_while_a_weave_runs() -> None:
    backend = _Backend()
    service, server = _service(backend)
    settings = _settings()
    weave = asyncio.ensure_future(service.weave(URI, "Once upon a time,", settings))
    await until(lambda: backend.requests, "the weave never asked")
    service.warm_soon(URI, "Once upon a time, there", settings)
    await until(lambda: not service._warmups, "the warm-up never finished")
    assert backend.warmed == []
    weave.cancel()
    await asyncio.gather(weave, return_exceptions=True)
    assert server.shown == []


async def test_a_failing_warm_up_shows_nothing() -> None:
    backend = _Backend(fail=True)
    backend.gate.set()
    service, server = _service(backend)
    service.warm_soon(URI, "Once upon a time,", _settings())
    await until(lambda: backend.warmed and not service._warmups, "the warm-up never ran")
    assert server.shown == []


async def test_a_failing_prefetch_is_quiet_until_someone_waits_for_it() -> None:
    backend = _Backend(fail=True)
    service, server = _service(backend)
    settings = _settings()
    service.prefetch(URI, "Once upon a time,", settings)
    await until(lambda: backend.requests, "the prefetch never asked")
    backend.gate.set()
    await until(lambda: not service._prefetches, "the prefetch never ended")
    assert server.shown == []  # nobody asked: only logged

    backend.gate.clear()
    service.prefetch(URI, "Once upon a time, there", settings)
    await until(lambda: backend.requests > 1, "the second prefetch never asked")
    asked = asyncio.ensure_future(service.weave(URI, "Once upon a time, there", settings))

    def joined() -> bool:
        running = service._running.get(URI)
        return running is not None and running.waiters == 2

    await until(joined, "the request did not join it")
    backend.gate.set()
    assert await asked is None
    assert len(server.shown) == 1 and "nothing answers" in server.shown[0]


class _BuggyBackend(_Backend):
    async def continue_prompt(self, prompt: Any, max_tokens: int, top_n: int) -> Any:
        raise IndexError("list index out of range")


async def test_an_unexpected_exception_is_one_message_not_an_internal_error() -> None:
    """Only BackendError used to be caught: anything else reached the client as an internal
    error without a message.  Now the request gets an empty answer and the user one message
    naming the backend and the cause, however often it happens."""
    service, server = _service(_BuggyBackend())
    settings = parse_settings({"weave": {"strategy": "token"}, "warmup": {"enabled": False}})
    for story in ("Once upon", "Once upon a"):
        assert await service.weave(URI, story, settings, show_progress=False) is None
    assert len(server.shown) == 1
    (message,) = server.shown
    assert "http://127.0.0.1:8080" in message and "IndexError: list index out of range" in message


class _SlowToStop(_Backend):
    """Answers at once when the gate is open; a cancelled request takes a while to stop."""

    async def continue_prompt(self, prompt: Any, max_tokens: int, top_n: int) -> Any:
        self.requests += 1
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # closing a connection, say
            raise
        raise BackendUnavailable(self.url, "nothing answers")


async def test_a_new_request_never_joins_a_weave_that_is_being_cancelled() -> None:
    """The last waiter's cancel stops the weave, which takes a moment; a request for the same
    story arriving meanwhile joined it and was answered "cancelled" (-32800)."""
    backend = _SlowToStop()
    service, _ = _service(backend)
    settings = parse_settings({"weave": {"strategy": "token"}, "warmup": {"enabled": False}})
    first = asyncio.ensure_future(service.weave(URI, "Once upon", settings, show_progress=False))
    await until(lambda: backend.requests == 1, "the first weave never asked")
    first.cancel()
    await asyncio.sleep(0)  # the weave is cancelling, not done
    second = asyncio.ensure_future(service.weave(URI, "Once upon", settings, show_progress=False))
    await until(lambda: backend.requests == 2, "the second request joined the cancelled weave")
    backend.gate.set()
    assert await asyncio.wait_for(second, 5) is None  # its own weave, failed: not cancelled
    assert first.cancelled()


async def test_a_settings_change_rebuilds_only_what_it_changes() -> None:
    """Every change closed every backend: a managed llama-server restarted and `auto` probed
    again when only inline.debounceMs changed."""
    made: list[_Backend] = []
    closed: list[_Backend] = []

    class Counted(_Backend):
        async def aclose(self) -> None:
            closed.append(self)

    def factory(*_: Any, **__: Any) -> _Backend:
        made.append(Counted())
        return made[-1]

    service = WeaveService(_Server(), factory)  # type: ignore[arg-type]
    before = parse_settings({"inline": {"debounceMs": 300}})
    service.backend(before)
    await service.settings_changed(parse_settings({"inline": {"debounceMs": 50}}))
    service.backend(parse_settings({"inline": {"debounceMs": 50}}))
    assert (len(made), closed) == (1, [])  # the same backend, still open

    moved = parse_settings({"backend": {"url": "http://127.0.0.1:9999"}})
    await service.settings_changed(moved)
    assert closed == made  # the old backend is closed ...
    service.backend(moved)
    assert len(made) == 2  # ... and the new one built

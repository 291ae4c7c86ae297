"""Work-done progress, cancellation, and a backend that is down."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from typing import Any

import httpx
import pytest
from conftest import URI, end_of, lloom_options, open_doc, start
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from lloom_lsp.server.weave_service import SAYS_EVALUATING

TEXT = "Once upon a time,"
SPEED = re.compile(r"\d+ suggestions in \d+\.\d\d s @ \d+\.\d tok/s")

# A weave big enough to still be running when it is cancelled.
SLOW = {
    "strategy": "token",
    "maxDepth": 200,
    "maxSuggestions": 1000,
    "splitLimit": 0,
    "cutoff": 0.02,
    "autoStop": False,
}


async def weaving_started(client: LanguageClient) -> None:
    """Wait until the server reports progress: the weave is running."""
    deadline = time.monotonic() + 10
    while not any(client.progress_reports.values()):
        assert time.monotonic() < deadline, "the weave never started"
        await asyncio.sleep(0.01)


def completion(pos: types.Position, token: str | None = None) -> types.CompletionParams:
    return types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=pos, work_done_token=token
    )


async def test_progress_with_server_created_token(client: LanguageClient) -> None:
    open_doc(client, TEXT)
    result = await client.text_document_completion_async(completion(end_of(TEXT)))
    assert result is not None and result.items
    (reports,) = client.progress_reports.values()
    begin, *middle, end = reports
    assert isinstance(begin, types.WorkDoneProgressBegin) and begin.title == "Weaving"
    assert middle and all(isinstance(r, types.WorkDoneProgressReport) for r in middle)
    assert re.fullmatch(r"\d+ beams, \d+\.\d tok/s", middle[-1].message or "")
    assert isinstance(end, types.WorkDoneProgressEnd)
    assert SPEED.fullmatch(end.message or "")
    assert (end.message or "").startswith(f"{len(result.items)} suggestions")


async def test_progress_uses_the_clients_token(client: LanguageClient) -> None:
    open_doc(client, TEXT)
    client.progress_reports["mine"] = []  # the client made this token itself
    await client.text_document_completion_async(completion(end_of(TEXT), token="mine"))
    assert list(client.progress_reports) == ["mine"]
    kinds = [type(r).__name__ for r in client.progress_reports["mine"]]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"


async def test_cancel_request_cancels_the_weave(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, lloom_options(llama_server_url, **SLOW))
    open_doc(bare_client, TEXT)
    pending = asyncio.ensure_future(
        bare_client.protocol.send_request_async(
            types.TEXT_DOCUMENT_COMPLETION, completion(end_of(TEXT)), msg_id="slow-1"
        )
    )
    await weaving_started(bare_client)
    bare_client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="slow-1"))
    started = time.perf_counter()
    with pytest.raises(JsonRpcRequestCancelled):
        await pending
    assert time.perf_counter() - started < 2.0
    # the server is free again: a small weave answers
    bare_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"lloom": {"weave": {"maxDepth": 3}}})
    )
    result = await bare_client.text_document_completion_async(completion(end_of(TEXT)))
    assert result is not None and result.items


async def test_new_weave_cancels_the_previous_one(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, lloom_options(llama_server_url, **SLOW))
    text = TEXT + " there was"
    open_doc(bare_client, text)
    first = asyncio.ensure_future(
        bare_client.text_document_completion_async(completion(end_of(TEXT)))
    )
    await weaving_started(bare_client)
    second = asyncio.ensure_future(
        bare_client.protocol.send_request_async(
            types.TEXT_DOCUMENT_COMPLETION, completion(end_of(text)), msg_id="second"
        )
    )
    with pytest.raises(JsonRpcRequestCancelled):
        await first
    assert not second.done()  # the second weave is the one running now
    bare_client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="second"))
    with pytest.raises(JsonRpcRequestCancelled):
        await second
    errors = [m for m in bare_client.messages if m.type == types.MessageType.Error]
    assert errors == []  # cancelling is not a backend failure


async def test_settings_change_cancels_a_running_weave_quietly(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, lloom_options(llama_server_url, **SLOW))
    open_doc(bare_client, TEXT)
    first = asyncio.ensure_future(
        bare_client.text_document_completion_async(completion(end_of(TEXT)))
    )
    await weaving_started(bare_client)
    bare_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"lloom": {"weave": {"maxDepth": 3}}})
    )
    with pytest.raises(JsonRpcRequestCancelled):
        await first
    again = await bare_client.text_document_completion_async(completion(end_of(TEXT)))
    assert again is not None and again.items
    assert [m for m in bare_client.messages if m.type == types.MessageType.Error] == []


async def test_closing_the_document_cancels_its_weave(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, lloom_options(llama_server_url, **SLOW))
    open_doc(bare_client, TEXT)
    pending = asyncio.ensure_future(
        bare_client.text_document_completion_async(completion(end_of(TEXT)))
    )
    await weaving_started(bare_client)
    bare_client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=URI))
    )
    with pytest.raises(JsonRpcRequestCancelled):
        await pending


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_backend_down_gives_empty_answers_and_one_message(
    bare_client: LanguageClient,
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    await start(bare_client, lloom_options(url))
    open_doc(bare_client, TEXT)
    for i in range(3):
        started = time.perf_counter()
        result = await bare_client.text_document_completion_async(
            completion(types.Position(0, len(TEXT) - i))
        )
        assert time.perf_counter() - started < 5
        assert result is not None and list(result.items) == []
    shown = [m for m in bare_client.messages if m.type == types.MessageType.Error]
    assert len(shown) == 1
    assert url in shown[0].message
    assert "lloom.backend.url" in shown[0].message
    assert any(url in m.message for m in bare_client.log_messages)


async def test_cancelling_the_weave_command_stops_the_weave(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    """pygls runs a command under a task of its own: $/cancelRequest answered -32800 but the
    weave and its backend requests went on."""
    await start(bare_client, lloom_options(llama_server_url, **SLOW))
    open_doc(bare_client, TEXT)
    bare_client.progress_reports["cmd"] = []
    params = types.ExecuteCommandParams(
        command="lloom.weave",
        arguments=[URI, {"line": 0, "character": len(TEXT)}],
        work_done_token="cmd",
    )
    pending = asyncio.ensure_future(
        bare_client.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND, params, msg_id="weave-1"
        )
    )
    await weaving_started(bare_client)
    bare_client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="weave-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await pending
    deadline = time.monotonic() + 3
    reports = bare_client.progress_reports["cmd"]
    while not any(isinstance(r, types.WorkDoneProgressEnd) for r in reports):
        assert time.monotonic() < deadline, "the weave went on after its command was cancelled"
        await asyncio.sleep(0.02)
    end = reports[-1]
    assert isinstance(end, types.WorkDoneProgressEnd)
    assert end.message == "cancelled"  # not "1001 suggestions in 2.87 s", woven to the end


async def test_a_weave_cancelled_while_its_progress_token_is_created_stops() -> None:
    """Cancelled while ``window/workDoneProgress/create`` waits for the client, the weave
    went on: pygls turns the cancellation into an exception, which the handler for a client
    refusing the token swallowed.  And the client's answer then landed on a cancelled future
    (pygls #621: InvalidStateError, logged as an error)."""
    from types import SimpleNamespace

    from lloom_lsp.server.progress import Progress

    answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def create_async(token: str) -> None:
        try:
            await answer  # what pygls awaits: the future the client's answer resolves
        except asyncio.CancelledError:
            raise RuntimeError("CANCELLED") from None  # pygls's JsonRpcException

    capabilities = SimpleNamespace(window=SimpleNamespace(work_done_progress=True))
    server = SimpleNamespace(
        client_capabilities=capabilities,
        work_done_progress=SimpleNamespace(create_async=create_async, begin=lambda *a: None),
    )
    went_on = False

    async def weave() -> None:
        nonlocal went_on
        async with Progress(server, None, "Weaving"):  # type: ignore[arg-type]
            went_on = True

    task = asyncio.create_task(weave())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and not went_on
    answer.set_result(None)  # the client answers late: the future is still live


async def test_a_weave_command_stopped_by_lloom_cancel_is_answered(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    """:LLooMCancel and the status-bar menu stop a weave with lloom.cancel; the lloom.weave
    request that was waiting for it was never answered (pygls' generator for
    executeCommand raised the command's CancelledError out of a callback)."""
    await start(bare_client, lloom_options(llama_server_url, **SLOW))
    open_doc(bare_client, TEXT)
    pending = asyncio.ensure_future(
        bare_client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="lloom.weave", arguments=[URI, {"line": 0, "character": len(TEXT)}]
            )
        )
    )
    await weaving_started(bare_client)
    stopped = await bare_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="lloom.cancel", arguments=[URI])
    )
    assert stopped == {"cancelled": 1}
    # an answer, not -32800: Neovim drops a -32800 it did not ask for
    answer = await asyncio.wait_for(pending, 5)
    assert answer["beams"] == [] and answer["cancelled"] is True


async def test_an_answer_to_a_cancelled_asker_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client answered workspace/configuration after the request that asked for it
    was cancelled: pygls set the answer on the cancelled future and logged "Unable to
    handle message" as an error (seen in the typing storm)."""
    from lloom_lsp.server.app import LloomServer

    server = LloomServer()
    protocol = server.protocol
    asked = asyncio.get_running_loop().create_future()
    protocol._request_futures["config-1"] = asked
    asked.cancel()
    caplog.set_level(logging.DEBUG)
    protocol.handle_message({"jsonrpc": "2.0", "id": "config-1", "result": [{}]})
    assert "config-1" not in protocol._request_futures
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_settings_change_clears_a_stale_failure_from_the_status(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    """After a bad URL was fixed, the status line kept showing the old failure until the
    next weave."""
    statuses: list[tuple[str, str]] = []
    changed = asyncio.Event()

    @bare_client.feature("lloom/status")
    def on_status(params: Any) -> None:
        statuses.append((getattr(params, "state", ""), getattr(params, "message", "")))
        changed.set()

    await start(bare_client, lloom_options(f"http://127.0.0.1:{_closed_port()}"))
    open_doc(bare_client, TEXT)
    result = await bare_client.text_document_completion_async(completion(end_of(TEXT)))
    assert result is not None and list(result.items) == []
    while not statuses or statuses[-1][0] != "failed":
        changed.clear()
        await asyncio.wait_for(changed.wait(), 5)
    bare_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"lloom": {"backend": {"url": llama_server_url}}}
        )
    )
    while statuses[-1][0] == "failed":
        changed.clear()
        await asyncio.wait_for(changed.wait(), 5)
    assert statuses[-1] == ("idle", "settings changed")


async def test_a_long_cold_story_says_it_is_evaluating(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    """A slow weave showed only "weaving…": nothing said it was evaluating a long story.
    llama-server says how many prompt tokens a request must evaluate before its first
    token (``prompt_progress``), and the status line says so."""
    statuses: list[str] = []

    @bare_client.feature("lloom/status")
    def on_status(params: Any) -> None:
        statuses.append(getattr(params, "message", ""))

    story = "Once upon a time, the dog ran to the cat. " * 61  # a story no test wove
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{llama_server_url}/tokenize", json={"content": story})
    story_tokens = len(answer.json()["tokens"])
    assert story_tokens > SAYS_EVALUATING

    await start(bare_client, lloom_options(llama_server_url))
    open_doc(bare_client, story)
    result = await bare_client.text_document_completion_async(completion(end_of(story)))
    assert result is not None and result.items
    said = [m for m in statuses if m.startswith("evaluating")]
    assert said, statuses
    tokens = int(
        re.fullmatch(r"evaluating the story \(([\d,]+) tokens\)", said[0])[1].replace(",", "")
    )
    # The whole story but what the slot already held ("Once upon a time," from other tests),
    # and the start-of-text token.
    assert story_tokens - 16 <= tokens <= story_tokens + 1

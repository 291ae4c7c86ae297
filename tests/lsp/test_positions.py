"""Positions in the negotiated encoding, with emoji and CJK before the cursor;
and requests whose params cannot be read."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Future
from typing import Any

import pytest
from conftest import URI, lloom_options, open_doc, start
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient

LINE = "猫 and 🙂 the cat sat. Once upon a time,"
AFTER = " the end"


async def weave_prompt(client: LanguageClient, character: int) -> Any:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="lloom.weave", arguments=[URI, {"line": 1, "character": character}]
        )
    )
    return result["tree"]["prompt"]


async def test_utf16_positions(bare_client: LanguageClient, llama_server_url: str) -> None:
    result = await start(bare_client, lloom_options(llama_server_url))
    assert result.capabilities.position_encoding in (None, types.PositionEncodingKind.Utf16)
    open_doc(bare_client, "title\n" + LINE + AFTER)
    units = len(LINE.encode("utf-16-le")) // 2  # the emoji is two UTF-16 units
    assert units == len(LINE) + 1
    assert await weave_prompt(bare_client, units) == "title\n" + LINE


async def test_utf8_positions(bare_client: LanguageClient, llama_server_url: str) -> None:
    result = await start(bare_client, lloom_options(llama_server_url), utf8=True)
    assert result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
    open_doc(bare_client, "title\n" + LINE + AFTER)
    assert await weave_prompt(bare_client, len(LINE.encode())) == "title\n" + LINE


async def test_unreadable_params_get_an_error_response(client: LanguageClient) -> None:
    open_doc(client, "x")
    # Written by hand: the client library would refuse to serialise these params.
    answer: Future[Any] = Future()
    client.protocol._request_futures["bad-1"] = answer
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": "bad-1",
            "method": types.TEXT_DOCUMENT_COMPLETION,
            "params": {"textDocument": {"uri": URI}, "position": {"line": "zero"}},
        }
    ).encode()
    assert client.protocol.writer is not None
    client.protocol.writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    with pytest.raises(JsonRpcInvalidParams):
        await asyncio.wait_for(asyncio.wrap_future(answer), 10)

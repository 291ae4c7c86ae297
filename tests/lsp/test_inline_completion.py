"""textDocument/inlineCompletion: Invoked weaves, Automatic only serves the cache
unless inline.automatic is on (then it debounces and cancels the previous one)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import URI, end_of, lloom_options, open_doc, start
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

TEXT = "Once upon a time,"


def inline_params(kind: types.InlineCompletionTriggerKind) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=end_of(TEXT),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


async def test_server_advertises_inline_completion(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    result = await start(bare_client, lloom_options(llama_server_url))
    assert result.capabilities.inline_completion_provider is not None


async def test_automatic_serves_only_cached_beams(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, lloom_options(llama_server_url))
    open_doc(bare_client, TEXT)
    auto = types.InlineCompletionTriggerKind.Automatic
    before = await bare_client.text_document_inline_completion_async(inline_params(auto))
    assert isinstance(before, types.InlineCompletionList)
    assert list(before.items) == []

    invoked = await bare_client.text_document_inline_completion_async(
        inline_params(types.InlineCompletionTriggerKind.Invoked)
    )
    assert isinstance(invoked, types.InlineCompletionList)
    assert len(invoked.items) > 1  # every beam, for cycling
    for item in invoked.items:
        assert item.range == types.Range(end_of(TEXT), end_of(TEXT))

    after = await bare_client.text_document_inline_completion_async(inline_params(auto))
    assert isinstance(after, types.InlineCompletionList)
    assert [i.insert_text for i in after.items] == [i.insert_text for i in invoked.items]


async def test_automatic_weaves_when_enabled_and_cancels_the_previous(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    options = lloom_options(llama_server_url)
    options["lloom"]["inline"] = {"automatic": True, "debounceMs": 200}
    await start(bare_client, options)
    open_doc(bare_client, TEXT)
    auto = types.InlineCompletionTriggerKind.Automatic
    first = asyncio.ensure_future(
        bare_client.text_document_inline_completion_async(inline_params(auto))
    )
    await asyncio.sleep(0.05)  # the first request is inside its debounce window
    second = await bare_client.text_document_inline_completion_async(inline_params(auto))
    assert isinstance(second, types.InlineCompletionList)
    assert len(second.items) > 1
    with pytest.raises(JsonRpcRequestCancelled):
        await first

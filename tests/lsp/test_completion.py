"""textDocument/completion against the real llama-server."""

from __future__ import annotations

import itertools

from conftest import EXACT_WEAVE, URI, end_of, open_doc
from lsprotocol import types
from pytest_lsp import LanguageClient

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import weave
from lloom_lsp.server.convert import beam_detail
from lloom_lsp.server.labels import beam_labels


async def test_every_beam_is_an_item_in_rank_order(
    client: LanguageClient, llama_server_url: str
) -> None:
    text = "Once upon a time, "
    open_doc(client, text)
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=end_of(text)
        )
    )
    assert isinstance(result, types.CompletionList)
    assert result.is_incomplete is False

    backend = LlamaCppBackend(llama_server_url)
    try:
        # folded, as the server weaves
        expected = await weave(backend, text, WeaveSettings(**EXACT_WEAVE), fold=True)
    finally:
        await backend.aclose()
    assert len(expected.beams) > 3
    items = sorted(result.items, key=lambda i: i.sort_text or "")
    assert [i.text_edit.new_text for i in items] == [b.insert_text for b in expected.beams]
    labels = beam_labels([b.insert_text for b in expected.beams])  # see test_labels.py
    for item, beam, label in zip(items, expected.beams, labels):
        assert isinstance(item.text_edit, types.TextEdit)
        assert item.text_edit.range == types.Range(end_of(text), end_of(text))
        assert not item.text_edit.new_text.startswith(" ")  # the held space is not doubled
        assert item.label == label
        assert item.filter_text == item.text_edit.new_text
        assert item.detail == beam_detail(beam)
        assert item.detail.startswith(f"score {beam.score:.3f} · p={beam.joint:.2e}")
        assert item.detail.endswith(beam.note)  # why it sits below a beam scored higher
        assert isinstance(item.documentation, types.MarkupContent)
        assert "tokens:\n\n- `" in item.documentation.value
        assert "|---" not in item.documentation.value  # no table: Neovim shows it raw
        assert item.documentation.value.count("\n- `") == len(beam.tokens)
    # in rank order: within a tier by score, and each tier below says why
    tiers = [beam.tier for beam in expected.beams]
    assert tiers == sorted(tiers)
    for above, below in itertools.pairwise(expected.beams):
        assert below.score <= above.score or (below.tier > above.tier and below.note)


async def test_items_cover_the_word_before_the_cursor(client: LanguageClient) -> None:
    text = "Once upon a ti"
    open_doc(client, text)
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=end_of(text)
        )
    )
    assert isinstance(result, types.CompletionList)
    assert result.items
    for item in result.items:
        edit = item.text_edit
        assert isinstance(edit, types.TextEdit)
        # the edit re-inserts "ti" so the client's word filter keeps the item
        assert edit.range.start == types.Position(0, len("Once upon a "))
        assert edit.new_text.startswith("ti")
        assert item.filter_text == edit.new_text


async def test_unknown_document_gets_an_empty_answer(client: LanguageClient) -> None:
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri="untitled:never%20opened"),
            position=types.Position(0, 0),
        )
    )
    assert isinstance(result, types.CompletionList)
    assert list(result.items) == []


async def test_requests_on_every_keystroke_get_one_weave_when_typing_pauses(
    client: LanguageClient,
) -> None:
    """nvim-cmp, blink.cmp and vim.lsp.completion's autotrigger ask on every keystroke.
    Each weaved before: a weave per keystroke, each cancelling the last."""
    import asyncio

    from pygls.exceptions import JsonRpcRequestCancelled

    text = "Once upon a"
    open_doc(client, text)
    asked = []
    for version, char in enumerate(" time", start=2):
        text += char
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        asked.append(
            client.text_document_completion_async(
                types.CompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=URI), position=end_of(text)
                )
            )
        )
        await asyncio.sleep(0.02)  # well inside completion.debounceMs (150 ms)
    answers = await asyncio.gather(*asked, return_exceptions=True)
    *early, last = answers
    assert all(isinstance(a, JsonRpcRequestCancelled) for a in early), early
    assert isinstance(last, types.CompletionList) and last.items
    # each weave asks for a progress token first: one weave, for the text typing paused at
    assert len(client.progress_reports) == 1

"""What follows the cursor (issue 20, part 4), end to end: a completion in the middle of a
paragraph weaves with the text after the cursor (to the paragraph's end), as the engine
does given it, and ``lloom.weave.afterCursor`` off weaves without it; against the real
llama-server on the bigram test model."""

from __future__ import annotations

from conftest import EXACT_WEAVE, URI, end_of, lloom_options, open_doc, start
from lsprotocol import types
from pytest_lsp import LanguageClient

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import weave
from lloom_lsp.engine.beam import NOTE_REPEATS_NEXT

BEFORE = "Once upon a time, "
#: What the bigram model's likeliest beam says, already written after the cursor.
AFTER = "there was a little girl walked to the old man said, and then"
PARAGRAPHS = BEFORE + AFTER + "\n\nAnother paragraph the weave does not read."


async def _items(client: LanguageClient) -> list[str]:
    open_doc(client, PARAGRAPHS)
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=end_of(BEFORE)
        )
    )
    assert isinstance(result, types.CompletionList)
    items = sorted(result.items, key=lambda i: i.sort_text or "")
    return [i.text_edit.new_text for i in items if isinstance(i.text_edit, types.TextEdit)]


async def _expected(url: str, after: str) -> list[str]:
    backend = LlamaCppBackend(url)
    try:
        result = await weave(backend, BEFORE, WeaveSettings(**EXACT_WEAVE), fold=True, after=after)
    finally:
        await backend.aclose()
    if after:
        assert any(b.note == NOTE_REPEATS_NEXT for b in result.beams)  # the case tests that
    return [b.insert_text for b in result.beams]


async def test_a_weave_mid_paragraph_reads_the_text_after_the_cursor(
    client: LanguageClient, llama_server_url: str
) -> None:
    items = await _items(client)
    assert items == await _expected(llama_server_url, AFTER)
    assert items != await _expected(llama_server_url, "")
    assert items[0] != "there was a little girl walked to the old man said,"  # demoted


async def test_after_cursor_off_weaves_the_text_before_it_only(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, lloom_options(llama_server_url, **EXACT_WEAVE, afterCursor=False))
    assert await _items(bare_client) == await _expected(llama_server_url, "")

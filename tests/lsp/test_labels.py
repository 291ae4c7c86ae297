"""Beam labels end to end: completion items, code actions, lloom.weave and inline completion
of one weave all come from the same beams; the first three show where the beams differ."""

from __future__ import annotations

import itertools
from typing import Any

from conftest import EXACT_WEAVE, URI, end_of, open_doc
from lsprotocol import types
from pytest_lsp import LanguageClient

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import weave
from lloom_lsp.server.labels import ELLIPSIS, beam_labels

#: The bigram model's beams here share long starts (" the cat was a little girl walked …").
TEXT = "She opened the door and "  # a space before the cursor: no word fragment to re-insert


async def expected_texts(url: str) -> list[str]:
    backend = LlamaCppBackend(url)
    try:
        # folded, as the server weaves
        result = await weave(backend, TEXT, WeaveSettings(**EXACT_WEAVE), fold=True)
    finally:
        await backend.aclose()
    return [beam.insert_text for beam in result.beams]


async def test_completion_labels_tell_the_beams_apart(
    client: LanguageClient, llama_server_url: str
) -> None:
    open_doc(client, TEXT)
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=end_of(TEXT)
        )
    )
    assert isinstance(result, types.CompletionList)
    items = sorted(result.items, key=lambda i: i.sort_text or "")
    texts = [item.filter_text for item in items]
    assert texts == await expected_texts(llama_server_url)
    assert len(set(texts)) == len(texts) > 3

    labels = [item.label for item in items]
    assert labels == beam_labels(texts)
    for (a, label_a), (b, label_b) in itertools.combinations(zip(texts, labels), 2):
        assert label_a != label_b, (a, b)
    # The weave's beams share long starts, so some labels elide them ...
    assert any(f" {ELLIPSIS} " in label for label in labels)
    # ... after showing how each begins.
    for text, label in zip(texts, labels):
        assert label.startswith(text.strip()[:3]), (text, label)
    # ... while what is inserted, filtered on and documented stays the whole text.
    for item in items:
        assert isinstance(item.text_edit, types.TextEdit)
        assert item.text_edit.new_text == item.filter_text
        assert isinstance(item.documentation, types.MarkupContent)
        assert f"```text\n{item.filter_text}\n```" in item.documentation.value
        assert "\n" not in item.label


async def test_code_actions_weave_command_and_inline_share_the_beams(
    client: LanguageClient,
) -> None:
    open_doc(client, TEXT, version=2)
    pos = end_of(TEXT)
    answer: dict[str, Any] = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="lloom.weave", arguments=[URI, {"line": pos.line, "character": pos.character}]
        )
    )
    beams = answer["beams"]
    texts = [beam["insertText"] for beam in beams]
    assert [beam["label"] for beam in beams] == beam_labels(texts)
    assert len({beam["label"] for beam in beams}) == len(set(texts))

    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            range=types.Range(pos, pos),
            context=types.CodeActionContext(
                diagnostics=[], trigger_kind=types.CodeActionTriggerKind.Invoked
            ),
        )
    )
    assert actions is not None
    titles = [action.title for action in actions if isinstance(action, types.CodeAction)]
    assert [title.rsplit(" (p=", 1)[0] for title in titles] == [
        f"Continue: {beam['label']}" for beam in beams
    ]

    inline = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=pos,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    assert isinstance(inline, types.InlineCompletionList)
    # Ghost text is the whole beam, never a label.
    assert [item.insert_text for item in inline.items] == texts

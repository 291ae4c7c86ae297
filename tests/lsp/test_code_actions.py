"""textDocument/codeAction with both trigger kinds."""

from __future__ import annotations

import re

from conftest import URI, end_of, open_doc
from lsprotocol import types
from pytest_lsp import LanguageClient

TEXT = "She opened the door and"


def params(
    kind: types.CodeActionTriggerKind, pos: types.Position | None = None
) -> types.CodeActionParams:
    pos = pos or end_of(TEXT)
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        range=types.Range(pos, pos),
        context=types.CodeActionContext(diagnostics=[], trigger_kind=kind),
    )


async def test_automatic_never_weaves_and_invoked_does(client: LanguageClient) -> None:
    open_doc(client, TEXT, version=7)
    auto = await client.text_document_code_action_async(
        params(types.CodeActionTriggerKind.Automatic)
    )
    assert list(auto or []) == []

    invoked = await client.text_document_code_action_async(
        params(types.CodeActionTriggerKind.Invoked)
    )
    assert invoked and len(invoked) > 1
    for action in invoked:
        assert isinstance(action, types.CodeAction)
        assert re.fullmatch(r"Continue: .+ \(p=[0-9.e+-]+(, [a-z -]+)?\)", action.title)
        assert action.kind == types.CodeActionKind.QuickFix
        assert action.edit is not None and action.edit.document_changes
        change = action.edit.document_changes[0]
        assert isinstance(change, types.TextDocumentEdit)
        assert change.text_document.version == 7
        assert change.edits[0].range == types.Range(end_of(TEXT), end_of(TEXT))
    assert invoked[0].is_preferred

    cached = await client.text_document_code_action_async(
        params(types.CodeActionTriggerKind.Automatic)
    )
    assert [a.title for a in cached or []] == [a.title for a in invoked]


async def test_other_kinds_requested_get_nothing(client: LanguageClient) -> None:
    open_doc(client, TEXT)
    request = params(types.CodeActionTriggerKind.Invoked)
    request.context.only = [types.CodeActionKind.SourceOrganizeImports]
    assert list(await client.text_document_code_action_async(request) or []) == []


async def test_a_cursor_inside_a_word_continues_after_the_word(client: LanguageClient) -> None:
    open_doc(client, TEXT, version=3)
    inside = types.Position(0, TEXT.index("door") + 2)  # "do|or"
    answer = await client.text_document_code_action_async(
        params(types.CodeActionTriggerKind.Invoked, inside)
    )
    actions = [a for a in answer or [] if isinstance(a, types.CodeAction)]
    assert actions
    after_door = types.Position(0, TEXT.index("door") + len("door"))
    for action in actions:
        assert action.edit is not None
        changes = action.edit.document_changes or []
        edits = [e for change in changes for e in change.edits] or [
            e for edits in (action.edit.changes or {}).values() for e in edits
        ]
        assert [e.range for e in edits] == [types.Range(after_door, after_door)], action.title

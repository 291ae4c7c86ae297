"""The woven text remembers its tokens: hover over an accepted beam, its spans through
edits, and "Branch here" at a woven token."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import EXACT_WEAVE, URI, end_of, lloom_options, open_doc, start
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

TEXT = "Once upon a time,"


async def command(client: LanguageClient, name: str, *args: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args))
    )


def _editor(client: LanguageClient) -> list[int]:
    """Apply every workspace/applyEdit the way an editor does: send the change, then
    answer.  Returns the document's version, kept up to date."""
    version = [1]

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        change = params.edit.document_changes[0]  # type: ignore[index]
        assert isinstance(change, types.TextDocumentEdit)
        version[0] += 1
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version[0]),
                content_changes=[
                    types.TextDocumentContentChangePartial(range=e.range, text=e.new_text)
                    for e in change.edits
                    if isinstance(e, types.TextEdit)
                ],
            )
        )
        return types.ApplyWorkspaceEditResult(applied=True)

    return version


def change(
    client: LanguageClient,
    version: list[int],
    start: types.Position,
    end: types.Position,
    text: str,
) -> None:
    version[0] += 1
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version[0]),
            content_changes=[
                types.TextDocumentContentChangePartial(range=types.Range(start, end), text=text)
            ],
        )
    )


async def hover(client: LanguageClient, position: types.Position) -> types.Hover | None:
    return await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=URI), position=position)
    )


async def _accept_best(client: LanguageClient) -> tuple[dict[str, Any], list[int]]:
    """Weave at the end of TEXT and accept the best beam with lloom.accept.  Returns the
    beam and the document's version (kept up to date by the test editor)."""
    version = _editor(client)
    open_doc(client, TEXT, version=1)
    pos = end_of(TEXT)
    at = {"line": pos.line, "character": pos.character}
    woven = await command(client, "lloom.weave", URI, at)
    beam = woven["beams"][0]
    applied = await command(client, "lloom.accept", URI, 1, at, beam["insertText"])
    assert applied == {"applied": True}
    return beam, version


async def test_hover_over_an_accepted_beam_shows_token_and_alternatives(
    client: LanguageClient,
) -> None:
    beam, _ = await _accept_best(client)
    first = beam["tokens"][0]
    # inside the first token (the accept's change may still be on its way: ask again)
    inside = types.Position(0, len(TEXT) + 1)
    answer = await _hover_when_there(client, inside)
    assert isinstance(answer.contents, types.MarkupContent)
    value = answer.contents.value
    assert answer.contents.kind == types.MarkupKind.Markdown
    assert f"p = **{first['prob']:.3f}**" in value
    assert first["text"].strip() in value
    assert "alternatives:\n\n- `" in value and "◀" in value  # the chosen one, marked
    assert "|---" not in value  # no Markdown table: Neovim 0.11 shows those raw
    assert answer.range is not None and answer.range.start == end_of(TEXT)
    # the story before the beam is not woven
    assert await hover(client, types.Position(0, 2)) is None


async def test_an_edit_before_moves_the_spans_and_one_inside_drops_them(
    client: LanguageClient,
) -> None:
    beam, version = await _accept_best(client)
    inside = types.Position(0, len(TEXT) + 1)
    before = await _hover_when_there(client, inside)
    assert before.range is not None

    # typed before the beam, and a new line: the token moves one line down
    change(client, version, types.Position(0, 0), types.Position(0, 0), "Hey.\n")
    moved = await hover(client, types.Position(1, inside.character))
    assert moved is not None and isinstance(moved.contents, types.MarkupContent)
    assert moved.range == types.Range(
        types.Position(1, before.range.start.character),
        types.Position(1, before.range.end.character),
    )
    assert isinstance(before.contents, types.MarkupContent)
    assert moved.contents.value == before.contents.value
    assert await hover(client, inside) is None  # nothing woven where it was

    # an edit inside the first token drops it, and only it
    start = moved.range.start
    first = beam["tokens"][0]["text"]
    second = types.Position(1, start.character + len(first))
    assert len(beam["tokens"]) > 1 and len(first) > 1
    kept = await hover(client, second)
    assert kept is not None and kept.range is not None and kept.range.start == second
    change(client, version, start, types.Position(1, start.character + 1), "x")
    assert await hover(client, types.Position(1, inside.character)) is None
    assert await hover(client, second) == kept


async def test_branch_here_offers_the_alternatives_woven_onward(client: LanguageClient) -> None:
    """A client that resolves edits (VS Code) gets the actions at once, unwoven; only the
    one it resolves is woven."""
    beam, version = await _accept_best(client)
    inside = types.Position(0, len(TEXT) + 1)
    await _hover_when_there(client, inside)
    auto = await _code_actions(client, inside, types.CodeActionTriggerKind.Automatic)
    assert not [a for a in auto if a.title.startswith("Branch here")]  # never weaves

    invoked = await _code_actions(client, inside, types.CodeActionTriggerKind.Invoked)
    offers = [a for a in invoked if a.title.startswith("Branch here: ")]
    assert 1 <= len(offers) <= 3
    assert invoked[: len(offers)] == offers  # Branch here comes before every Continue
    assert all(a.edit is None and a.data for a in offers)  # not woven yet
    branches = [await client.code_action_resolve_async(a) for a in offers]
    _check_branches(beam, version, branches)
    await _apply_first_branch(client, version, branches)


async def test_branch_here_is_woven_up_front_for_a_client_that_cannot_resolve(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    """Neovim 0.7 and others without codeAction/resolve: every edit comes with the list."""
    await start(bare_client, lloom_options(llama_server_url, **EXACT_WEAVE), resolve=False)
    beam, version = await _accept_best(bare_client)
    inside = types.Position(0, len(TEXT) + 1)
    await _hover_when_there(bare_client, inside)
    actions = await _code_actions(bare_client, inside, types.CodeActionTriggerKind.Invoked)
    branches = [a for a in actions if a.title.startswith("Branch here: ")]
    assert 1 <= len(branches) <= 3
    _check_branches(beam, version, branches)
    await _apply_first_branch(bare_client, version, branches)


async def test_a_stale_branch_is_refused_when_resolved(client: LanguageClient) -> None:
    _, version = await _accept_best(client)
    inside = types.Position(0, len(TEXT) + 1)
    await _hover_when_there(client, inside)
    offers = await _code_actions(client, inside, types.CodeActionTriggerKind.Invoked)
    offer = next(a for a in offers if a.title.startswith("Branch here: "))
    change(client, version, types.Position(0, 0), types.Position(0, 0), "So. ")
    with pytest.raises(JsonRpcException, match="document changed"):
        await client.code_action_resolve_async(offer)


def _check_branches(
    beam: dict[str, Any], version: list[int], branches: list[types.CodeAction]
) -> None:
    end = types.Position(0, len(TEXT) + len(beam["insertText"]))
    chosen = beam["tokens"][0]["text"]
    for action in branches:
        assert action.kind == types.CodeActionKind.RefactorRewrite
        assert action.edit is not None and action.edit.document_changes
        edit_doc = action.edit.document_changes[0]
        assert isinstance(edit_doc, types.TextDocumentEdit)
        assert edit_doc.text_document.version == version[0]
        (edit,) = edit_doc.edits
        assert isinstance(edit, types.TextEdit)
        # from the token to the end of the woven text
        assert edit.range == types.Range(end_of(TEXT), end)
        label = action.title.removeprefix("Branch here: ").rsplit(" (p=", 1)[0]
        assert edit.new_text.lstrip().startswith(label)
        assert not edit.new_text.startswith(chosen)
        assert len(edit.new_text) > len(label)  # woven onward


async def _apply_first_branch(
    client: LanguageClient, version: list[int], branches: list[types.CodeAction]
) -> None:
    """The editor applies the first: the branch is woven text, its token the alternative."""
    inside = types.Position(0, len(TEXT) + 1)
    edit = branches[0].edit.document_changes[0].edits[0]  # type: ignore[union-attr,index]
    assert isinstance(edit, types.TextEdit)
    change(client, version, edit.range.start, edit.range.end, edit.new_text)
    branched = await hover(client, inside)
    assert branched is not None and isinstance(branched.contents, types.MarkupContent)
    label = branches[0].title.removeprefix("Branch here: ").rsplit(" (p=", 1)[0]
    assert f"`{edit.new_text[: len(edit.new_text) - len(edit.new_text.lstrip())]}{label}` ◀" in (
        branched.contents.value
    )
    onward = types.Position(0, len(TEXT) + len(edit.new_text) - 1)
    assert await hover(client, onward) is not None  # and the beam woven after it


async def _code_actions(
    client: LanguageClient, position: types.Position, kind: types.CodeActionTriggerKind
) -> list[types.CodeAction]:
    answer = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            range=types.Range(position, position),
            context=types.CodeActionContext(diagnostics=[], trigger_kind=kind),
        )
    )
    return [a for a in answer or [] if isinstance(a, types.CodeAction)]


async def _hover_when_there(client: LanguageClient, position: types.Position) -> types.Hover:
    """The hover at ``position``, which must be woven (the test editor sends the accept's
    change before it answers workspace/applyEdit, so the spans are in place)."""
    answer = await hover(client, position)
    assert answer is not None, "no hover over the accepted beam"
    return answer


async def test_a_completion_item_the_editor_inserts_is_woven_text(client: LanguageClient) -> None:
    open_doc(client, TEXT, version=1)
    items = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=end_of(TEXT)
        )
    )
    assert items is not None and not isinstance(items, list) and items.items
    edit = items.items[0].text_edit
    assert isinstance(edit, types.TextEdit) and edit.range.start != edit.range.end
    # the editor replaces the word before the cursor with the item's text
    change(client, [1], edit.range.start, edit.range.end, edit.new_text)
    answer = await hover(client, types.Position(0, len(TEXT) + 1))
    assert answer is not None and answer.range is not None
    assert answer.range.start == end_of(TEXT)  # the beam's first token, not the fragment
    assert await hover(client, types.Position(0, len(TEXT) - 1)) is None


async def test_an_edit_the_editor_refuses_leaves_nothing_woven(client: LanguageClient) -> None:
    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        return types.ApplyWorkspaceEditResult(applied=False, failure_reason="read-only")

    open_doc(client, TEXT, version=1)
    pos = end_of(TEXT)
    at = {"line": pos.line, "character": pos.character}
    beam = (await command(client, "lloom.weave", URI, at))["beams"][0]
    refused = await command(client, "lloom.accept", URI, 1, at, beam["insertText"])
    assert refused["applied"] is False
    # the writer types the same text: it was not woven by lloom.accept, and typing one
    # character at a time never is
    version = [1]
    for i, ch in enumerate(beam["insertText"][:3]):
        change(
            client, version, types.Position(0, len(TEXT) + i), types.Position(0, len(TEXT) + i), ch
        )
    assert await hover(client, types.Position(0, len(TEXT) + 1)) is None


async def test_spans_follow_a_whole_document_change_in_utf16_units(
    client: LanguageClient,
) -> None:
    """A client that sends whole documents: the change is the range its text differs in.
    An astral character before the span is two UTF-16 code units."""
    beam, version = await _accept_best(client)
    inside = types.Position(0, len(TEXT) + 1)
    before = await _hover_when_there(client, inside)
    assert before.range is not None
    doc = "😀 " + TEXT + beam["insertText"]
    version[0] += 1
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version[0]),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=doc)],
        )
    )
    moved = await hover(client, types.Position(0, inside.character + 3))
    assert moved is not None and moved.range is not None
    assert moved.range.start.character == before.range.start.character + 3
    assert moved.range.end.character == before.range.end.character + 3


async def test_the_change_may_come_after_the_editor_answers(client: LanguageClient) -> None:
    """Neovim answers workspace/applyEdit before its (debounced) didChange arrives."""
    sent: list[types.ApplyWorkspaceEditParams] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        sent.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    open_doc(client, TEXT, version=1)
    pos = end_of(TEXT)
    at = {"line": pos.line, "character": pos.character}
    beam = (await command(client, "lloom.weave", URI, at))["beams"][0]
    assert (await command(client, "lloom.accept", URI, 1, at, beam["insertText"]))["applied"]
    inside = types.Position(0, len(TEXT) + 1)
    assert await hover(client, inside) is None  # not in the document yet
    change(client, [1], pos, pos, beam["insertText"])
    answer = await hover(client, inside)
    assert answer is not None and answer.range is not None and answer.range.start == pos


async def test_a_beam_and_the_beam_woven_after_it_are_both_woven(
    client: LanguageClient,
) -> None:
    """lloom.accept of "weave from this beam"'s answer: two beams in a row."""
    version = _editor(client)
    open_doc(client, TEXT, version=1)
    pos = end_of(TEXT)
    at = {"line": pos.line, "character": pos.character}
    first = (await command(client, "lloom.weave", URI, at))["beams"][0]
    onward = await command(client, "lloom.weave", URI, at, {"after": first["insertText"]})
    text = onward["beams"][0]["insertText"]
    assert (await command(client, "lloom.accept", URI, 1, at, text))["applied"]
    assert version[0] == 2
    last = await hover(client, types.Position(0, len(TEXT) + len(text) - 1))
    assert last is not None and last.range is not None
    assert last.range.end == types.Position(0, len(TEXT) + len(text))


async def test_an_inline_item_the_editor_inserts_is_woven_text(client: LanguageClient) -> None:
    open_doc(client, TEXT, version=1)
    pos = end_of(TEXT)
    answer = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=pos,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    assert isinstance(answer, types.InlineCompletionList) and answer.items
    item = answer.items[-1]  # not only the best beam
    assert isinstance(item.insert_text, str)
    change(client, [1], pos, pos, item.insert_text)
    last = await hover(client, types.Position(0, len(TEXT) + len(item.insert_text) - 1))
    assert last is not None and last.range is not None
    assert last.range.end == types.Position(0, len(TEXT) + len(item.insert_text))


async def test_a_beam_of_an_n_token_weave_is_woven_text(client: LanguageClient) -> None:
    """ "Step N more tokens" and "weave deeper" weave under their own maxDepth: the beam
    accepted from them still remembers its tokens."""
    version = _editor(client)
    open_doc(client, TEXT, version=1)
    pos = end_of(TEXT)
    at = {"line": pos.line, "character": pos.character}
    woven = await command(client, "lloom.weave", URI, at, {"depth": 2})
    beam = woven["beams"][0]
    assert len(beam["tokens"]) <= 2
    assert (await command(client, "lloom.accept", URI, 1, at, beam["insertText"]))["applied"]
    assert version[0] == 2
    last = await hover(client, types.Position(0, len(TEXT) + len(beam["insertText"]) - 1))
    assert last is not None and last.range is not None
    assert last.range.end == types.Position(0, len(TEXT) + len(beam["insertText"]))

"""workspace/executeCommand: lloom.weave, lloom.accept (refused on a stale version)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from conftest import URI, end_of, open_doc
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient

TEXT = "Once upon a time,"


async def command(client: LanguageClient, name: str, *args: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args))
    )


async def test_weave_returns_beams_and_tree(client: LanguageClient) -> None:
    open_doc(client, TEXT, version=3)
    pos = end_of(TEXT)
    result = await command(
        client, "lloom.weave", URI, {"line": pos.line, "character": pos.character}
    )
    assert result["version"] == 3
    beams = result["beams"]
    assert len(beams) > 3
    # by score within each tier, and a beam below one scored higher says why
    notes = ["", "stops mid-phrase", "repeats the story", "cut short"]
    assert [notes.index(b["note"]) for b in beams] == sorted(notes.index(b["note"]) for b in beams)
    for above, below in itertools.pairwise(beams):
        assert below["score"] <= above["score"] or below["note"] != above["note"]
    assert all(isinstance(b["variants"], list) and b["tokenDetails"] for b in beams)
    tree = result["tree"]
    assert tree["prompt"] == TEXT

    # every beam is a path in the tree
    def paths(node: dict[str, Any], prefix: str) -> set[str]:
        here = prefix + node["text"]
        out = {here} if node["finish"] else set()
        for child in node["children"]:
            out |= paths(child, here)
        return out

    assert {b["text"] for b in beams} <= {p for p in paths(tree["root"], "")} | {
        b["text"] for b in beams if b["finish"] == "stop"
    }
    assert result["speedLine"].startswith(f"{len(beams)} suggestions in ")


async def test_weave_reports_progress_on_the_commands_token(client: LanguageClient) -> None:
    open_doc(client, TEXT)
    client.progress_reports["cmd-token"] = []  # the client made this token itself
    pos = end_of(TEXT)
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="lloom.weave",
            arguments=[URI, {"line": pos.line, "character": pos.character}],
            work_done_token="cmd-token",
        )
    )
    reports = client.progress_reports["cmd-token"]
    assert list(client.progress_reports) == ["cmd-token"]
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message == result["speedLine"]


async def test_accept_applies_on_current_version_and_refuses_stale(
    client: LanguageClient,
) -> None:
    edits: list[types.ApplyWorkspaceEditParams] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        edits.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    open_doc(client, TEXT, version=1)
    pos = {"line": 0, "character": len(TEXT)}
    applied = await command(client, "lloom.accept", URI, 1, pos, " there was")
    assert applied == {"applied": True}
    assert len(edits) == 1
    change = edits[0].edit.document_changes[0]  # type: ignore[index]
    assert change.text_document.version == 1
    assert change.edits[0].new_text == " there was"

    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=TEXT + " x")],
        )
    )
    stale = await command(client, "lloom.accept", URI, 1, pos, " there was")
    assert stale["applied"] is False
    assert "version 1, now 2" in stale["reason"]
    assert len(edits) == 1  # nothing more was sent to the editor


async def test_bad_arguments_get_invalid_params(client: LanguageClient) -> None:
    open_doc(client, TEXT)
    with pytest.raises(JsonRpcInvalidParams):
        await command(client, "lloom.weave", URI)
    with pytest.raises(JsonRpcInvalidParams):
        await command(client, "lloom.accept", URI, "not a version", {"line": 0}, "x")


def _statuses(client: LanguageClient) -> list[dict[str, Any]]:
    """Every ``lloom/status`` notification the server sent, in order (recorded once the
    handler is installed)."""
    seen: list[dict[str, Any]] = getattr(client, "_lloom_statuses", None) or []
    if not hasattr(client, "_lloom_statuses"):
        client._lloom_statuses = seen  # type: ignore[attr-defined]

        @client.feature("lloom/status")
        def on_status(params: Any) -> None:
            seen.append({k: getattr(params, k) for k in ("uri", "state", "message")})

    return seen


def _updates(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The statuses that tell how a running weave gets on: ``weaving`` with a message."""
    return [s for s in statuses if s["state"] == "weaving" and s["message"]]


def _starts_and_ends(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    updates = _updates(statuses)
    return [s for s in statuses if not any(s is u for u in updates)]


async def _settled(statuses: list[dict[str, Any]], count: int) -> None:
    import asyncio

    for _ in range(200):
        if len(_starts_and_ends(statuses)) >= count:
            return
        await asyncio.sleep(0.01)


async def test_weave_again_fresh_weaves_anew_and_the_status_says_so(
    client: LanguageClient,
) -> None:
    """ "Weave Again" answered from the cache: the same beams, no weave.  ``fresh`` weaves."""
    statuses = _statuses(client)
    open_doc(client, TEXT)
    pos = {"line": 0, "character": len(TEXT)}
    first = await command(client, "lloom.weave", URI, pos)
    await _settled(statuses, 2)
    assert [s["state"] for s in _starts_and_ends(statuses)] == ["weaving", "done"]
    assert statuses[-1] == {"uri": URI, "state": "done", "message": first["speedLine"]}
    # while it wove, how far it got: "N of M beams", counting up
    counts = [int(s["message"].split(" of ")[0]) for s in _updates(statuses)]
    assert counts and counts == sorted(counts)
    assert all(re.fullmatch(r"\d+ of \d+ beams", s["message"]) for s in _updates(statuses))
    seen = len(statuses)
    cached = await command(client, "lloom.weave", URI, pos)
    assert cached["beams"] == first["beams"] and len(statuses) == seen  # no weave
    again = await command(client, "lloom.weave", URI, pos, {"fresh": True})
    await _settled(statuses, 4)
    starts_and_ends = [s["state"] for s in _starts_and_ends(statuses)]
    assert starts_and_ends == ["weaving", "done", "weaving", "done"]
    assert [b["insertText"] for b in again["beams"]] == [b["insertText"] for b in first["beams"]]


async def test_weave_deeper_and_from_a_beam(client: LanguageClient) -> None:
    open_doc(client, TEXT)
    pos = {"line": 0, "character": len(TEXT)}
    plain = await command(client, "lloom.weave", URI, pos)
    depth = max(len(b["tokens"]) for b in plain["beams"])
    deeper = await command(client, "lloom.weave", URI, pos, {"deeper": True})
    assert max(len(b["tokens"]) for b in deeper["beams"]) > depth
    assert max(len(b["tokens"]) for b in deeper["beams"]) <= 2 * depth

    chosen = plain["beams"][0]["insertText"]
    onward = await command(client, "lloom.weave", URI, pos, {"after": chosen})
    assert onward["after"] == chosen
    assert onward["tree"]["prompt"] == (TEXT + chosen).rstrip(" \t")
    assert onward["beams"] and all(b["insertText"].startswith(chosen) for b in onward["beams"])
    # the same beams as a weave of the story with the beam in it
    open_doc(client, TEXT + chosen, uri=URI + ".copy")
    copy = await command(
        client, "lloom.weave", URI + ".copy", {"line": 0, "character": len(TEXT + chosen)}
    )
    assert [b["insertText"] for b in onward["beams"]] == [
        chosen + b["insertText"] for b in copy["beams"]
    ]


async def test_bad_weave_options_are_named(client: LanguageClient) -> None:
    open_doc(client, TEXT)
    pos = {"line": 0, "character": len(TEXT)}
    unknown = await command(client, "lloom.weave", URI, pos, {"frseh": True})
    assert unknown["beams"] == [] and "'frseh'" in unknown["error"]
    wrong = await command(client, "lloom.weave", URI, pos, {"after": 3})
    assert "'after'" in wrong["error"] and "str" in wrong["error"]


async def test_every_weave_reports_its_status_whoever_asked(client: LanguageClient) -> None:
    """The status bar showed only weaves asked for with lloom.weave."""
    statuses = _statuses(client)
    open_doc(client, TEXT)
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=end_of(TEXT)
        )
    )
    assert result is not None and result.items
    await _settled(statuses, 2)
    assert [s["state"] for s in _starts_and_ends(statuses)] == ["weaving", "done"]
    assert statuses[-1]["message"].startswith(f"{len(result.items)} suggestions in ")


async def test_step_n_more_tokens_on_a_chosen_beam(client: LanguageClient) -> None:
    open_doc(client, TEXT)
    pos = {"line": 0, "character": len(TEXT)}
    chosen = (await command(client, "lloom.weave", URI, pos))["beams"][0]["insertText"]
    more = await command(client, "lloom.weave", URI, pos, {"after": chosen, "depth": 2})
    assert more["beams"] and all(len(b["tokens"]) <= 2 for b in more["beams"])
    assert all(b["insertText"].startswith(chosen) for b in more["beams"])
    bad = await command(client, "lloom.weave", URI, pos, {"depth": 0})
    assert "'depth' must be 1 to 512" in bad["error"]

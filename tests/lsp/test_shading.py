"""Probability shading: ``lloom/spans`` tells the editor where the woven tokens are and
how probable each was, while ``lloom.woven.shading`` is on; ``lloom.spans`` answers the
same on request."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import URI, end_of, open_doc
from lsprotocol import types
from pytest_lsp import LanguageClient
from test_woven_spans import TEXT, _accept_best, change, command, hover


def _spans_seen(client: LanguageClient) -> list[dict[str, Any]]:
    """Every ``lloom/spans`` notification from now on, as plain data, in order."""
    seen: list[dict[str, Any]] = []

    @client.feature("lloom/spans")
    def on_spans(params: Any) -> None:
        seen.append(
            {
                "uri": params.uri,
                "version": params.version,
                "spans": [
                    {
                        "start": (s.range.start.line, s.range.start.character),
                        "end": (s.range.end.line, s.range.end.character),
                        "prob": s.prob,
                        "text": s.text,
                    }
                    for s in params.spans
                ],
            }
        )

    return seen


async def _next(seen: list[dict[str, Any]], count: int) -> dict[str, Any]:
    """The ``count``-th notification (1-based), once it has come."""
    for _ in range(500):
        if len(seen) >= count:
            return seen[count - 1]
        await asyncio.sleep(0.01)
    raise AssertionError(f"lloom/spans #{count} never came (got {len(seen)}: {seen})")


async def test_an_accepted_beam_is_shaded_token_by_token(client: LanguageClient) -> None:
    seen = _spans_seen(client)
    beam, version = await _accept_best(client)
    shown = await _next(seen, 1)
    assert shown["uri"] == URI and shown["version"] == version[0] == 2
    tokens = beam["tokens"]
    assert [s["text"] for s in shown["spans"]] == [t["text"] for t in tokens]
    assert [s["prob"] for s in shown["spans"]] == [t["prob"] for t in tokens]
    assert shown["spans"][0]["start"] == (0, len(TEXT))
    assert shown["spans"][-1]["end"] == (0, len(TEXT) + len(beam["insertText"]))
    for before, after in zip(shown["spans"], shown["spans"][1:]):
        assert before["end"] == after["start"]  # one run of woven text, token by token

    # on request, the same
    asked = await command(client, "lloom.spans", URI)
    assert asked["version"] == 2
    assert [s["range"]["start"]["character"] for s in asked["spans"]] == [
        s["start"][1] for s in shown["spans"]
    ]

    # an edit inside the first token: it is no longer shaded, the rest move with the text
    first = shown["spans"][0]
    change(client, version, end_of(TEXT), types.Position(0, first["end"][1]), "")
    moved = await _next(seen, 2)
    assert moved["version"] == 3
    assert [s["text"] for s in moved["spans"]] == [t["text"] for t in tokens[1:]]
    assert moved["spans"][0]["start"] == (0, len(TEXT))


async def test_turning_shading_off_clears_it_and_on_brings_it_back(
    client: LanguageClient,
) -> None:
    seen = _spans_seen(client)
    _, version = await _accept_best(client)
    assert (await _next(seen, 1))["spans"]

    client.set_configuration({"lloom": {"woven": {"shading": False}}})
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    cleared = await _next(seen, 2)
    assert cleared == {"uri": URI, "version": 2, "spans": []}

    # while it is off, edits send nothing (a hover's answer shows the change was read)
    change(client, version, types.Position(0, 0), types.Position(0, 0), "So. ")
    assert await hover(client, types.Position(0, len(TEXT) + 5)) is not None
    assert len(seen) == 2
    # the command still answers, with the spans moved by the edit
    asked = await command(client, "lloom.spans", URI)
    assert asked["version"] == 3 and asked["spans"][0]["range"]["start"]["character"] == len(
        "So. " + TEXT
    )

    client.set_configuration({"lloom": {"woven": {"shading": True}}})
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    back = await _next(seen, 3)
    assert back["version"] == 3 and back["spans"][0]["start"] == (0, len("So. " + TEXT))


async def test_a_document_without_woven_text_gets_no_notification(
    client: LanguageClient,
) -> None:
    seen = _spans_seen(client)
    open_doc(client, TEXT, version=1)
    change(client, [1], end_of(TEXT), end_of(TEXT), " and so")
    assert await hover(client, types.Position(0, 2)) is None
    assert seen == []
    answer = await command(client, "lloom.spans", URI)
    assert answer == {"uri": URI, "version": 2, "spans": []}
    assert "error" in await command(client, "lloom.spans", "file:///not/open.txt")
    assert "error" in await command(client, "lloom.spans")

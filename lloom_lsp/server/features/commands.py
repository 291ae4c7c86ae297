"""workspace/executeCommand: ``lloom.weave``, ``lloom.accept`` and ``lloom.cancel``.

These serve custom UIs (the VS Code QuickPick, Neovim's :LLooMWeave) that want the
beams and the tree as JSON and accept one through the server.  Once the editor has
applied an accepted beam, the continuation after it is woven in the background
(``warmup.prefetch``), so the next request there is answered from the cache.

``lloom.weave`` takes ``[uri, position, options?]``; the options, all optional:

- ``fresh``: weave anew instead of answering from the cache (the result replaces it);
- ``deeper``: beams twice as long (``weave.maxDepth`` doubled, up to its maximum);
- ``after``: weave from the story plus this text, a beam not inserted yet ("weave from
  this beam"): every beam's ``insertText`` then starts with it, so inserting one at the
  position inserts both.

A weave that something else stops (``lloom.cancel``, a settings change) is answered
``{"beams": [], "cancelled": true, "error": "cancelled"}``; one whose own request is
cancelled (``$/cancelRequest``) is answered -32800.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from ...config import WeaveSettings
from ..app import LloomServer, command_progress_token
from ..convert import from_lsp_story, to_lsp_weave_result
from ..weaving import speed_line


def register(server: LloomServer) -> None:
    @server.command("lloom.weave")
    async def weave(
        ls: LloomServer, uri: str, position: types.Position, *rest: Any
    ) -> dict[str, Any]:
        doc = ls.document(uri)
        if doc is None:
            return {"beams": [], "error": f"document not open: {uri}"}
        if len(rest) > 1:
            return {"beams": [], "error": f"lloom.weave: 2 or 3 arguments, got {2 + len(rest)}"}
        options = rest[0] if rest and rest[0] is not None else {}
        problem = _bad_options(options)
        if problem:
            return {"beams": [], "error": problem, "version": doc.version}
        after = options.get("after") or ""
        settings = await ls.settings_for(uri)
        if options.get("deeper"):
            depth = min(settings.weave.max_depth * 2, MAX_DEPTH)
            settings = attrs.evolve(settings, weave=attrs.evolve(settings.weave, max_depth=depth))
        story = from_lsp_story(doc, position, settings.story.max_context_chars, inserted=after)
        token = command_progress_token.get()
        try:
            result = await ls.weaver.weave(
                uri, story, settings, progress_token=token, fresh=bool(options.get("fresh"))
            )
        except asyncio.CancelledError:
            if _cancelled_itself():
                raise  # $/cancelRequest: pygls answers -32800
            # Someone else stopped the weave (lloom.cancel, a settings change): an answer,
            # since Neovim drops a -32800 it did not ask for and would wait forever.
            return {"beams": [], "cancelled": True, "error": "cancelled", "version": doc.version}
        if result is None:
            return {"beams": [], "error": "backend failed", "version": doc.version}
        data = to_lsp_weave_result(result)
        if after:
            for beam in data["beams"]:
                beam["insertText"] = after + beam["insertText"]
        return {**data, "after": after, "speedLine": speed_line(result), "version": doc.version}

    @server.command("lloom.accept")
    async def accept(
        ls: LloomServer, uri: str, version: int, position: types.Position, text: str
    ) -> dict[str, Any]:
        doc = ls.document(uri)
        if doc is None:
            return {"applied": False, "reason": f"document not open: {uri}"}
        settings = await ls.settings_for(uri)
        if doc.version != version:
            return {
                "applied": False,
                "reason": f"document changed (version {version}, now {doc.version}); weave again",
            }
        # The story after the beam, taken now: the editor's change may arrive before or
        # after its answer to applyEdit.
        after = from_lsp_story(doc, position, settings.story.max_context_chars, inserted=text)
        edit = types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=uri, version=version
                    ),
                    edits=[types.TextEdit(range=types.Range(position, position), new_text=text)],
                )
            ]
        )
        try:
            answer = await ls.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=edit, label="LLooM: accept beam")
            )
        except JsonRpcException as exc:
            return {"applied": False, "reason": f"workspace/applyEdit failed: {exc}"}
        result: dict[str, Any] = {"applied": bool(answer.applied)}
        if not answer.applied:
            result["reason"] = answer.failure_reason or "the editor refused the edit"
        elif settings.warmup.prefetch:
            ls.weaver.prefetch(uri, after, settings)
        return result

    @server.command("lloom.cancel")
    def cancel(ls: LloomServer, *uri: str) -> dict[str, Any]:
        return {"cancelled": ls.weaver.cancel(uri[0] if uri else None)}


#: The largest ``weave.maxDepth`` the schema allows ("weave deeper" stops there).
MAX_DEPTH = int(attrs.fields(WeaveSettings).max_depth.metadata["maximum"])

_OPTIONS = {"fresh": bool, "deeper": bool, "after": str}


def _cancelled_itself() -> bool:
    """Whether the running task itself was cancelled, not something it awaited (on Python
    3.10, which cannot tell, always)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


def _bad_options(options: Any) -> str | None:
    """What is wrong with ``lloom.weave``'s options, naming the field; None when nothing."""
    if not isinstance(options, dict):
        return f"lloom.weave: options must be an object, got {type(options).__name__}"
    for key, value in options.items():
        kind = _OPTIONS.get(key)
        if kind is None:
            return f"lloom.weave: unknown option {key!r} (known: {', '.join(_OPTIONS)})"
        if value is not None and not isinstance(value, kind):
            return f"lloom.weave: option {key!r} must be a {kind.__name__}"
    return None

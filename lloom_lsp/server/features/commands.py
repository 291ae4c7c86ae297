"""workspace/executeCommand: ``lloom.weave``, ``lloom.accept``, ``lloom.cancel`` and
``lloom.showContext``.

These serve custom UIs (the VS Code QuickPick, Neovim's :LLooMWeave) that want the
beams and the tree as JSON and accept one through the server.  Once the editor has
applied an accepted beam, the continuation after it is woven in the background
(``warmup.prefetch``), so the next request there is answered from the cache.

``lloom.weave`` takes ``[uri, position, options?]``; the options, all optional:

- ``fresh``: weave anew instead of answering from the cache (the result replaces it);
- ``deeper``: beams twice as long (``weave.maxDepth`` doubled, up to its maximum);
- ``after``: weave from the story plus this text, a beam not inserted yet ("weave from
  this beam"): every beam's ``insertText`` then starts with it, so inserting one at the
  position inserts both;
- ``depth``: beams this many tokens long (1 to ``weave.maxDepth``'s maximum); with
  ``after``, "step N more tokens" on a beam.

``lloom.showContext`` takes ``[uri, position]`` and answers what the next weave there would
send (:func:`..context.show_context`): ``prompt`` (exactly), ``memory``, ``memorySource``,
``note``, ``window``, ``held``, ``tokens`` (the backend's count; null where it cannot
count), ``contextTokens``, ``problem`` and ``text``, all of it as a read-only document.

A weave that something else stops (``lloom.cancel``, a settings change) is answered
``{"beams": [], "cancelled": true, "error": "cancelled"}``; one whose own request is
cancelled (``$/cancelRequest``) is answered -32800.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from ..app import LloomServer
from ..context import show_context
from ..convert import to_lsp_weave_result, to_lsp_workspace_edit
from ..weave_service import speed_line
from ..woven_tokens import woven_tokens
from .weave_at import Woven, weave_at


def register(server: LloomServer) -> None:
    @server.command("lloom.weave")
    async def weave(
        ls: LloomServer, uri: str, position: types.Position, *rest: Any
    ) -> dict[str, Any]:
        woven = await weave_at(ls, "lloom.weave", uri, position, rest)
        if not isinstance(woven, Woven):
            return {"beams": [], **woven}
        data = to_lsp_weave_result(woven.result)
        if woven.after:
            for beam in data["beams"]:
                beam["insertText"] = woven.after + beam["insertText"]
        return {
            **data,
            "after": woven.after,
            "speedLine": speed_line(woven.result),
            "version": woven.version,
        }

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
        after = await ls.story(doc, position, settings, inserted=text)
        # The version the client asked for, not the document's now: it may have changed
        # while the story was read, and then the client refuses the edit.
        edit = to_lsp_workspace_edit(
            uri, version, types.TextEdit(range=types.Range(position, position), new_text=text)
        )
        # The woven text remembers its tokens (hover, "Branch here"), once the editor's
        # change has inserted it: the beams are found in the weaves cached for this spot.
        spans = ls.spans
        spans.expect(
            doc,
            position,
            text,
            woven_tokens(
                text,
                lambda done: ls.weaver.cached(
                    uri,
                    ls.story_now(doc, position, settings, inserted=done),
                    settings,
                    any_settings=True,  # a deeper or N-token weave is cached under its own
                ),
            ),
        )
        try:
            answer = await ls.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=edit, label="LLooM: accept beam")
            )
        except JsonRpcException as exc:
            spans.refused(uri, text)
            return {"applied": False, "reason": f"workspace/applyEdit failed: {exc}"}
        result: dict[str, Any] = {"applied": bool(answer.applied)}
        if not answer.applied:
            spans.refused(uri, text)
            result["reason"] = answer.failure_reason or "the editor refused the edit"
        elif settings.warmup.prefetch:
            ls.weaver.prefetch(uri, after, settings)
        return result

    @server.command("lloom.showContext")
    async def context(ls: LloomServer, uri: str, position: types.Position) -> dict[str, Any]:
        doc = ls.document(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"lloom.showContext: document not open: {uri}")
        settings = await ls.settings_for(uri)
        found = await ls.weaver.windows.context_at(doc, position, settings)
        where = f"{uri} at line {position.line + 1}, column {position.character + 1}"
        return await show_context(ls.weaver.backend(settings)[0], settings, found, where)

    @server.command("lloom.cancel")
    def cancel(ls: LloomServer, *uri: str) -> dict[str, Any]:
        return {"cancelled": ls.weaver.cancel(uri[0] if uri else None)}

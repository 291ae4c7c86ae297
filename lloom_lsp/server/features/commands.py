"""workspace/executeCommand: ``lloom.weave``, ``lloom.accept`` and ``lloom.cancel``.

These serve custom UIs (the VS Code QuickPick, Neovim's :LLooMWeave) that want the
beams and the tree as JSON and accept one through the server.  Once the editor has
applied an accepted beam, the continuation after it is woven in the background
(``warmup.prefetch``), so the next request there is answered from the cache.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from ..app import LloomServer, command_progress_token
from ..convert import from_lsp_story, to_lsp_weave_result
from ..weaving import speed_line


def register(server: LloomServer) -> None:
    @server.command("lloom.weave")
    async def weave(ls: LloomServer, uri: str, position: types.Position) -> dict[str, Any]:
        doc = ls.document(uri)
        if doc is None:
            return {"beams": [], "error": f"document not open: {uri}"}
        settings = await ls.settings_for(uri)
        story = from_lsp_story(doc, position, settings.story.max_context_chars)
        token = command_progress_token.get()
        result = await ls.weaver.weave(uri, story, settings, progress_token=token)
        if result is None:
            return {"beams": [], "error": "backend failed", "version": doc.version}
        return {
            **to_lsp_weave_result(result),
            "speedLine": speed_line(result),
            "version": doc.version,
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
        answer = await ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label="LLooM: accept beam")
        )
        result: dict[str, Any] = {"applied": bool(answer.applied)}
        if not answer.applied:
            result["reason"] = answer.failure_reason or "the editor refused the edit"
        elif settings.warmup.prefetch:
            ls.weaver.prefetch(uri, after, settings)
        return result

    @server.command("lloom.cancel")
    def cancel(ls: LloomServer, *uri: str) -> dict[str, Any]:
        return {"cancelled": ls.weaver.cancel(uri[0] if uri else None)}

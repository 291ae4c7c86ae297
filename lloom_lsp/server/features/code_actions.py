"""textDocument/codeAction: "Continue: <beam> (p=...)" for each beam.

VS Code asks for code actions on every cursor move (Automatic): those never weave
and return only beams already cached for this spot.  An explicit request (Invoked)
weaves.
"""

from __future__ import annotations

from lsprotocol import types

from ..app import LloomServer
from ..convert import CODE_ACTION_KIND, from_lsp_story, to_lsp_code_actions


def register(server: LloomServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[CODE_ACTION_KIND]),
    )
    async def code_action(
        ls: LloomServer, params: types.CodeActionParams
    ) -> list[types.CodeAction]:
        doc = ls.document(params.text_document.uri)
        if doc is None:
            return []
        only = params.context.only
        if only and not any(CODE_ACTION_KIND.value.startswith(kind) for kind in only):
            return []
        position = params.range.end
        settings = await ls.settings_for(doc.uri)
        story = from_lsp_story(doc, position, settings.story.max_context_chars)
        if params.context.trigger_kind == types.CodeActionTriggerKind.Automatic:
            result = ls.weaver.cached(doc.uri, story, settings)
        else:
            result = await ls.weaver.weave(
                doc.uri, story, settings, progress_token=params.work_done_token
            )
        if result is None:
            return []
        return to_lsp_code_actions(result, doc, position, versioned=_versioned(ls))


def _versioned(ls: LloomServer) -> bool:
    workspace = ls.client_capabilities.workspace
    edit = workspace.workspace_edit if workspace else None
    return bool(edit and edit.document_changes)

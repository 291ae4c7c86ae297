"""textDocument/codeAction: "Continue: <beam> (p=...)" for each beam, and at a woven
token, "Branch here: <alternative>" for each alternative the model offered there.

VS Code asks for code actions on every cursor move (Automatic): those never weave
and return only beams already cached for this spot, and no branches.  An explicit
request (Invoked) weaves.

"Branch here" replaces the woven text from the token to the end of its run (the woven
tokens that follow it without a gap) with the alternative, woven onward: the best beam
of a weave of the story up to the token plus the alternative.  One weave per
alternative, one after the other (a document's new weave cancels its previous one).
"""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types

from ...engine import heal_whitespace
from ..app import LloomServer
from ..convert import (
    BRANCH_ACTION_KIND,
    CODE_ACTION_KIND,
    from_lsp_story,
    to_lsp_branch_action,
    to_lsp_code_actions,
)
from ..spans import woven_spans
from ..woven import branch_tokens

#: Alternatives offered as "Branch here" actions at one token, at most.
MAX_BRANCHES = 3


def register(server: LloomServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[CODE_ACTION_KIND, BRANCH_ACTION_KIND]),
    )
    async def code_action(
        ls: LloomServer, params: types.CodeActionParams
    ) -> list[types.CodeAction]:
        doc = ls.document(params.text_document.uri)
        if doc is None:
            return []
        only = params.context.only
        position = params.range.end
        settings = await ls.settings_for(doc.uri)
        invoked = params.context.trigger_kind != types.CodeActionTriggerKind.Automatic
        actions: list[types.CodeAction] = []
        if _wanted(CODE_ACTION_KIND, only):
            story = from_lsp_story(doc, position, settings.story.max_context_chars)
            if invoked:
                result = await ls.weaver.weave(
                    doc.uri, story, settings, progress_token=params.work_done_token
                )
            else:
                result = ls.weaver.cached(doc.uri, story, settings)
            if result is not None:
                actions += to_lsp_code_actions(result, doc, position, versioned=_versioned(ls))
        if invoked and _wanted(BRANCH_ACTION_KIND, only):
            actions += await _branches(ls, doc.uri, params.range.start)
        return actions


async def _branches(ls: LloomServer, uri: str, position: types.Position) -> list[types.CodeAction]:
    """ "Branch here" at the woven token under the cursor, one per alternative."""
    spans = woven_spans(ls)
    span = spans.near(uri, position)
    doc = ls.document(uri)
    if span is None or doc is None:
        return []
    settings = await ls.settings_for(uri)
    version = doc.version
    replaced = types.Range(span.range.start, spans.run_end(uri, span))
    before = from_lsp_story(doc, replaced.start, settings.story.max_context_chars)
    held = before[len(before.rstrip(" \t")) :]
    actions = []
    for alternative in [a for a in span.alternatives if not a.chosen and not a.is_end][
        :MAX_BRANCHES
    ]:
        start = heal_whitespace(held, alternative.text)
        if not start:
            continue
        result = await ls.weaver.weave(uri, before + start, settings)
        if doc.version != version:
            return []  # the writer went on: these edits would land in the wrong place
        best = result.beams[0] if result and result.beams else None
        new_text = start + (best.insert_text if best else "")
        # applied, the branch is woven text too
        spans.expect(
            doc,
            replaced.start,
            new_text,
            branch_tokens(span.alternatives, alternative, start, result, best),
            one_of=True,
        )
        actions.append(
            to_lsp_branch_action(doc, replaced, alternative, new_text, versioned=_versioned(ls))
        )
    return actions


def _wanted(kind: types.CodeActionKind, only: Sequence[types.CodeActionKind | str] | None) -> bool:
    """Whether the client asked for ``kind`` (``only`` names kinds or their parents)."""
    if not only:
        return True
    names = [k.value if isinstance(k, types.CodeActionKind) else k for k in only]
    return any(kind.value == name or kind.value.startswith(name + ".") for name in names)


def _versioned(ls: LloomServer) -> bool:
    workspace = ls.client_capabilities.workspace
    edit = workspace.workspace_edit if workspace else None
    return bool(edit and edit.document_changes)

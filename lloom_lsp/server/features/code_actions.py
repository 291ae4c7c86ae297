"""textDocument/codeAction: at a woven token, "Branch here: <alternative>" for each
alternative the model offered there, first; then "Continue: <beam> (p=...)" for each beam.
A cursor inside a word weaves from the end of that word, never from a split word ("w|et"
continues after "wet").

VS Code asks for code actions on every cursor move (Automatic): those never weave
and return only beams already cached for this spot, and no branches.  An explicit
request (Invoked) weaves.

"Branch here" replaces the woven text from the token to the end of its run (the woven
tokens that follow it without a gap) with the alternative, woven onward: the first beam
of a weave of the story up to the token plus the alternative, grown as one chain (not a
whole weave: the writer keeps one beam).  A client that resolves code actions' edits
(``codeAction/resolve``, VS Code and Neovim 0.10+) gets the actions at once and only the
one the writer picks is woven; any other gets them woven up front, one weave per
alternative, one after the other (a document's new weave cancels its previous one).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.workspace import TextDocument

from ...config import Settings
from ...engine import heal_whitespace
from ..app import LloomServer
from ..convert import (
    BRANCH_ACTION_KIND,
    CODE_ACTION_KIND,
    to_lsp_branch_action,
    to_lsp_branch_offer,
    to_lsp_code_actions,
)
from ..documents import lsp_document
from ..positions import position_after
from ..woven_spans import TokenSpan
from ..woven_tokens import Alternative, branch_tokens

#: Alternatives offered as "Branch here" actions at one token, at most.
MAX_BRANCHES = 3


def register(server: LloomServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[CODE_ACTION_KIND, BRANCH_ACTION_KIND], resolve_provider=True
        ),
    )
    async def code_action(
        ls: LloomServer, params: types.CodeActionParams
    ) -> list[types.CodeAction]:
        doc = ls.document(params.text_document.uri)
        if doc is None:
            return []
        only = params.context.only
        position = _after_word(doc, params.range.end)
        settings = await ls.settings_for(doc.uri)
        invoked = params.context.trigger_kind != types.CodeActionTriggerKind.Automatic
        actions: list[types.CodeAction] = []
        if invoked and _wanted(BRANCH_ACTION_KIND, only):
            actions += await _branches(ls, doc.uri, params.range.start)
        if _wanted(CODE_ACTION_KIND, only):
            story = await ls.story(doc, position, settings)
            after = ls.weaver.windows.after_at(doc, position, settings)
            if invoked:
                result = await ls.weaver.weave(
                    doc.uri, story, settings, progress_token=params.work_done_token, after=after
                )
            else:
                result = ls.weaver.cached(doc.uri, story, settings, after=after)
            if result is not None:
                actions += to_lsp_code_actions(result, doc, position, versioned=_versioned(ls))
        return actions

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: LloomServer, action: types.CodeAction) -> types.CodeAction:
        return await resolve_branch(ls, action)


async def _branches(ls: LloomServer, uri: str, position: types.Position) -> list[types.CodeAction]:
    """ "Branch here" at the woven token under the cursor, one per alternative: woven now,
    or (a client that resolves edits) when the writer picks one."""
    spans = ls.spans
    span = spans.near(uri, position)
    doc = ls.document(uri)
    if span is None or doc is None:
        return []
    lazy = _resolves_edits(ls)
    version = doc.version
    actions: list[types.CodeAction] = []
    for index, alternative in enumerate(span.alternatives):
        if alternative.chosen or alternative.is_end:
            continue
        if len(actions) == MAX_BRANCHES:
            break
        if lazy:
            data = {"uri": uri, "version": version, "at": [span.start[0], span.start[1]]}
            actions.append(to_lsp_branch_offer(alternative, {**data, "alternative": index}))
            continue
        action = await _branch(ls, uri, span, alternative)
        if doc.version != version:
            return []  # the writer went on: these edits would land in the wrong place
        if action is not None:
            actions.append(action)
    return actions


async def _branch(
    ls: LloomServer, uri: str, span: TokenSpan, alternative: Alternative
) -> types.CodeAction | None:
    """The "Branch here" action for ``alternative`` at ``span``, woven onward, with its
    edit; None where the alternative heals to nothing."""
    spans = ls.spans
    doc = ls.document(uri)
    if doc is None:
        return None
    settings = await ls.settings_for(uri)
    replaced = types.Range(span.range.start, spans.run_end(uri, span))
    before = await ls.story(doc, replaced.start, settings)
    held = before[len(before.rstrip(" \t")) :]
    start = heal_whitespace(held, alternative.text)
    if not start:
        return None
    result = await ls.weaver.weave(uri, before + start, _one_chain(settings))
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
    return to_lsp_branch_action(doc, replaced, alternative, new_text, versioned=_versioned(ls))


def _one_chain(settings: Settings) -> Settings:
    """What a branch weaves: one chain from the alternative to its natural end, the best
    first search's first beam, instead of a whole weave of ``maxSuggestions`` beams for
    the one it keeps (on Gemma 3 270M, a branch took 20 s more than its list)."""
    one = attrs.evolve(settings.weave, strategy="best", max_suggestions=1, max_requests=1)
    return attrs.evolve(settings, weave=one)


async def resolve_branch(ls: LloomServer, action: types.CodeAction) -> types.CodeAction:
    """codeAction/resolve of a "Branch here" offer: weave its alternative onward now.  A
    document changed since the offer, or a token edited away, is refused with an error
    that says so (the edit would land in the wrong place)."""
    data = action.data if isinstance(action.data, dict) else None
    if action.edit is not None or data is None or action.kind != BRANCH_ACTION_KIND:
        return action  # nothing of ours to resolve
    try:
        uri, version = str(data["uri"]), data["version"]
        at = (int(data["at"][0]), int(data["at"][1]))
        index = int(data["alternative"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise JsonRpcInvalidParams(f"Branch here: unreadable action data ({exc!r})") from exc
    doc = ls.document(uri)
    if doc is None or doc.version != version:
        raise JsonRpcInvalidRequest("Branch here: the document changed since; ask again")
    span = ls.spans.at(uri, types.Position(*at))
    if span is None or span.start != at or not 0 <= index < len(span.alternatives):
        raise JsonRpcInvalidRequest("Branch here: that token is no longer woven; ask again")
    resolved = await _branch(ls, uri, span, span.alternatives[index])
    if doc.version != version:
        raise JsonRpcInvalidRequest("Branch here: the document changed while weaving")
    if resolved is None:
        raise JsonRpcInvalidRequest("Branch here: that alternative is only whitespace here")
    return attrs.evolve(resolved, data=action.data)


def _after_word(doc: TextDocument, position: types.Position) -> types.Position:
    """``position``, or the end of the word it splits: a letter or digit on both sides."""
    document = lsp_document(doc)
    if position.line >= document.line_count:
        return position
    offset, _ = document.locate(position)
    if offset == 0 or not _in_word(document.source[offset - 1]):
        return position
    rest = document.source[offset : offset + _LONGEST_WORD]
    end = 0
    while end < len(rest) and _in_word(rest[end]):
        end += 1
    return position_after(doc, position, rest[:end]) if end else position


#: Characters looked at after the cursor for the end of its word.
_LONGEST_WORD = 200


def _in_word(ch: str) -> bool:
    return ch.isalnum() or ch in "_'\u2019"


def _resolves_edits(ls: LloomServer) -> bool:
    """Whether the client fills in a code action's edit with codeAction/resolve."""
    text = ls.client_capabilities.text_document
    code_action = text.code_action if text else None
    support = code_action.resolve_support if code_action else None
    return bool(support and "edit" in support.properties)


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

"""Every conversion between LSP and the engine, in one place.

Gotchas handled here:
* LSP positions are 0-based lines and *code units* of the negotiated encoding; the
  position math, and the story read before the cursor, are :mod:`.positions`.
* Clients filter completion items by the word before the cursor.  Each item's edit
  therefore covers that word fragment and re-inserts it followed by the beam, so
  the result is the same as inserting the beam at the cursor, and the client's
  filter (which compares against ``filterText``) keeps every item.
* Beam labels (completion item labels, code action titles, the ``label`` of each beam
  in ``lloom.weave``'s answer) come from :func:`.labels.beam_labels` over *all* beams of
  the weave, so they show how each beam begins and where it differs, not the long
  start beams share.
  The label is only for reading: ``filterText`` and the edit keep the whole text (a
  client filters on ``filterText`` when given, on the label only without it), and the
  item's documentation shows the whole text.  The full text is not put in
  ``labelDetails``: clients show those on the same row, right after the label, which
  would undo the short label.  Inline completions are ghost text and keep the full text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.workspace import TextDocument

from ..engine import Beam, WeaveResult
from ..engine.render import bar, visible
from .labels import beam_labels
from .positions import word_fragment

if TYPE_CHECKING:
    from .woven_spans import TokenSpan
    from .woven_tokens import Alternative

__all__ = [
    "to_lsp_branch_action",
    "to_lsp_branch_offer",
    "to_lsp_code_actions",
    "to_lsp_token_hover",
    "to_lsp_completion_items",
    "to_lsp_inline_items",
    "to_lsp_weave_result",
    "to_lsp_workspace_edit",
]


def _labels_of(result: WeaveResult) -> list[str]:
    """One label per beam of ``result``, in order, telling the beams apart."""
    return beam_labels([beam.insert_text for beam in result.beams])


_GRAVE = "\u02cb"  # a lookalike, so a backtick in a token cannot end the code span


def _code(text: str) -> str:
    """A token as a Markdown code span that survives a table cell."""
    return f"`{visible(text).replace('`', _GRAVE).replace('|', '¦') or '∅'}`"


def token_details(beam: Beam) -> str:
    """The beam's tokens with their probabilities, each token quoted so that it reads as
    itself: ``“2” 56% · “0” 71%``; a line break shows as ⏎, a tab as ⇥, never as an
    escape."""
    return " · ".join(f"“{visible(t.text)}” {_percent(t.prob)}" for t in beam.tokens)


def _percent(prob: float) -> str:
    p = min(1.0, max(0.0, prob)) * 100
    if p >= 99.5:
        return "100%"
    return f"{p:.0f}%" if p >= 10 else f"{p:.1f}%" if p >= 1 else f"{p:.2f}%"


def _documentation(beam: Beam, best: float) -> types.MarkupContent:
    rows = "\n".join(f"- {_code(t.text)} {_percent(t.prob)} `{bar(t.prob)}`" for t in beam.tokens)
    fraction = beam.score / best if best > 0 else 0.0
    why = f" · *{beam.note}*" if beam.note else ""
    also = f"\n\nalso: {', '.join(beam.variants)}" if beam.variants else ""
    value = (
        f"`{bar(fraction)}` score **{beam.score:.3f}** · joint p = {beam.joint:.2e} · "
        f"mean log p = {beam.mean_logprob:.2f}{why}\n\n"
        f"```text\n{beam.insert_text}\n```{also}\n\n"
        f"tokens:\n\n{rows}\n"
    )
    return types.MarkupContent(kind=types.MarkupKind.Markdown, value=value)


def beam_detail(beam: Beam) -> str:
    """The score, and why the beam sits below beams scored higher (its note)."""
    detail = f"score {beam.score:.3f} · p={beam.joint:.2e}"
    if beam.variants:
        detail += f" · also {', '.join(beam.variants)}"
    return f"{detail} · {beam.note}" if beam.note else detail


def to_lsp_completion_items(
    result: WeaveResult, doc: TextDocument, position: types.Position
) -> list[types.CompletionItem]:
    fragment, start = word_fragment(doc, position)
    best = max((b.score for b in result.beams), default=0.0)
    items = []
    for rank, (beam, label) in enumerate(zip(result.beams, _labels_of(result))):
        new_text = fragment + beam.insert_text
        items.append(
            types.CompletionItem(
                label=label,
                kind=types.CompletionItemKind.Text,
                detail=beam_detail(beam),
                documentation=_documentation(beam, best),
                sort_text=f"{rank:05d}",
                filter_text=new_text,
                insert_text_format=types.InsertTextFormat.PlainText,
                text_edit=types.TextEdit(range=types.Range(start, position), new_text=new_text),
                preselect=rank == 0,
            )
        )
    return items


def to_lsp_inline_items(
    result: WeaveResult, position: types.Position
) -> list[types.InlineCompletionItem]:
    return [
        types.InlineCompletionItem(
            insert_text=beam.insert_text, range=types.Range(position, position)
        )
        for beam in result.beams
        if beam.insert_text
    ]


CODE_ACTION_KIND = types.CodeActionKind.QuickFix


def to_lsp_code_actions(
    result: WeaveResult,
    doc: TextDocument,
    position: types.Position,
    *,
    versioned: bool,
) -> list[types.CodeAction]:
    actions = []
    for rank, (beam, label) in enumerate(zip(result.beams, _labels_of(result))):
        edit = types.TextEdit(range=types.Range(position, position), new_text=beam.insert_text)
        workspace_edit = to_lsp_workspace_edit(doc.uri, doc.version, edit, versioned=versioned)
        note = f", {beam.note}" if beam.note else ""
        actions.append(
            types.CodeAction(
                title=f"Continue: {label} (p={beam.joint:.2g}{note})",
                kind=CODE_ACTION_KIND,
                edit=workspace_edit,
                is_preferred=rank == 0,
            )
        )
    return actions


def to_lsp_token_hover(span: TokenSpan, *, markdown: bool = True) -> types.Hover:
    """A woven token: its probability, and what the model offered at its position, as a
    list (a Markdown table shows raw in clients such as Neovim 0.11); plain text where the
    client's hover takes no Markdown."""
    if markdown:
        head = f"woven token {_code(span.text)} · p = **{span.prob:.3f}** `{bar(span.prob)}`"
        items = [
            f"- {_code('⏎ end' if alt.is_end else alt.text)}{' ◀' if alt.chosen else ''} "
            f"{alt.prob:.3f} `{bar(alt.prob)}`"
            for alt in span.alternatives
        ]
    else:
        head = f"woven token “{visible(span.text)}” · p = {span.prob:.3f} {bar(span.prob)}"
        items = [
            f"  “{'⏎ end' if alt.is_end else visible(alt.text)}”{' ◀' if alt.chosen else ''} "
            f"{alt.prob:.3f} {bar(alt.prob)}"
            for alt in span.alternatives
        ]
    value = head + "\n"
    if items:
        value += "\nalternatives:\n\n" + "\n".join(items) + "\n"
    kind = types.MarkupKind.Markdown if markdown else types.MarkupKind.PlainText
    return types.Hover(contents=types.MarkupContent(kind=kind, value=value), range=span.range)


BRANCH_ACTION_KIND = types.CodeActionKind.RefactorRewrite


def to_lsp_branch_action(
    doc: TextDocument,
    replaced: types.Range,
    alternative: Alternative,
    new_text: str,
    *,
    versioned: bool,
) -> types.CodeAction:
    """ "Branch here": the woven text in ``replaced`` becomes ``new_text``, which starts
    with ``alternative``'s token and goes on with the best beam woven after it."""
    return types.CodeAction(
        title=_branch_title(alternative),
        kind=BRANCH_ACTION_KIND,
        edit=to_lsp_workspace_edit(
            doc.uri,
            doc.version,
            types.TextEdit(range=replaced, new_text=new_text),
            versioned=versioned,
        ),
    )


def to_lsp_branch_offer(alternative: Alternative, data: dict[str, Any]) -> types.CodeAction:
    """ "Branch here" before it is woven: the edit comes with codeAction/resolve."""
    return types.CodeAction(title=_branch_title(alternative), kind=BRANCH_ACTION_KIND, data=data)


def _branch_title(alternative: Alternative) -> str:
    label = visible(alternative.text).strip() or visible(alternative.text)
    return f"Branch here: {label} (p={alternative.prob:.2g})"


def to_lsp_workspace_edit(
    uri: str, version: int | None, edit: types.TextEdit, *, versioned: bool = True
) -> types.WorkspaceEdit:
    """``edit`` to the document at ``uri``: for its ``version`` (so a client refuses it once
    the text has changed) where the client takes ``documentChanges``, else as plain ones."""
    if versioned:
        return types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=uri, version=version
                    ),
                    edits=[edit],
                )
            ]
        )
    return types.WorkspaceEdit(changes={uri: [edit]})


def to_lsp_weave_result(result: WeaveResult) -> dict[str, Any]:
    """``lloom.weave``'s answer: the result as JSON, each beam with its ``label``."""
    data = result.to_dict()
    for beam, label, source in zip(data["beams"], _labels_of(result), result.beams):
        beam["label"] = label
        beam["tokenDetails"] = token_details(source)
    return data

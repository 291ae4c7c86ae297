"""Every conversion between LSP and the engine, in one place.

Gotchas handled here:
* LSP positions are 0-based lines and *code units* of the negotiated encoding
  (UTF-16 unless the client offered UTF-8 or UTF-32); ``TextDocument.offset_at_position``
  turns them into a Python string index.  Lines are pygls' lines
  (``str.splitlines``), so a position computed here points where pygls reads it.
* Clients filter completion items by the word before the cursor.  Each item's edit
  therefore covers that word fragment and re-inserts it followed by the beam, so
  the result is the same as inserting the beam at the cursor, and the client's
  filter (which compares against ``filterText``) keeps every item.
* Beam labels (completion item labels, code action titles, the ``label`` of each beam
  in ``lloom.weave``'s answer) come from :func:`.labels.beam_labels` over *all* beams of
  the weave, so they show where beams differ rather than their long shared start.
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
from ..engine.window import window_start
from ..terminal import bar, visible
from .labels import beam_labels

if TYPE_CHECKING:
    from .spans import TokenSpan
    from .woven import Alternative

__all__ = [
    "change_end",
    "end_of_document",
    "from_lsp_story",
    "position_after",
    "text_before",
    "to_lsp_branch_action",
    "to_lsp_branch_offer",
    "to_lsp_code_actions",
    "to_lsp_token_hover",
    "to_lsp_completion_items",
    "to_lsp_inline_items",
    "to_lsp_weave_result",
    "word_fragment",
]


def from_lsp_story(
    doc: TextDocument, position: types.Position, max_chars: int, *, inserted: str = ""
) -> str:
    """The story: the document text before the cursor, at most ``max_chars`` characters,
    starting where :func:`~lloom_lsp.engine.window.window_start` says (at a boundary, so
    never in the middle of a word, and in coarse steps, so typing at the end leaves the
    start where it was).  Features ask ``LloomServer.story`` (:mod:`.story`), which sizes
    ``max_chars`` to the backend.

    ``inserted``: text about to be inserted at the cursor; the story is then the one at
    the end of it (after an accepted beam, before the editor sends the change).
    """
    text = text_before(doc, position, inserted)
    return text[window_start(text, max_chars) :]


def text_before(doc: TextDocument, position: types.Position, inserted: str = "") -> str:
    """The whole document text before the cursor, with ``inserted`` after it."""
    return _whole_characters(doc.source[: _offset(doc, position)] + inserted)


def _offset(doc: TextDocument, position: types.Position) -> int:
    """The index in ``doc.source`` of a client position; past the end of a line is its end.

    pygls clamps a column past the end to one before the last character (and changes the
    client's Position while at it), so a cursor sent at column 100 of "Once upon a time"
    read the story as "Once upon a tim".
    """
    lines = doc.lines
    if position.line >= len(lines):
        return len(doc.source)
    line = lines[position.line]
    content = line.rstrip("\r\n")
    if position.character >= doc.position_codec.client_num_units(content):
        start = doc.offset_at_position(types.Position(position.line, 0))
        return start + len(content)
    copy = types.Position(position.line, position.character)
    return min(doc.offset_at_position(copy), len(doc.source))


def _whole_characters(text: str) -> str:
    """``text`` with a lone UTF-16 surrogate (which a client can send as a JSON escape, and
    which no backend can be sent as UTF-8) replaced by U+FFFD, one character for one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _ends_line(text: str) -> bool:
    return bool(text) and text.splitlines()[0] != text


def _after(doc: TextDocument, start: types.Position, text: str) -> types.Position:
    """The position just after ``text`` when it starts at ``start``."""
    pieces = text.splitlines(True)
    if not pieces:
        return start
    if _ends_line(pieces[-1]):
        return types.Position(start.line + len(pieces), 0)
    units = doc.position_codec.client_num_units(pieces[-1])
    if len(pieces) == 1:
        return types.Position(start.line, start.character + units)
    return types.Position(start.line + len(pieces) - 1, units)


def position_after(doc: TextDocument, start: types.Position, text: str) -> types.Position:
    """The position just after ``text`` inserted at ``start``, in ``doc``'s encoding."""
    return _after(doc, start, text)


def end_of_document(doc: TextDocument) -> types.Position:
    return _after(doc, types.Position(0, 0), doc.source)


def change_end(doc: TextDocument, change: types.TextDocumentContentChangeEvent) -> types.Position:
    """Where the writer's cursor is after ``change`` (already applied to ``doc``): at the
    end of the text it inserted; for a whole-document change, the end of the document."""
    if isinstance(change, types.TextDocumentContentChangePartial):
        return _after(doc, change.range.start, change.text)
    return end_of_document(doc)


def word_fragment(doc: TextDocument, position: types.Position) -> tuple[str, types.Position]:
    """The non-whitespace run just before the cursor on its line, and where it starts."""
    if position.line >= len(doc.lines):
        return "", position
    line_start = doc.offset_at_position(types.Position(position.line, 0))
    before = doc.source[line_start : _offset(doc, position)]
    start = len(before)
    while start > 0 and not before[start - 1].isspace():
        start -= 1
    if start == len(before):
        return "", position
    units = doc.position_codec.client_num_units(before[:start])
    return before[start:], types.Position(position.line, units)


def _labels_of(result: WeaveResult) -> list[str]:
    """One label per beam of ``result``, in order, telling the beams apart."""
    return beam_labels([beam.insert_text for beam in result.beams])


_GRAVE = "\u02cb"  # a lookalike, so a backtick in a token cannot end the code span


def _code(text: str) -> str:
    """A token as a Markdown code span that survives a table cell."""
    return f"`{visible(text).replace('`', _GRAVE).replace('|', '¦') or '∅'}`"


def _documentation(beam: Beam, best: float) -> types.MarkupContent:
    rows = "\n".join(f"| {_code(t.text)} | {t.prob:.3f} | `{bar(t.prob)}` |" for t in beam.tokens)
    fraction = beam.score / best if best > 0 else 0.0
    value = (
        f"`{bar(fraction)}` score **{beam.score:.3f}** · joint p = {beam.joint:.2e} · "
        f"mean log p = {beam.mean_logprob:.2f}\n\n"
        f"```text\n{beam.insert_text}\n```\n\n"
        f"| token | p | |\n|---|---:|---|\n{rows}\n"
    )
    return types.MarkupContent(kind=types.MarkupKind.Markdown, value=value)


def beam_detail(beam: Beam) -> str:
    return f"score {beam.score:.3f} · p={beam.joint:.2e}"


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
        if versioned:
            workspace_edit = types.WorkspaceEdit(
                document_changes=[
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(
                            uri=doc.uri, version=doc.version
                        ),
                        edits=[edit],
                    )
                ]
            )
        else:
            workspace_edit = types.WorkspaceEdit(changes={doc.uri: [edit]})
        actions.append(
            types.CodeAction(
                title=f"Continue: {label} (p={beam.joint:.2g})",
                kind=CODE_ACTION_KIND,
                edit=workspace_edit,
                is_preferred=rank == 0,
            )
        )
    return actions


def to_lsp_token_hover(span: TokenSpan) -> types.Hover:
    """A woven token: its probability, and what the model offered at its position."""
    rows = "\n".join(
        f"| {_code('⏎ end' if alt.is_end else alt.text)}{' ◀' if alt.chosen else ''} "
        f"| {alt.prob:.3f} | `{bar(alt.prob)}` |"
        for alt in span.alternatives
    )
    value = f"woven token {_code(span.text)} · p = **{span.prob:.3f}** `{bar(span.prob)}`\n"
    if rows:
        value += f"\n| alternatives | p | |\n|---|---:|---|\n{rows}\n"
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=value),
        range=span.range,
    )


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
        edit=_workspace_edit(doc, types.TextEdit(range=replaced, new_text=new_text), versioned),
    )


def to_lsp_branch_offer(alternative: Alternative, data: dict[str, Any]) -> types.CodeAction:
    """ "Branch here" before it is woven: the edit comes with codeAction/resolve."""
    return types.CodeAction(title=_branch_title(alternative), kind=BRANCH_ACTION_KIND, data=data)


def _branch_title(alternative: Alternative) -> str:
    label = visible(alternative.text).strip() or visible(alternative.text)
    return f"Branch here: {label} (p={alternative.prob:.2g})"


def _workspace_edit(
    doc: TextDocument, edit: types.TextEdit, versioned: bool
) -> types.WorkspaceEdit:
    if versioned:
        return types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=doc.uri, version=doc.version
                    ),
                    edits=[edit],
                )
            ]
        )
    return types.WorkspaceEdit(changes={doc.uri: [edit]})


def to_lsp_weave_result(result: WeaveResult) -> dict[str, Any]:
    """``lloom.weave``'s answer: the result as JSON, each beam with its ``label``."""
    data = result.to_dict()
    for beam, label in zip(data["beams"], _labels_of(result)):
        beam["label"] = label
    return data

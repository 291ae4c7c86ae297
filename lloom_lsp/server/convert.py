"""Every conversion between LSP and the engine, in one place.

Gotchas handled here:
* LSP positions are 0-based lines and *code units* of the negotiated encoding
  (UTF-16 unless the client offered UTF-8 or UTF-32); ``TextDocument.offset_at_position``
  turns them into a Python string index.  Lines break only at ``\\n``, ``\\r\\n`` and
  ``\\r``, as in LSP (:mod:`.documents`, whose document every feature reads), so a
  position computed here points where the client reads it.  Every function here takes a
  pygls ``TextDocument`` too, and reads it the same way.
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
from ..engine.window import STEPS, window_start
from ..terminal import bar, visible
from .documents import LloomTextDocument, lsp_document, split_lines, units
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

    Only the end of the text is read: ``window_start`` looks at nothing before
    ``len(text) - max_chars``, and dropping a whole number of its grid steps from the start
    (fewer than that many characters) moves its grid with the text, so the story is the
    same as from the whole text (a unit test holds them equal).
    """
    doc = lsp_document(doc)
    end = doc.offset_at_position(position)
    overflow = end + len(inserted) - max_chars
    step = max(1, max_chars // STEPS)
    skip = (overflow - 1) // step * step if overflow > 0 else 0
    text = _text_between(doc, skip, end, inserted)
    return text[window_start(text, max_chars) :]


def text_before(
    doc: TextDocument, position: types.Position, inserted: str = "", *, last: int | None = None
) -> str:
    """The document text before the cursor, with ``inserted`` after it: all of it, or
    only its ``last`` characters."""
    doc = lsp_document(doc)
    end = doc.offset_at_position(position)
    skip = 0 if last is None else max(0, end + len(inserted) - last)
    return _text_between(doc, skip, end, inserted)


def _text_between(doc: LloomTextDocument, skip: int, end: int, inserted: str) -> str:
    """The text before index ``end`` followed by ``inserted``, its first ``skip``
    characters left out."""
    if skip <= end:
        return _whole_characters(doc.source[skip:end] + inserted)
    return _whole_characters(inserted[skip - end :])


def _whole_characters(text: str) -> str:
    """``text`` with a lone UTF-16 surrogate (which a client can send as a JSON escape, and
    which no backend can be sent as UTF-8) replaced by U+FFFD, one character for one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _after(doc: TextDocument, start: types.Position, text: str) -> types.Position:
    """The position just after ``text`` when it starts at ``start``."""
    pieces = split_lines(text)
    if not pieces:
        return start
    if pieces[-1].endswith(("\n", "\r")):
        return types.Position(start.line + len(pieces), 0)
    count = units(pieces[-1], doc.position_codec)
    if len(pieces) == 1:
        return types.Position(start.line, start.character + count)
    return types.Position(start.line + len(pieces) - 1, count)


def position_after(doc: TextDocument, start: types.Position, text: str) -> types.Position:
    """The position just after ``text`` inserted at ``start``, in ``doc``'s encoding."""
    return _after(doc, start, text)


def end_of_document(doc: TextDocument) -> types.Position:
    return lsp_document(doc).end_position()


def change_end(doc: TextDocument, change: types.TextDocumentContentChangeEvent) -> types.Position:
    """Where the writer's cursor is after ``change`` (already applied to ``doc``): at the
    end of the text it inserted; for a whole-document change, the end of the document."""
    if isinstance(change, types.TextDocumentContentChangePartial):
        return _after(doc, change.range.start, change.text)
    return end_of_document(doc)


def word_fragment(doc: TextDocument, position: types.Position) -> tuple[str, types.Position]:
    """The non-whitespace run just before the cursor on its line, and where it starts."""
    doc = lsp_document(doc)
    if position.line >= doc.line_count:
        return "", position
    end, character = doc.locate(position)
    fragment = _word_before(doc.source, doc.line_start(position.line), end)
    if not fragment:
        return "", position
    return fragment, types.Position(position.line, character - doc.units(fragment))


def _word_before(source: str, start: int, end: int) -> str:
    """The non-whitespace run that ends at index ``end`` of ``source``, from ``start`` at
    most: read from the end in growing pieces, so a long line is not copied whole."""
    size = 64
    while True:
        begin = max(start, end - size)
        piece = source[begin:end]
        if not piece or piece[-1].isspace():
            return ""
        word = piece.rsplit(None, 1)[-1]
        if len(word) < len(piece) or begin == start:
            return word
        size *= 4


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
    for beam, label, source in zip(data["beams"], _labels_of(result), result.beams):
        beam["label"] = label
        beam["tokenDetails"] = token_details(source)
    return data

"""Positions and the text around them: LSP's positions read in a document, and the story.

* LSP positions are 0-based lines and *code units* of the negotiated encoding (UTF-16
  unless the client offered UTF-8 or UTF-32); ``TextDocument.offset_at_position`` turns
  them into a Python string index.  Lines break only at ``\\n``, ``\\r\\n`` and ``\\r``,
  as in LSP (:mod:`.documents`, whose document every feature reads), so a position
  computed here points where the client reads it.  Every function here takes a pygls
  ``TextDocument`` too, and reads it the same way.
* The story is the text before the cursor, cut where the engine's window says
  (:func:`from_lsp_story`); :mod:`.convert` turns beams into LSP items with these positions.
"""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace import TextDocument

from ..engine.window import STEPS, window_start
from .documents import LloomTextDocument, lsp_document, split_lines, units

__all__ = [
    "change_end",
    "end_of_document",
    "from_lsp_story",
    "position_after",
    "text_before",
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

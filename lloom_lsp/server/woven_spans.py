"""The woven text remembers its tokens: per document, the range of every token that was
inserted from a beam, with its probability and what the model offered at that position.

* Recorded when ``lloom.accept`` inserts a beam's text (several beams in a row, when the
  text is one beam followed by a beam woven after it), when the editor inserts a
  completion or inline item itself, and when it applies a "Branch here" action.  The
  spans of an edit the server sends wait for the editor's change
  (:meth:`WovenSpans.expect`): the editor may send it before or after it answers
  workspace/applyEdit, and the spans take effect only once the text is really there.
* Kept in step with edits: an edit before a span moves it (lines and code units of the
  negotiated encoding), an edit that touches it drops it, and closing the document drops
  them all.  A whole-document change is turned into the one range it changed (the common
  start and end of the old and new text are kept).
* Read by hover (the token and its alternatives) and by the "Branch here" code action.
* One store per server: ``LloomServer.spans``.

Positions are kept as ``(line, character)`` pairs so that they compare in document order.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from lsprotocol import types
from pygls.workspace import TextDocument

from .positions import position_after
from .woven_tokens import Alternative, WovenToken

__all__ = ["TokenSpan", "WovenSpans"]

Point = tuple[int, int]


@attrs.frozen
class TokenSpan:
    """A woven token where it stands in the document now."""

    start: Point
    end: Point
    text: str
    prob: float
    alternatives: tuple[Alternative, ...]

    @property
    def range(self) -> types.Range:
        return types.Range(_position(self.start), _position(self.end))

    def contains(self, point: Point) -> bool:
        return self.start <= point < self.end


@attrs.define
class _Expected:
    version: int
    at: types.Position
    text: str
    tokens: list[WovenToken]


def _inserted_there(doc: TextDocument, expected: _Expected) -> bool:
    start = doc.offset_at_position(types.Position(expected.at.line, expected.at.character))
    return doc.source[start : start + len(expected.text)] == expected.text


class WovenSpans:
    """Every open document's woven tokens."""

    def __init__(self) -> None:
        self._spans: dict[str, list[TokenSpan]] = {}
        self._expected: dict[str, list[_Expected]] = {}
        self._sources: dict[str, str] = {}  # the text the spans were placed in

    def expect(
        self,
        doc: TextDocument,
        position: types.Position,
        text: str,
        tokens: list[WovenToken],
        *,
        one_of: bool = False,
    ) -> None:
        """``text`` with these ``tokens`` is about to be inserted at ``position`` (of the
        document as it is now): place them once the editor's change has inserted it.

        ``one_of``: one of several edits offered (the "Branch here" actions), of which the
        editor applies one or none; otherwise it replaces what was expected before.
        """
        expected = self._expected.get(doc.uri, []) if one_of else []
        if tokens:
            expected.append(_Expected(doc.version or 0, position, text, tokens))
        if expected:
            self._expected[doc.uri] = expected
            self._sources[doc.uri] = doc.source
        else:
            self._expected.pop(doc.uri, None)

    def refused(self, uri: str, text: str) -> None:
        """The editor did not apply the insertion of ``text``."""
        expected = [e for e in self._expected.get(uri, ()) if e.text != text]
        if expected:
            self._expected[uri] = expected
        else:
            self._expected.pop(uri, None)

    def changed(
        self, doc: TextDocument, changes: Sequence[types.TextDocumentContentChangeEvent]
    ) -> bool:
        """The editor changed ``doc`` (``doc`` already shows the change).  Returns whether
        the change inserted the text :meth:`expect` waited for (its tokens are placed)."""
        uri = doc.uri
        if uri not in self._spans and uri not in self._expected:
            return False
        whole = [c for c in changes if isinstance(c, types.TextDocumentContentChangeWholeDocument)]
        if whole and (len(changes) > 1 or uri not in self._sources):
            self._spans.pop(uri, None)  # cannot tell what moved where
        elif whole:
            self._shift(doc, *self._diff(doc, self._sources[uri], whole[0].text))
        else:
            for change in changes:
                assert isinstance(change, types.TextDocumentContentChangePartial)
                self._shift(doc, change.range.start, change.range.end, change.text)
        placed = False
        # Each expected insertion is due at the change after it: there or not, it is over.
        version = doc.version or 0
        expected = self._expected.pop(uri, [])
        if waiting := [e for e in expected if e.version >= version]:
            self._expected[uri] = waiting
        there = [e for e in expected if e.version < version and _inserted_there(doc, e)]
        if there:
            self._place(doc, max(there, key=lambda e: len(e.text)))
            placed = True
        self._remember_source(doc)
        return placed

    def inserted(
        self, doc: TextDocument, position: types.Position, text: str, tokens: list[WovenToken]
    ) -> None:
        """``text`` with these ``tokens`` has just been inserted at ``position`` (a
        completion or inline item the editor inserted itself)."""
        if tokens:
            self._place(doc, _Expected(doc.version or 0, position, text, tokens))
            self._remember_source(doc)

    def _remember_source(self, doc: TextDocument) -> None:
        if doc.uri in self._spans or doc.uri in self._expected:
            self._sources[doc.uri] = doc.source
        else:
            self._sources.pop(doc.uri, None)

    def closed(self, uri: str) -> None:
        self._spans.pop(uri, None)
        self._expected.pop(uri, None)
        self._sources.pop(uri, None)

    def at(self, uri: str, position: types.Position) -> TokenSpan | None:
        """The woven token under ``position``, or None."""
        point = (position.line, position.character)
        return next((s for s in self._spans.get(uri, ()) if s.contains(point)), None)

    def near(self, uri: str, position: types.Position) -> TokenSpan | None:
        """The woven token under the cursor at ``position``: the one it is in, else the one
        it is just after."""
        point = (position.line, position.character)
        return self.at(uri, position) or next(
            (s for s in self._spans.get(uri, ()) if s.end == point), None
        )

    def run_end(self, uri: str, span: TokenSpan) -> types.Position:
        """The end of the woven text ``span`` starts: the tokens after it, while each
        starts where the one before it ends."""
        end = span.end
        for other in self._spans.get(uri, ()):
            if other.start == end:
                end = other.end
        return _position(end)

    def spans(self, uri: str) -> list[TokenSpan]:
        return list(self._spans.get(uri, ()))

    def _place(self, doc: TextDocument, expected: _Expected) -> None:
        placed = [
            TokenSpan(
                _point(position_after(doc, expected.at, expected.text[: t.start])),
                _point(position_after(doc, expected.at, expected.text[: t.end])),
                t.text,
                t.prob,
                t.alternatives,
            )
            for t in expected.tokens
        ]
        spans = self._spans.get(doc.uri, []) + placed
        self._spans[doc.uri] = sorted(spans, key=lambda s: s.start)

    def _diff(
        self, doc: TextDocument, old: str, new: str
    ) -> tuple[types.Position, types.Position, str]:
        """The one range of ``old`` that ``new`` replaced, and the text it put there."""
        head = 0
        limit = min(len(old), len(new))
        while head < limit and old[head] == new[head]:
            head += 1
        tail = 0
        while tail < limit - head and old[-1 - tail] == new[-1 - tail]:
            tail += 1
        origin = types.Position(0, 0)
        return (
            position_after(doc, origin, old[:head]),
            position_after(doc, origin, old[: len(old) - tail]),
            new[head : len(new) - tail],
        )

    def _shift(
        self, doc: TextDocument, start: types.Position, end: types.Position, text: str
    ) -> None:
        spans = self._spans.get(doc.uri)
        if not spans:
            return
        lo, hi = _point(start), _point(end)
        after = _point(position_after(doc, start, text))
        kept = []
        for span in spans:
            if span.end <= lo:
                kept.append(span)
            elif span.start >= hi:
                kept.append(
                    attrs.evolve(
                        span, start=_moved(span.start, hi, after), end=_moved(span.end, hi, after)
                    )
                )
            # else: the edit touches the token, which is no longer what was woven
        self._spans[doc.uri] = kept


def _moved(point: Point, old_end: Point, new_end: Point) -> Point:
    """Where ``point``, at or after the end of a replaced range, is after the edit."""
    if point[0] == old_end[0]:
        return (new_end[0], new_end[1] + point[1] - old_end[1])
    return (point[0] + new_end[0] - old_end[0], point[1])


def _point(position: types.Position) -> Point:
    return (position.line, position.character)


def _position(point: Point) -> types.Position:
    return types.Position(point[0], point[1])

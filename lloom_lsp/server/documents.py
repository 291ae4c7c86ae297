"""The server's copy of each open document, read the way LSP reads it.

pygls' ``TextDocument`` got three things wrong, and this one gets them right:

* **Lines.** pygls splits with ``str.splitlines``, which also breaks at ``\\f``, ``\\v``,
  ``\\x1c``-``\\x1e``, ``\\x85``, U+2028 and U+2029 (text pasted from the web or a PDF carries
  them).  LSP breaks lines only at ``\\n``, ``\\r\\n`` and ``\\r``; anywhere else, every
  position after such a character named another place.
* **Past the end.** A character past the end of a line is the line's end (LSP says so), a
  line past the last one is the document's end.  pygls clamped the character to the line's
  length minus one, so an insertion past the end of the last line landed one character
  early and the server's copy differed from the client's.
* **Speed.** pygls split the whole document into lines and counted code units code point by
  code point in Python for every position: about 2 s of blocked event loop per request on a
  5 MB line.  Here the line starts are found once per version, and a position is converted
  within its own line, in C (``str.encode``), only as far as its column; an ASCII stretch
  needs no conversion at all.

Positions are in the negotiated encoding's code units (UTF-16 unless the client chose
UTF-8 or UTF-32).  A character in the middle of a character's code units (inside a
surrogate pair, or a UTF-8 sequence) is read just after that character, as pygls read it.
A range given end first is read start first.

:class:`LloomWorkspace` makes these documents, and :class:`DocumentsProtocol` gives pygls
that workspace instead of its own (pygls builds its ``Workspace`` in ``initialize``).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

import attrs
from lsprotocol import types
from pygls.protocol import LanguageServerProtocol
from pygls.workspace import PositionCodec, TextDocument, Workspace

__all__ = [
    "DocumentsProtocol",
    "LloomTextDocument",
    "LloomWorkspace",
    "lsp_document",
    "split_lines",
    "units",
]

#: The only line breaks LSP knows.
_BREAK = re.compile(r"(\r\n|\r|\n)")


def split_lines(text: str) -> list[str]:
    """``text`` cut into lines, each with its line break: like ``str.splitlines(True)``,
    but only at ``\\n``, ``\\r\\n`` and ``\\r``."""
    parts = _BREAK.split(text)  # text, break, text, break, ..., text
    lines = list(map(str.__add__, parts[0:-1:2], parts[1::2]))
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _line_starts(text: str) -> list[int]:
    """Where each line of ``text`` starts.  Text that ends in a line break (or is empty)
    ends with an empty line, as in LSP."""
    if "\r" not in text:  # the common case, three times faster
        lengths = map((1).__add__, map(len, text.split("\n")))
        return list(accumulate(lengths, initial=0))[:-1]
    return list(accumulate(map(len, _BREAK.split(text)), initial=0))[::2]


@attrs.frozen
class _Encoding:
    """How to count one position encoding's code units with ``str.encode``."""

    codec: str  # "" for UTF-32: code units are code points
    width: int  # bytes per code unit

    def units(self, text: str) -> int:
        if not self.codec or text.isascii():
            return len(text)
        # surrogatepass: a lone surrogate counts as one UTF-16 unit, three UTF-8 ones
        return len(text.encode(self.codec, "surrogatepass")) // self.width

    def index(self, text: str, count: int) -> tuple[int, int]:
        """(code points, code units) of the longest start of ``text`` that ends at or
        just past ``count`` code units: all of ``text`` if it is shorter."""
        head = text[:count]  # no character is less than one unit: enough
        if not self.codec or head.isascii():
            return len(head), len(head)
        try:
            data = head.encode(self.codec)
        except UnicodeEncodeError:  # a lone surrogate: the loop below is exact
            return self._index_slowly(head, count)
        cut = count * self.width
        if len(data) <= cut:
            return len(head), len(data) // self.width
        if self.width == 1:  # a UTF-8 continuation byte there: inside a character
            end = cut
            while end < len(data) and data[end] & 0xC0 == 0x80:
                end += 1
        else:  # a low surrogate there: inside a pair
            end = cut + 2 if 0xDC <= data[cut + 1] <= 0xDF else cut
        return len(data[:end].decode(self.codec)), end // self.width

    def _index_slowly(self, text: str, count: int) -> tuple[int, int]:
        done = 0
        for index, char in enumerate(text):
            if done >= count:
                return index, done
            done += self.units(char)
        return len(text), done


_ENCODINGS: dict[types.PositionEncodingKind | str | None, _Encoding] = {
    types.PositionEncodingKind.Utf8: _Encoding("utf-8", 1),
    types.PositionEncodingKind.Utf16: _Encoding("utf-16-le", 2),
    types.PositionEncodingKind.Utf32: _Encoding("", 1),
}


def _encoding(codec: PositionCodec) -> _Encoding:
    # pygls reads an encoding it does not know as UTF-16, and so does this
    return _ENCODINGS.get(codec.encoding, _ENCODINGS[types.PositionEncodingKind.Utf16])


def units(text: str, codec: PositionCodec) -> int:
    """The length of ``text`` in ``codec``'s code units (``client_num_units``, in C)."""
    return _encoding(codec).units(text)


class LloomTextDocument(TextDocument):
    """A pygls ``TextDocument`` that reads lines and positions as LSP does, quickly."""

    _starts: list[int]
    _starts_of: str | None = None  # the text _starts and _found belong to
    _found: dict[tuple[int, int], tuple[int, int]]

    def _fresh(self) -> str:
        """The text, with the caches emptied if it changed since they were filled."""
        source = self.source
        if source is not self._starts_of:
            self._starts = _line_starts(source)
            self._found = {}
            self._starts_of = source
        return source

    # -- lines

    @property
    def line_count(self) -> int:
        """The number of lines; text that ends in a line break ends with an empty one."""
        self._fresh()
        return len(self._starts)

    def line_start(self, line: int) -> int:
        """The index in :attr:`source` where ``line`` starts; past the last line, the end."""
        source = self._fresh()
        return self._starts[line] if line < len(self._starts) else len(source)

    def line_end(self, line: int) -> int:
        """The index in :attr:`source` where ``line``'s text ends, before its line break."""
        source = self._fresh()
        if line + 1 >= len(self._starts):
            return len(source)
        end = self._starts[line + 1]
        return end - 2 if source[end - 2 : end] == "\r\n" else end - 1

    @property
    def lines(self) -> Sequence[str]:
        """Each line with its line break, as pygls has them (no empty last line)."""
        return tuple(split_lines(self.source))

    # -- positions

    def units(self, text: str) -> int:
        """The length of ``text`` in the client's code units."""
        return units(text, self.position_codec)

    def locate(self, position: types.Position) -> tuple[int, int]:
        """(index in :attr:`source`, character) of a client position: a character past
        the end of its line is the line's end, a line past the last the document's end,
        and a character inside a character's code units that character's end."""
        source = self._fresh()
        key = (position.line, position.character)
        found = self._found.get(key)
        if found is not None:
            return found
        if position.line >= len(self._starts):
            found = (len(source), self.units(source[self._starts[-1] :]))
        else:
            start, end = self._starts[position.line], self.line_end(position.line)
            count = max(0, position.character)
            points, done = _encoding(self.position_codec).index(
                source[start : min(end, start + count)], count
            )
            found = (start + points, done)
        if len(self._found) > 64:
            self._found.clear()
        self._found[key] = found
        return found

    def offset_at_position(self, client_position: types.Position) -> int:
        return self.locate(client_position)[0]

    def client_position_at_offset(self, offset: int) -> types.Position:
        source = self._fresh()
        offset = max(0, min(offset, len(source)))
        line = bisect_right(self._starts, offset) - 1
        end = min(offset, self.line_end(line))
        return types.Position(line, self.units(source[self._starts[line] : end]))

    def end_position(self) -> types.Position:
        """The position of the document's end."""
        return self.client_position_at_offset(len(self.source))

    # -- changes

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        start = self.offset_at_position(change.range.start)
        end = self.offset_at_position(change.range.end)
        start, end = min(start, end), max(start, end)
        source, text = self._fresh(), change.text
        # Typing within a line moves the later lines' starts and nothing else: shifting
        # them is ten times faster than finding them again in a document of 100,000 lines.
        line = bisect_right(self._starts, start) - 1
        joins = not text and source[start - 1 : start] == "\r" and source[end : end + 1] == "\n"
        within = end <= self.line_end(line) and not joins and not _BREAK.search(text)
        self._source = new = source[:start] + text + source[end:]
        if within:
            delta = len(text) - (end - start)
            starts = self._starts
            self._starts = starts[: line + 1] + [at + delta for at in starts[line + 1 :]]
            self._found = {}
            self._starts_of = new


def lsp_document(doc: TextDocument) -> LloomTextDocument:
    """``doc`` itself, or for a pygls ``TextDocument`` made elsewhere, the same document
    read the LSP way (the text is shared, not copied)."""
    if isinstance(doc, LloomTextDocument):
        return doc
    return LloomTextDocument(
        doc.uri,
        source=doc.source,
        version=doc.version,
        language_id=doc.language_id,
        position_codec=doc.position_codec,
    )


class LloomWorkspace(Workspace):
    """A pygls ``Workspace`` whose documents are :class:`LloomTextDocument`\\ s."""

    @classmethod
    def like(cls, workspace: Workspace) -> LloomWorkspace:
        """A new, empty workspace with ``workspace``'s root, folders and settings."""
        return cls(
            workspace.root_uri,
            workspace._sync_kind,
            list(workspace.folders.values()),
            workspace.position_encoding,
        )

    def _create_text_document(
        self,
        doc_uri: str,
        source: str | None = None,
        version: int | None = None,
        language_id: str | None = None,
    ) -> LloomTextDocument:
        return LloomTextDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=self._sync_kind,
            position_codec=self.position_codec,
        )

    def get_text_document(self, doc_uri: str) -> LloomTextDocument:
        return lsp_document(super().get_text_document(doc_uri))


class DocumentsProtocol(LanguageServerProtocol):
    """A pygls protocol whose workspace is a :class:`LloomWorkspace`.

    pygls builds a plain ``Workspace`` in its ``initialize`` handler; the first look at it,
    which comes before any document is opened (didOpen goes through here), takes an empty
    :class:`LloomWorkspace` like it instead.
    """

    @property
    def workspace(self) -> LloomWorkspace:
        workspace = super().workspace
        if not isinstance(workspace, LloomWorkspace):
            workspace = self._workspace = LloomWorkspace.like(workspace)
        return workspace

"""The document model reads lines and positions as LSP does, and keeps the client's text.

Each property is checked against a model written the plain way (a loop over characters),
in every position encoding.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace import PositionCodec, TextDocument, Workspace

from lloom_lsp.engine.window import window_start
from lloom_lsp.server import create_server
from lloom_lsp.server.documents import LloomTextDocument, LloomWorkspace, split_lines, units
from lloom_lsp.server.positions import (
    end_of_document,
    from_lsp_story,
    position_after,
    text_before,
    word_fragment,
)

URI = "file:///story.txt"
ENCODINGS = ["utf-16", "utf-8", "utf-32"]
#: Every character str.splitlines breaks at that LSP does not.
NOT_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
#: Emoji (surrogate pairs in UTF-16), CJK, accents, every LSP line break, and the others.
CHARS = st.sampled_from(list("ab z\t.é猫🍎🙂\n\r" + NOT_BREAKS))
TEXT = st.text(CHARS, max_size=40)
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def document(text: str, encoding: str = "utf-16") -> LloomTextDocument:
    return LloomTextDocument(URI, text, 1, position_codec=PositionCodec(encoding))


# -- the model -----------------------------------------------------------------------------------


def model_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line's text, its break left out."""
    spans, start, i = [], 0, 0
    while i < len(text):
        if text[i] in "\r\n":
            width = 2 if text[i : i + 2] == "\r\n" else 1
            spans.append((start, i))
            i += width
            start = i
        else:
            i += 1
    spans.append((start, len(text)))
    return spans


def model_units(char: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(char.encode("utf-8", "surrogatepass"))
    if encoding == "utf-16":
        return 2 if ord(char) > 0xFFFF else 1
    return 1


def model_offset(text: str, line: int, character: int, encoding: str) -> int:
    """Past the last line: the end; past the end of a line: its end; inside a character's
    code units: just after it."""
    spans = model_lines(text)
    if line >= len(spans):
        return len(text)
    start, end = spans[line]
    count = 0
    for index in range(start, end):
        if count >= character:
            return index
        count += model_units(text[index], encoding)
    return end


def model_position(text: str, offset: int, encoding: str) -> types.Position:
    line = max(i for i, (start, _) in enumerate(model_lines(text)) if start <= offset)
    start = model_lines(text)[line][0]
    return types.Position(line, sum(model_units(c, encoding) for c in text[start:offset]))


# -- lines ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("separator", list(NOT_BREAKS))
def test_only_lsp_line_breaks_split_lines(separator: str) -> None:
    text = f"Page one{separator}still line one\nline two"
    doc = document(text)
    assert doc.line_count == 2
    assert doc.lines == (f"Page one{separator}still line one\n", "line two")
    assert doc.offset_at_position(types.Position(1, 4)) == text.index("line two") + 4
    assert text_before(doc, types.Position(1, 4)) == f"Page one{separator}still line one\nline"


@pytest.mark.parametrize(
    "text, lines",
    [
        ("", []),
        ("one", ["one"]),
        ("one\n", ["one\n"]),
        ("one\r\ntwo\rthree\nfour", ["one\r\n", "two\r", "three\n", "four"]),
        ("\r\r\n\n", ["\r", "\r\n", "\n"]),
    ],
)
def test_split_lines_keeps_each_break_with_its_line(text: str, lines: list[str]) -> None:
    assert split_lines(text) == lines
    assert document(text).lines == tuple(lines)


@SETTINGS
@given(text=TEXT)
def test_lines_are_lsp_lines(text: str) -> None:
    doc = document(text)
    spans = model_lines(text)
    assert doc.line_count == len(spans)
    for line, (start, end) in enumerate(spans):
        assert (doc.line_start(line), doc.line_end(line)) == (start, end)
    assert "".join(doc.lines) == text


# -- positions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
@SETTINGS
@given(text=TEXT, data=st.data())
def test_a_position_reads_where_the_client_means(
    encoding: str, text: str, data: st.DataObject
) -> None:
    doc = document(text, encoding)
    line = data.draw(st.integers(0, len(model_lines(text)) + 1), label="line")
    character = data.draw(st.one_of(st.integers(0, 12), st.just(2**31 - 1)), label="character")
    offset = doc.offset_at_position(types.Position(line, character))
    assert offset == model_offset(text, line, character, encoding)
    if line < len(model_lines(text)):
        _, column = doc.locate(types.Position(line, character))
        assert column == model_position(text, offset, encoding).character


@pytest.mark.parametrize("encoding", ENCODINGS)
@SETTINGS
@given(text=TEXT, data=st.data())
def test_an_offset_converts_to_its_position_and_back(
    encoding: str, text: str, data: st.DataObject
) -> None:
    doc = document(text, encoding)
    offset = data.draw(st.integers(0, len(text)), label="offset")
    if 0 < offset < len(text) and text[offset - 1 : offset + 1] == "\r\n":
        offset -= 1  # no position names the middle of a line break
    position = doc.client_position_at_offset(offset)
    assert position == model_position(text, offset, encoding)
    assert doc.offset_at_position(position) == offset
    assert units(text, PositionCodec(encoding)) == sum(model_units(c, encoding) for c in text)


@pytest.mark.parametrize(
    "encoding, character, offset",
    [
        ("utf-16", 12, 12),  # before the apple
        ("utf-16", 13, 13),  # inside its surrogate pair: just after it
        ("utf-16", 14, 13),
        ("utf-16", 15, 14),
        ("utf-8", 13, 13),  # inside its four bytes
        ("utf-8", 15, 13),
        ("utf-8", 16, 13),
        ("utf-8", 17, 14),
        ("utf-32", 13, 13),
        ("utf-32", 14, 14),
    ],
)
def test_surrogate_pairs_and_utf8_sequences(encoding: str, character: int, offset: int) -> None:
    text = "Once upon a 🍎 time"
    assert document(text, encoding).offset_at_position(types.Position(0, character)) == offset


def test_a_lone_surrogate_counts_as_pygls_counts_it() -> None:
    text = "a\ud83c\udf4eb 🍎c"  # two lone surrogates, then a real pair
    doc = document(text)
    assert doc.units(text) == 8
    assert doc.offset_at_position(types.Position(0, 2)) == 2  # between the lone ones
    assert doc.offset_at_position(types.Position(0, 6)) == 6  # inside the pair: after it
    assert doc.offset_at_position(types.Position(0, 7)) == 6
    assert doc.offset_at_position(types.Position(0, 8)) == 7


def test_past_the_end_of_a_line_means_its_end() -> None:
    doc = document("Once\r\nupon a time")
    assert doc.offset_at_position(types.Position(0, 100)) == 4
    assert doc.offset_at_position(types.Position(1, 100)) == len(doc.source)
    assert doc.offset_at_position(types.Position(7, 0)) == len(doc.source)
    assert end_of_document(doc) == types.Position(1, 11)
    assert end_of_document(document("ends with a break\n")) == types.Position(1, 0)


def test_a_pygls_document_is_read_the_lsp_way() -> None:
    doc = TextDocument(URI, "Page one\u2028still line one\nline two")
    assert text_before(doc, types.Position(1, 4)).endswith("one\nline")
    assert word_fragment(doc, types.Position(1, 4)) == ("line", types.Position(1, 0))


# -- changes -------------------------------------------------------------------------------------


def changed(text: str, *changes: types.TextDocumentContentChangeEvent, encoding: str = "utf-16"):
    """The text after ``changes``, with the document's lines checked against the model."""
    workspace = LloomWorkspace(None, position_encoding=encoding)
    workspace.put_text_document(types.TextDocumentItem(URI, "plaintext", 1, text))
    doc = workspace.get_text_document(URI)
    for version, change in enumerate(changes, 2):
        workspace.update_text_document(types.VersionedTextDocumentIdentifier(version, URI), change)
    spans = model_lines(doc.source)
    assert [(doc.line_start(i), doc.line_end(i)) for i in range(doc.line_count)] == spans
    return doc.source


def insert(line: int, character: int, text: str) -> types.TextDocumentContentChangePartial:
    at = types.Position(line, character)
    return types.TextDocumentContentChangePartial(range=types.Range(at, at), text=text)


def test_an_insertion_past_the_end_of_a_line_lands_at_its_end() -> None:
    assert changed("Once upon a time", insert(0, 100, ", the end")) == "Once upon a time, the end"
    assert changed("Once\nupon", insert(0, 5, "!")) == "Once!\nupon"
    assert changed("Once\r\nupon", insert(0, 5, "!")) == "Once!\r\nupon"
    assert changed("Once", insert(3, 0, "!")) == "Once!"
    assert changed("Once", insert(2**31 - 1, 2**31 - 1, "!")) == "Once!"


def test_a_line_break_split_across_changes() -> None:
    # "\r" then "\n": one CRLF break, so the text after it is on line 1
    text = changed("one\r", insert(1, 0, "\ntwo"))
    assert text == "one\r\ntwo"
    assert document(text).line_count == 2
    # deleting what stood between a "\r" and a "\n" joins them into one break
    gap = types.Range(types.Position(1, 0), types.Position(1, 1))
    text = changed("one\rx\ntwo", types.TextDocumentContentChangePartial(range=gap, text=""))
    assert text == "one\r\ntwo"
    assert document(text).lines == ("one\r\n", "two")
    # and a change that ends a line at "\r" before an "\n" already there
    assert changed("one\ntwo", insert(0, 3, "!\r")) == "one!\r\ntwo"


def test_a_range_given_end_first_is_read_start_first() -> None:
    backwards = types.Range(types.Position(0, 9), types.Position(0, 4))
    change = types.TextDocumentContentChangePartial(range=backwards, text=" apon")
    assert changed("Once upon a time", change) == "Once apon a time"


@st.composite
def _point(draw: st.DrawFn, text: str, encoding: str) -> tuple[types.Position, int]:
    """A position in ``text`` (past the end of a line or of the text too), and its offset."""
    line = draw(st.integers(0, len(model_lines(text))))
    character = draw(st.integers(0, 12))
    return types.Position(line, character), model_offset(text, line, character, encoding)


@st.composite
def edits(
    draw: st.DrawFn, text: str, encoding: str
) -> tuple[list[types.TextDocumentContentChangePartial], str]:
    """1 to 4 changes, each on the text the one before left, with positions past the end of
    a line or of the document among them, and the text they leave."""
    changes = []
    for _ in range(draw(st.integers(1, 4))):
        (start, a), (end, b) = draw(_point(text, encoding)), draw(_point(text, encoding))
        if b < a:
            (start, a), (end, b) = (end, b), (start, a)
        new = draw(st.text(CHARS, max_size=6))
        changes.append(
            types.TextDocumentContentChangePartial(range=types.Range(start, end), text=new)
        )
        text = text[:a] + new + text[b:]
    return changes, text


@pytest.mark.parametrize("encoding", ENCODINGS)
@SETTINGS
@given(text=TEXT, data=st.data())
def test_the_text_after_changes_is_the_clients(
    encoding: str, text: str, data: st.DataObject
) -> None:
    changes, expected = data.draw(edits(text, encoding), label="changes")
    assert changed(text, *changes, encoding=encoding) == expected


@pytest.mark.parametrize("encoding", ENCODINGS)
@SETTINGS
@given(text=TEXT, data=st.data())
def test_the_position_after_an_insertion(encoding: str, text: str, data: st.DataObject) -> None:
    doc = document(text, encoding)
    offset = data.draw(st.sampled_from(_edit_points(text)), label="offset")
    inserted = data.draw(st.text(CHARS, max_size=8), label="inserted")
    start = doc.client_position_at_offset(offset)
    after = position_after(doc, start, inserted)
    whole = text[:offset] + inserted + text[offset:]
    if not (inserted.endswith("\r") and text[offset : offset + 1] == "\n"):  # joined breaks
        assert after == model_position(whole, offset + len(inserted), encoding)


def _edit_points(text: str) -> list[int]:
    return [
        i for i in range(len(text) + 1) if not (0 < i < len(text) and text[i - 1 : i + 1] == "\r\n")
    ]


def test_a_full_change_replaces_the_text() -> None:
    whole = types.TextDocumentContentChangeWholeDocument(text="new\u2028text")
    assert changed("old", insert(0, 1, "x"), whole) == "new\u2028text"


# -- the story -----------------------------------------------------------------------------------

WORDS = st.sampled_from(["once", "upon", "a", "time", "🍎", " ", "  ", ". ", "\n", "\n\n", "\r\n"])


@SETTINGS
@given(
    words=st.lists(WORDS, max_size=200),
    max_chars=st.integers(1, 120),
    inserted=st.text(st.sampled_from(list("ab \n")), max_size=10),
)
def test_the_story_read_from_the_end_is_the_story_of_the_whole_text(
    words: list[str], max_chars: int, inserted: str
) -> None:
    text = "".join(words)
    doc = document(text)
    end = doc.client_position_at_offset(len(text))
    whole = text + inserted
    assert (
        from_lsp_story(doc, end, max_chars, inserted=inserted)
        == whole[window_start(whole, max_chars) :]
    )
    assert text_before(doc, end, inserted, last=7) == whole[-7:]


# -- a 5 MB line ---------------------------------------------------------------------------------


def test_a_five_megabyte_line() -> None:
    sentence = "Once upon a 🍎 time, the cat sat on the mat. "
    text = sentence * (5_000_000 // len(sentence.encode()) + 1)
    doc = LloomWorkspace(None)
    doc.put_text_document(types.TextDocumentItem(URI, "plaintext", 1, text))
    lloom = doc.get_text_document(URI)
    end = lloom.end_position()
    assert end == types.Position(0, len(text.encode("utf-16-le")) // 2)
    assert lloom.line_count == 1
    assert lloom.offset_at_position(end) == len(text)
    assert lloom.offset_at_position(types.Position(0, end.character - 2)) == len(text) - 2
    assert from_lsp_story(lloom, end, 16000) == text[window_start(text, 16000) :]
    assert word_fragment(lloom, types.Position(0, end.character - 2)) == (
        "mat",
        types.Position(0, end.character - 5),
    )
    change = insert(0, end.character + 100, "The end.")
    doc.update_text_document(types.VersionedTextDocumentIdentifier(2, URI), change)
    assert lloom.source == text + "The end."
    assert word_fragment(lloom, lloom.end_position()) == (
        "end.",
        types.Position(0, end.character + 4),
    )
    middle = lloom.client_position_at_offset(len(text) // 2)
    assert lloom.offset_at_position(middle) == len(text) // 2


# -- the server's workspace ----------------------------------------------------------------------


def test_the_server_reads_documents_with_this_model() -> None:
    server = create_server()
    folder = types.WorkspaceFolder("file:///stories", "stories")
    server.protocol._workspace = Workspace(
        "file:///stories", workspace_folders=[folder], position_encoding="utf-8"
    )
    workspace = server.workspace
    assert isinstance(workspace, LloomWorkspace)
    assert workspace.position_encoding == "utf-8"
    assert list(workspace.folders) == ["file:///stories"]
    assert server.workspace is workspace
    workspace.put_text_document(types.TextDocumentItem(URI, "plaintext", 1, "é\u2028b"))
    doc = server.document(URI)
    assert isinstance(doc, LloomTextDocument)
    assert doc.offset_at_position(types.Position(0, 2)) == 1  # "é" is two UTF-8 bytes
    assert doc.line_count == 1

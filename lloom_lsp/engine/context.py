"""What the model reads besides the window: the memory that leads it and the author's note.

The prompt of a weave is ``memory + window``, the author's note inserted in the window a
set number of paragraphs before the cursor (mikupad's "Author's Note", which it injects a
set number of newlines from the bottom).  Both keep the backend's prompt cache working:

* the memory is the prompt's first text, and the window's start moves in coarse steps
  (:mod:`.window`), so typing changes only the prompt's end; changing the memory changes
  its start, so the next weave reads the window once more, and no more;
* the note sits after every paragraph but its last ``depth``, so typing inside the paragraph
  at the cursor changes nothing before it; a new paragraph moves it down one, and the
  paragraphs after it are read again.

A document carries its own memory at its very top, in one of two forms that Markdown
renders as nothing or as metadata:

* YAML front matter (``---`` lines around it) with a ``memory:`` key: a plain or quoted
  one-line value, or a block scalar (``memory: |`` and indented lines);
* an HTML comment whose first word is ``memory``: ``<!-- memory`` ... ``-->``.

That block is then not part of the window.  Only the ``memory`` key is read, by a small
reader of that one key, not a YAML parser: nothing in the document is evaluated.

Pure text in, text out: nothing here knows LSP, files or a backend.
"""

from __future__ import annotations

import json
import re

import attrs

__all__ = [
    "MemoryBlock",
    "MemoryFormatError",
    "insert_note",
    "lead",
    "memory_block",
]

#: What separates the memory from the window: a paragraph break.
SEPARATOR = "\n\n"

_FRONT_OPEN = re.compile(r"\A\ufeff?---[ \t]*\r?\n")
_FRONT_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.MULTILINE)
_KEY = re.compile(r"^memory[ \t]*:(?P<value>.*)$")
_COMMENT_OPEN = re.compile(r"\A\ufeff?[ \t]*<!--[ \t]*memory\b[ \t:]*")
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")


class MemoryFormatError(ValueError):
    """A memory block at a document's top that cannot be read; the message says where."""


@attrs.frozen
class MemoryBlock:
    """The memory a document carries at its top."""

    text: str
    #: Where the window may start: just after the block (and the blank lines after it).
    end: int
    #: "front matter" or "memory comment", for the user.
    form: str


def memory_block(text: str) -> MemoryBlock | None:
    """The memory at the top of ``text`` (a document), or None where it has none.

    Raises :class:`MemoryFormatError` for a block that is meant as memory but cannot be
    read: an unclosed ``<!-- memory`` comment, an unterminated quoted value."""
    comment = _COMMENT_OPEN.match(text)
    if comment is not None:
        close = text.find("-->", comment.end())
        if close < 0:
            raise MemoryFormatError("the '<!-- memory' comment at the top has no closing '-->'")
        return MemoryBlock(
            _dedent(text[comment.end() : close]).strip(), _past_blank(text, close + 3), "comment"
        )
    opened = _FRONT_OPEN.match(text)
    if opened is None:
        return None
    closed = _FRONT_CLOSE.search(text, opened.end())
    if closed is None:
        return None  # a horizontal rule, not front matter
    memory = _memory_key(text[opened.end() : closed.start()].splitlines())
    if memory is None:
        return None  # front matter without memory: the window keeps it, as before
    return MemoryBlock(memory, _past_blank(text, closed.end()), "front matter")


def lead(memory: str) -> str:
    """What goes before the window: the memory and a paragraph break; nothing without one."""
    memory = memory.strip()
    return memory + SEPARATOR if memory else ""


def insert_note(window: str, note: str, depth: int) -> str:
    """``window`` with ``note`` as a paragraph of its own before its last ``depth``
    paragraphs (1: before the paragraph at the cursor).  Where the window has fewer
    paragraphs, the note leads it."""
    note = note.strip()
    if not note:
        return window
    breaks = list(_PARAGRAPH.finditer(window))
    depth = max(1, depth)
    if len(breaks) < depth:
        return note + SEPARATOR + window
    at = breaks[-depth].end()
    return window[:at] + note + SEPARATOR + window[at:]


# -- the one key of front matter --------------------------------------------------------


def _memory_key(lines: list[str]) -> str | None:
    for index, line in enumerate(lines):
        key = _KEY.match(line)
        if key is None:
            continue
        value = key.group("value").strip()
        rest = _indented(lines[index + 1 :])
        if value[:1] in ("|", ">"):
            if not re.fullmatch(r"[|>][+-]?[0-9]?[+-]?(?:[ \t]+#.*)?", value):
                raise MemoryFormatError(f"front matter: 'memory: {value}' is not a block scalar")
            body = _dedent("\n".join(rest))
            if value[0] == ">":
                body = re.sub(r"(?<=\S)\n(?=\S)", " ", body)
            return body.strip()
        if value[:1] == '"':
            return _quoted(value, rest, '"')
        if value[:1] == "'":
            return _quoted(value, rest, "'")
        value = re.sub(r"[ \t]+#.*$", "", value)
        return " ".join([value, *(line.strip() for line in rest)]).strip()
    return None


def _quoted(value: str, rest: list[str], quote: str) -> str:
    whole = " ".join([value, *(line.strip() for line in rest)]).strip()
    whole = re.sub(r"[ \t]+#.*$", "", whole) if whole.count(quote) >= 2 else whole
    if len(whole) < 2 or not whole.endswith(quote):
        raise MemoryFormatError(f"front matter: the quoted 'memory:' value has no closing {quote}")
    if quote == "'":
        return whole[1:-1].replace("''", "'").strip()
    try:
        decoded = json.loads(whole)
    except ValueError as exc:
        raise MemoryFormatError(f"front matter: the quoted 'memory:' value: {exc}") from exc
    return str(decoded).strip()


def _indented(lines: list[str]) -> list[str]:
    """The lines of a value that continue below its key: indented ones, and blank ones
    between them."""
    taken: list[str] = []
    for line in lines:
        if line.strip() and not line[:1].isspace():
            break
        taken.append(line)
    while taken and not taken[-1].strip():
        taken.pop()
    return taken


def _dedent(text: str) -> str:
    lines = text.split("\n")
    widths = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(widths, default=0)
    return "\n".join(line[cut:] for line in lines)


def _past_blank(text: str, index: int) -> int:
    """``index`` moved past the blank lines that follow it."""
    found = re.compile(r"[ \t]*(?:\r?\n[ \t]*)*(?:\r?\n)?").match(text, index)
    end = found.end() if found is not None else index
    # stop at the start of the line that has text, not in its indentation
    while end > index and text[end - 1] in " \t":
        end -= 1
    return end

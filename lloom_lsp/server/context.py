"""Where a document's memory comes from, and what the next weave there would send.

The memory (:mod:`lloom_lsp.engine.context`) of a document is the first of:

1. the block at the document's top: YAML front matter with a ``memory:`` key, or a
   ``<!-- memory ... -->`` comment (the window then leaves that block out);
2. a file beside the document, named like it with ``.memory.md`` for its extension
   (``chapter-3.md`` reads ``chapter-3.memory.md``), read as text, never run;
3. the setting ``lloom.story.memory``.

A block or file that cannot be read is reported (the caller shows it once) and the weave
goes on without memory.  :func:`show_context` answers ``lloom.showContext``: the prompt the
next weave at a spot would send, its parts, and its token count from the backend's
tokenizer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from ..backends import BackendError
from ..config import Settings
from ..engine import split_story
from ..engine.context import MemoryFormatError, insert_note, lead, memory_block

if TYPE_CHECKING:
    from ..backends import Backend

__all__ = ["Memory", "MemorySources", "StoryContext", "memory_file", "render_context"]

log = logging.getLogger("lloom_lsp.server.context")

#: A memory file longer than this is refused: memory leads every prompt.
MAX_MEMORY_FILE = 64 * 1024
#: Only this much of a document's top is searched for its memory block.
MAX_BLOCK = 64 * 1024
#: The name a memory file beside a document ends with.
MEMORY_SUFFIX = ".memory.md"


@attrs.frozen
class Memory:
    """A document's memory and where it came from."""

    text: str = ""
    #: "front matter", "comment", "file <path>", "setting lloom.story.memory"; "" for none.
    source: str = ""
    #: Where the document's own block ends: the window starts no earlier (0: no block).
    block_end: int = 0
    #: Why a block or file meant as memory is not used; None when all is well.
    problem: str | None = None


@attrs.frozen
class StoryContext:
    """The story a weave reads: the memory's lead, then the window with the note in it."""

    memory: Memory
    note: str
    note_depth: int
    #: The document's text the window holds (after the cursor's held whitespace: see
    #: :func:`~lloom_lsp.engine.split_story`), the note inserted.
    window: str

    @property
    def story(self) -> str:
        return lead(self.memory.text) + self.window


def memory_file(doc_path: str) -> Path | None:
    """The memory file beside the document at ``doc_path`` (None for a memory file)."""
    path = Path(doc_path)
    if path.name.endswith(MEMORY_SUFFIX):
        return None
    stem = path.stem if path.suffix else path.name
    return path.with_name(stem + MEMORY_SUFFIX)


class MemorySources:
    """Finds each document's memory; memory files are read again only when they change."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[tuple[int, int], str]] = {}

    def memory_for(self, doc: TextDocument, settings: Settings) -> Memory:
        try:
            block = memory_block(doc.source[:MAX_BLOCK])
        except MemoryFormatError as exc:
            return self._fallback(doc, settings, f"the memory block of {doc.uri}: {exc}")
        if block is not None:
            return Memory(block.text, block.form, block.end)
        return self._fallback(doc, settings, None)

    def _fallback(self, doc: TextDocument, settings: Settings, problem: str | None) -> Memory:
        path = _fs_path(doc.uri)
        beside = memory_file(path) if path else None
        if beside is not None:
            try:
                text = self._read(beside)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                return Memory(problem=problem or f"the memory file {beside}: {_why(exc)}")
            if text is not None:
                return Memory(text.strip(), f"file {beside}", problem=problem)
        if settings.story.memory.strip():
            return Memory(
                settings.story.memory.strip(), "setting lloom.story.memory", problem=problem
            )
        return Memory(problem=problem)

    def _read(self, path: Path) -> str | None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._files.pop(path, None)
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        known = self._files.get(path)
        if known is not None and known[0] == key:
            return known[1]
        if not path.is_file():
            raise ValueError("not a file")
        if stat.st_size > MAX_MEMORY_FILE:
            raise ValueError(f"{stat.st_size} bytes; memory files are at most {MAX_MEMORY_FILE}")
        text = path.read_bytes().decode("utf-8-sig")
        self._files[path] = (key, text)
        return text


def _fs_path(uri: str) -> str | None:
    if not uri.startswith("file:"):
        return None
    try:
        return to_fs_path(uri)
    except Exception:  # an odd URI has no file beside it
        return None


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    return str(exc)


def window_text(window: str, memory: Memory, window_offset: int, note: str, depth: int) -> str:
    """The window as the model reads it: without the document's own memory block (the
    window starts at ``window_offset`` in the document), the note inserted."""
    if memory.block_end > window_offset:
        window = window[memory.block_end - window_offset :]
    return insert_note(window, note, depth)


# -- lloom.showContext ------------------------------------------------------------------


async def show_context(
    backend: Backend, settings: Settings, context: StoryContext, where: str
) -> dict[str, Any]:
    """What the next weave would send: the prompt exactly, its parts, its token count and
    the backend's context, and ``text``, all of it rendered for a read-only document."""
    prompt, held = split_story(context.story)
    tokens = await _ask(backend, "count_tokens", prompt)
    n_ctx = await _ask(backend, "context_tokens")
    result: dict[str, Any] = {
        "prompt": prompt,
        "held": held,
        "memory": context.memory.text,
        "memorySource": context.memory.source,
        "note": context.note,
        "noteDepth": context.note_depth,
        "window": split_story(context.window)[0],
        "tokens": tokens,
        "contextTokens": n_ctx,
        "backend": settings.backend.url,
        "problem": context.memory.problem,
    }
    result["text"] = render_context(result, where)
    return result


async def _ask(backend: Backend, name: str, *args: Any) -> int | None:
    method = getattr(backend, name, None)
    if method is None:
        return None
    try:
        answer = await method(*args)
    except BackendError as exc:
        log.info("showContext: no %s from the backend: %s", name, exc)
        return None
    return answer if isinstance(answer, int) else None


#: The line after which the rendered context holds the prompt, character for character.
PROMPT_RULE = "──── the prompt, exactly as sent ────"


def render_context(data: dict[str, Any], where: str) -> str:
    """The context as a document: a few lines about it, then the prompt, unchanged."""
    tokens, n_ctx = data.get("tokens"), data.get("contextTokens")
    count = f"{tokens} tokens" if tokens is not None else "tokens: the backend cannot count"
    if n_ctx is not None:
        count += f" of {n_ctx} in its context"
    memory = data.get("memory") or ""
    lines = [
        f"LLooM context: {where}",
        f"Backend: {data.get('backend')}: {count}",
        (
            f"Memory: {len(memory)} characters from {data.get('memorySource')}"
            if memory
            else "Memory: none (front matter 'memory:', a '<!-- memory' comment, "
            "<name>.memory.md beside the document, or lloom.story.memory)"
        ),
    ]
    if data.get("problem"):
        lines.append(f"Memory problem: {data['problem']}")
    note = data.get("note") or ""
    lines.append(
        f"Author's note: {len(note)} characters, before the last {data.get('noteDepth')} "
        "paragraph(s)"
        if note
        else "Author's note: off (lloom.story.authorsNote)"
    )
    held = data.get("held") or ""
    lines.append(
        f"Window: {len(data.get('window') or '')} characters of the document; "
        + (
            f"held whitespace {held!r} (not sent: matched against each beam's first whitespace)"
            if held
            else "no held whitespace"
        )
    )
    return "\n".join(lines) + "\n" + PROMPT_RULE + "\n" + str(data.get("prompt") or "")


def prompt_of(rendered: str) -> str:
    """The prompt in a rendered context (its text after :data:`PROMPT_RULE`)."""
    return rendered.split(PROMPT_RULE + "\n", 1)[1]

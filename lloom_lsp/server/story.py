"""The story: which text before the cursor the model reads, owned in one place.

Every feature asks :meth:`StoryWindows.story_at` (through ``LloomServer.story``) and
nothing else computes a story.  Two things decide it:

* **where it starts**: :func:`lloom_lsp.engine.window.window_start`, whose start moves in
  coarse steps, so typing at the end changes only the prompt's end and the backend's
  prompt cache stays warm;
* **how long it may be**: ``lloom.story.maxContextChars``, and no more than the backend can
  hold.  The backend's context (llama-server's per-slot ``n_ctx`` from ``/props``, vLLM's
  ``max_model_len``, Ollama's ``num_ctx``) less room for the beam and its chain
  (``maxDepth`` four times over: a deeper weave doubles it), turned into characters with
  the tokenizer's own count of a sample of the document where the backend can count
  (llama-server's ``/tokenize``), else at 3 characters a token.  Where nothing says, the
  server's own "exceeds the context" error teaches it (:meth:`StoryWindows.too_long`).

The limit is learned once per backend and then stays put, so the window does too.  When it
is below the setting, the log says so once.

The story is the document's memory, then the window with the author's note in it
(:mod:`.context`): the memory and the note take their characters from the window's size.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types
from pygls.workspace import TextDocument

from ..backends import BackendContextError, BackendError
from ..config import BackendSettings, Settings
from ..engine.context import lead
from ..engine.suffix import AFTER_CHARS, after_cursor
from ..engine.window import window_start
from .context import Memory, MemorySources, StoryContext, window_text
from .documents import lsp_document
from .positions import from_lsp_story, text_before

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..backends import Backend

__all__ = ["CHARS_PER_TOKEN", "SAFETY", "StoryWindows", "reserve_tokens"]

log = logging.getLogger("lloom_lsp.server.story")

#: Characters per token where the backend cannot count tokens: English prose runs 4 to 4.6
#: on real vocabularies, the project's 512-token test vocabulary about 2.  Err small.
CHARS_PER_TOKEN = 3.0
#: Of the measured characters per token, use this much: the next story may be denser.
SAFETY = 0.85
#: Text counted to measure characters per token (its last this many characters).
SAMPLE_CHARS = 4000


def reserve_tokens(max_depth: int) -> int:
    """Tokens of a request's context kept free of story: a beam of up to twice maxDepth
    (a deeper weave doubles it), the chain after it, and the template's few tokens."""
    return 4 * max_depth + 64


@attrs.define
class _Limit:
    """What one backend can hold."""

    tokens: int | None = None  # per request; None: nothing said so far
    chars_per_token: float | None = None  # measured; None: not yet
    asked: bool = False  # the backend was asked for its context
    said: int = 0  # the window size last said in the log
    #: One question at a time: every keystroke's warm-up asks for the story.
    lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)


class StoryWindows:
    """The story for a spot in a document, sized to the backend its settings use."""

    def __init__(self, backend_for: Callable[[Settings], Backend]) -> None:
        self._backend_for = backend_for
        self._limits: dict[BackendSettings, _Limit] = {}
        self.memories = MemorySources()
        #: Shows the user a memory block or file that cannot be read (the server sets it).
        self.warn: Callable[[str], None] = log.warning
        self._problems: dict[str, str] = {}  # uri: the problem last shown
        #: The memory leads of recent stories, kept when a story is cut shorter.
        self._leads: dict[str, None] = {}

    # -- the story ------------------------------------------------------------------------

    async def story_at(
        self, doc: TextDocument, position: types.Position, settings: Settings, *, inserted: str = ""
    ) -> str:
        """The story at ``position`` (with ``inserted`` typed there first), its size learned
        from the backend on first use."""
        return (await self.context_at(doc, position, settings, inserted=inserted)).story

    async def context_at(
        self, doc: TextDocument, position: types.Position, settings: Settings, *, inserted: str = ""
    ) -> StoryContext:
        """:meth:`story_at` in its parts: memory, note and window."""
        await self.learn(settings, text_before(doc, position, inserted, last=SAMPLE_CHARS))
        return self.context_now(doc, position, settings, inserted=inserted)

    def story_now(
        self, doc: TextDocument, position: types.Position, settings: Settings, *, inserted: str = ""
    ) -> str:
        """:meth:`story_at` with what is known now, without asking the backend (for code
        that cannot wait: the stories of cached weaves were sized before)."""
        return self.context_now(doc, position, settings, inserted=inserted).story

    def after_at(self, doc: TextDocument, position: types.Position, settings: Settings) -> str:
        """The text after the cursor that a weave at ``position`` reads (issue 20, part 4):
        up to its paragraph's end (:func:`lloom_lsp.engine.suffix.after_cursor`); empty
        with ``lloom.weave.afterCursor`` off."""
        if not settings.weave.after_cursor:
            return ""
        doc = lsp_document(doc)
        start = doc.offset_at_position(position)
        return after_cursor(doc.source[start : start + AFTER_CHARS + 4])

    def context_now(
        self, doc: TextDocument, position: types.Position, settings: Settings, *, inserted: str = ""
    ) -> StoryContext:
        """:meth:`context_at` with what is known now."""
        memory = self.memories.memory_for(doc, settings)
        self._report(doc.uri, memory.problem)
        end = lsp_document(doc).offset_at_position(position)
        if end < memory.block_end:
            memory = Memory()  # writing in the memory block itself: it is the story
        story = settings.story
        note = story.authors_note.strip()
        leading = len(lead(memory.text)) + (len(note) + 2 if note else 0)
        window = from_lsp_story(
            doc, position, max(16, self.max_chars(settings) - leading), inserted=inserted
        )
        offset = end + len(inserted) - len(window)
        context = StoryContext(
            memory,
            note,
            story.authors_note_depth,
            window_text(window, memory, offset, note, story.authors_note_depth),
        )
        if memory.text:
            self._leads[context.story[: len(context.story) - len(context.window)]] = None
            while len(self._leads) > 16:
                del self._leads[next(iter(self._leads))]
        return context

    def _report(self, uri: str, problem: str | None) -> None:
        """Show a memory problem once, until it is gone."""
        if problem is None:
            self._problems.pop(uri, None)
        elif self._problems.get(uri) != problem:
            self._problems[uri] = problem
            self.warn(f"LLooM: {problem}; weaving without it.")

    def max_chars(self, settings: Settings) -> int:
        """The window's size in characters: the setting, or less where the backend holds
        less."""
        setting = settings.story.max_context_chars
        limit = self._limits.get(settings.backend)
        if limit is None or limit.tokens is None:
            return setting
        budget = max(16, limit.tokens - reserve_tokens(settings.weave.max_depth))
        ratio = (limit.chars_per_token or CHARS_PER_TOKEN) * (
            SAFETY if limit.chars_per_token else 1.0
        )
        chars = max(16, int(budget * ratio))
        if chars < setting and limit.said != chars:
            limit.said = chars
            log.warning(
                "the story window is %d characters, not lloom.story.maxContextChars %d: "
                "the server at %s holds %d tokens a request (%.1f characters a token)",
                chars,
                setting,
                settings.backend.url,
                limit.tokens,
                ratio,
            )
        return min(setting, chars)

    # -- what the backend holds -------------------------------------------------------------

    async def learn(self, settings: Settings, sample: str) -> None:
        """Ask the backend once for its context, and count ``sample``'s tokens once it is
        long enough to say how many characters a token is."""
        limit = self._limits.setdefault(settings.backend, _Limit())
        if limit.asked and (limit.tokens is None or limit.chars_per_token is not None):
            return  # all known
        async with limit.lock:
            await self._learn(limit, settings, sample)

    async def _learn(self, limit: _Limit, settings: Settings, sample: str) -> None:
        backend = self._backend_for(settings)
        if not limit.asked:
            try:
                tokens = await _call(backend, "context_tokens")
            except BackendError as exc:  # the weave reports a backend that fails
                log.info("no context size from %s: %s", settings.backend.url, exc)
                return
            limit.asked = True
            if tokens:
                limit.tokens = tokens if limit.tokens is None else min(limit.tokens, tokens)
        if limit.tokens is None or limit.chars_per_token is not None:
            return
        if len(sample) * 2 < SAMPLE_CHARS and len(sample) < settings.story.max_context_chars:
            return  # too short to measure, and it fits anyway
        try:
            counted = await _call(backend, "count_tokens", sample)
        except BackendError as exc:
            log.info("no token count from %s: %s", settings.backend.url, exc)
            counted = None
        if counted:
            limit.chars_per_token = len(sample) / counted
        else:
            limit.chars_per_token = CHARS_PER_TOKEN / SAFETY  # asked: do not ask again

    def too_long(self, settings: Settings, exc: BackendContextError, story: str) -> str | None:
        """The server refused ``story`` as longer than its context: remember what it said,
        and return the shorter story to weave instead (None: nothing shorter helps)."""
        limit = self._limits.setdefault(settings.backend, _Limit())
        before = self.max_chars(settings)
        if exc.n_ctx:
            limit.tokens = exc.n_ctx if limit.tokens is None else min(limit.tokens, exc.n_ctx)
        if exc.n_prompt:
            measured = len(story) / exc.n_prompt
            limit.chars_per_token = min(limit.chars_per_token or measured, measured)
        elif limit.tokens is not None and not exc.n_ctx:
            limit.tokens = limit.tokens * 3 // 4  # it said too long, not by how much
        if limit.tokens is None:
            limit.tokens = 2048  # a server that names no size: try the common small one
        limit.asked = True
        chars = self.max_chars(settings)
        if chars >= min(before, len(story)):
            return None
        # the memory leads the shorter story too
        kept = max((known for known in self._leads if story.startswith(known)), key=len, default="")
        rest = story[len(kept) :]
        return kept + rest[window_start(rest, max(16, chars - len(kept))) :]


async def _call(backend: Backend, name: str, *args: Any) -> Any:
    method = getattr(backend, name, None)
    return await method(*args) if method is not None else None

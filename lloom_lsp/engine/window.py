"""The story window: which part of the text before the cursor the model reads.

A backend's prompt cache (llama-server's slots, vLLM's prefix cache) only helps a prompt
that starts with what it saw before.  A window that is simply "the last N characters"
moves its start with every character typed at its end, so in a document longer than N
every typed word makes a prompt that shares nothing with the last one, and the whole
story is evaluated again (3,400 tokens, 16 s on 2 cores, measured).

So the window's start moves in coarse steps.  Its candidate starts lie on a grid of
``N / STEPS`` characters of the text; the window starts at the first grid point that
leaves at most N characters, moved forward to the next paragraph, sentence or word
boundary so the story never starts mid-word.  Typing at the end changes only the
prompt's end until a quarter window has been typed; then the start moves once.  The
window is therefore between about five eighths of N and N characters long.

Pure text in, an index out: nothing here knows LSP, tokens or a backend.
"""

from __future__ import annotations

import re

__all__ = ["STEPS", "window_start"]

#: The window's start moves in steps of ``max_chars // STEPS`` characters.
STEPS = 4

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE = re.compile(r"\n\s*")
_SENTENCE = re.compile("[.!?\u2026][\"'\u201d\u2019)\\]]*\\s+")
_SPACE = re.compile(r"\s+")


def window_start(text: str, max_chars: int) -> int:
    """Where the story starts in ``text`` (everything before the cursor) for a window of at
    most ``max_chars`` characters.  0 when the whole text fits.

    The start depends only on ``len(text) - max_chars`` rounded up to the grid and on the
    text around that grid point, so text added at the end moves it only when the end
    crosses a grid step.
    """
    overflow = len(text) - max_chars
    if overflow <= 0:
        return 0
    step = max(1, max_chars // STEPS)
    grid = -(-overflow // step) * step  # the first grid point at or past the overflow
    if grid >= len(text):
        return len(text)
    # the boundary to start after: the nearest paragraph, line, sentence or word end within
    # half a step past the grid point (so the window stays within max_chars)
    reach = text[grid : grid + step // 2]
    for pattern in (_PARAGRAPH, _LINE, _SENTENCE, _SPACE):
        found = pattern.search(reach)
        if found is not None:
            return grid + found.end()
    # one word longer than half a step: start after its end, or at the grid point
    found = _SPACE.search(text, grid + len(reach))
    return found.end() if found is not None else grid

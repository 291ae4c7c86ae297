"""What follows the cursor: the words after it, read by the weave (issue 20).

A weave in the middle of a paragraph knows the words that come next.  They are used twice:

* A beam that repeats them is ranked as a repeat of the story is
  (:func:`.prose.repeats_next`, the ``repeats`` setting).
* Where the backend can score given tokens, the finished beams are also ranked by how well
  they lead into them.  One request per beam, with the story and the beam already in the
  backend's cache, gives the log-probabilities of the next words' first tokens after the
  beam (:data:`LEAD_WORDS` words, at most :data:`LEAD_TOKENS` tokens): the beam's ``lead``.
  Its rank value then counts them as if the beam went on into the next words
  (:meth:`.beam.Beam.rank_value`), so "walked to the" before "door" outranks "walked
  slowly" before "to the door" only when the model thinks it leads there as well.

llama-server scores by constraining a greedy completion to the next words' token ids (a
grammar of ``<[id]>`` references); its probabilities are the raw softmax, so each is the
model's own probability of that token there.  Backends that cannot (the OpenAI-compatible
servers, Ollama, chat models) skip the ranking; the demotion still applies.

Every prompt of the weave also carries the text after the cursor as its ``suffix``: a
backend whose model fills in the middle (llama-server's ``/infill`` with FIM tokens,
backends/infill.py) weaves with it in view, and then declines to score the leads (it answers
None: the beams were woven knowing the next words); the demotion still applies.  Gemma 3
270M, the real model here, has no FIM tokens (``/infill`` answers 501 "prefix token is
missing"), so it weaves by the demotion and the ranking.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import attrs

from .beam import Beam
from .source import Prompt

__all__ = [
    "AFTER_CHARS",
    "LEAD_TOKENS",
    "LEAD_WORDS",
    "SuffixScorer",
    "after_cursor",
    "lead_text",
    "score_leads",
]

log = logging.getLogger("lloom_lsp.engine.suffix")

#: At most this much of the text after the cursor is read (it ends at its paragraph's end).
AFTER_CHARS = 400
#: Words of the text after the cursor whose tokens score a beam's lead into them.
LEAD_WORDS = 3
#: At most this many of their tokens.
LEAD_TOKENS = 4

_PARAGRAPH_END = re.compile(r"\r?\n[ \t]*\r?\n")
_WORD = re.compile(r"\s*\S+")
#: A word after a beam that ends in one of these follows it without a space.
_NO_SPACE_AFTER = " \t\r\n([{\u201c\u2018-\u2013\u2014/"


@runtime_checkable
class SuffixScorer(Protocol):
    """A backend that can say how probable given text is after a prompt."""

    async def suffix_logprobs(
        self, prompt: Prompt, text: str, max_tokens: int
    ) -> tuple[float, ...] | None:
        """The log-probability of each of the first ``max_tokens`` tokens of ``text`` (as
        the model tokenizes it), in turn, after ``prompt``; None where it cannot say or the
        server fails (logged: the ranking is skipped, the weave is not)."""
        ...


def after_cursor(text: str, max_chars: int = AFTER_CHARS) -> str:
    """The text after the cursor that a weave reads, from ``text`` (all that follows the
    cursor): up to the end of its paragraph (a blank line), at most ``max_chars`` cut back
    to a whole word.  Empty when the cursor ends its paragraph: nothing follows there."""
    end = _PARAGRAPH_END.search(text[: max_chars + 4])
    after = text[: end.start()] if end else text[:max_chars]
    if not end and len(text) > max_chars:
        cut = max(after.rfind(" "), after.rfind("\n"))
        after = after[:cut] if cut > 0 else after
    return after if after.strip() else ""


def lead_text(beam_text: str, after: str, words: int = LEAD_WORDS) -> str:
    """The next words as they follow a beam: the first ``words`` words of ``after`` with
    what comes before them, and a space before them where they begin with a word and the
    beam ends in neither a space nor an opening bracket or dash ("said," then "there": the
    writer adds that space; the model reads it)."""
    lead = "".join(_WORD.findall(after)[:words])
    if lead[:1].isalnum() and beam_text and beam_text[-1] not in _NO_SPACE_AFTER:
        lead = " " + lead
    return lead


async def score_leads(
    source: object,
    beams: Sequence[Beam],
    prompt_of: Callable[[Beam], Prompt],
    after: str,
    limiter: asyncio.Semaphore,
) -> list[Beam]:
    """``beams`` with ``lead`` set (see the module docstring), or as they were where the
    source cannot score, or fails to (it answers None and logs why): a weave that succeeded
    is not lost for its ranking."""
    if not isinstance(source, SuffixScorer) or not after.strip():
        return list(beams)

    async def lead(beam: Beam) -> tuple[float, ...] | None:
        async with limiter:
            return await source.suffix_logprobs(
                prompt_of(beam), lead_text(beam.text, after), LEAD_TOKENS
            )

    leads = await asyncio.gather(*(lead(beam) for beam in beams))
    scored = [(beam, lead) for beam, lead in zip(beams, leads) if lead is not None]
    if len(scored) < len(beams):
        return list(beams)  # the backend cannot score: rank every beam alike, without it
    return [attrs.evolve(beam, lead=lead) for beam, lead in scored]

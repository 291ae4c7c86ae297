"""Beams: what a finished path through the tree looks like to callers, and the
byte-level rules that decide where a beam ends (stop strings, UTF-8 boundaries) and
how it joins the story (whitespace healing).
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from .source import Candidate

__all__ = [
    "Beam",
    "BeamToken",
    "complete_utf8_length",
    "find_stop",
    "heal_whitespace",
    "make_beam",
    "rank_beams",
    "split_story",
]

# Probability used for log() when a backend reports exactly zero.
_TINY = 1e-45


@attrs.frozen
class BeamToken:
    """One token of a beam, as shown to the user."""

    text: str
    prob: float
    token_id: int | None


@attrs.frozen
class Beam:
    """A finished suggestion.

    ``text`` continues the prompt (the story with its trailing whitespace held back);
    ``insert_text`` is what to insert at the cursor, whitespace healed.
    """

    text: str
    insert_text: str
    tokens: tuple[BeamToken, ...]
    score: float  # the seed's score: sum of token probabilities
    joint: float  # product of token probabilities
    mean_logprob: float
    finish: str  # depth | stop | eos | limit

    @property
    def probs(self) -> tuple[float, ...]:
        return tuple(t.prob for t in self.tokens)

    def rank_value(self, rank: str) -> float:
        return {"lloom": self.score, "joint": self.joint, "mean": self.mean_logprob}[rank]

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "insertText": self.insert_text,
            "score": self.score,
            "joint": self.joint,
            "meanLogprob": self.mean_logprob,
            "finish": self.finish,
            "tokens": [{"text": t.text, "prob": t.prob, "id": t.token_id} for t in self.tokens],
        }


def split_story(story: str) -> tuple[str, str]:
    """(prompt, held): the story without its trailing whitespace, and that whitespace.

    BPE vocabularies glue a leading space to the next word, so a prompt that ends in
    a space asks the model for an unlikely token.  The held whitespace is matched
    against each beam's leading whitespace when it is inserted.
    """
    prompt = story.rstrip()
    return prompt, story[len(prompt) :]


def heal_whitespace(held: str, text: str) -> str:
    """Drop from ``text`` the leading whitespace the document already has.

    ``held`` is the whitespace between the prompt and the cursor.  Inserting the
    result at the cursor never doubles it; where the beam has less whitespace than the
    document, the document's stays (nothing the user typed is removed).
    """
    i = 0
    while i < len(held) and i < len(text) and held[i] == text[i]:
        i += 1
    return text[i:]


def complete_utf8_length(data: bytes) -> int:
    """Length of the longest prefix of ``data`` that does not end inside a UTF-8 character.

    The stdlib's incremental decoder holds back exactly the bytes of an unfinished last
    character (invalid bytes elsewhere are left for the caller to drop).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
    decoder.decode(data, final=False)
    pending, _ = decoder.getstate()
    return len(data) - len(pending)


def find_stop(data: bytes, stops: Sequence[bytes]) -> int | None:
    """End offset of the first stop string that follows some non-stop text, or None.

    A beam that *starts* with a stop string (after whitespace) continues: the stop
    must come after other text.  At one offset the longest stop string wins, and the
    whole stop string is kept, whatever its length.
    """
    best: tuple[int, int] | None = None  # (start, -length)
    for stop in stops:
        start = data.find(stop)
        while start != -1:
            if _has_text(data[:start], stops):
                key = (start, -len(stop))
                if best is None or key < best:
                    best = key
                break
            start = data.find(stop, start + 1)
    if best is None:
        return None
    return best[0] - best[1]


def _has_text(prefix: bytes, stops: Sequence[bytes]) -> bool:
    for stop in sorted(stops, key=len, reverse=True):
        prefix = prefix.replace(stop, b"")
    return bool(prefix.strip())


def make_beam(path: Sequence[Candidate], data: bytes, held: str, finish: str) -> Beam:
    """Build the finished beam from its token path and its (possibly trimmed) bytes."""
    data = data[: complete_utf8_length(data)]
    # Bytes that are not UTF-8 at all (a stray continuation byte a small model emits
    # after a complete character) cannot be inserted as text: drop them, not show "\ufffd".
    text = data.decode("utf-8", errors="ignore")
    tokens = tuple(
        BeamToken(c.data.decode("utf-8", errors="replace"), c.prob, c.token_id)
        for c in path
        if not c.is_end
    )
    probs = [c.prob for c in path]
    logs = [math.log(max(p, _TINY)) for p in probs]
    return Beam(
        text=text,
        insert_text=heal_whitespace(held, text),
        tokens=tokens,
        score=sum(probs),
        joint=math.exp(sum(logs)) if logs else 1.0,
        mean_logprob=sum(logs) / len(logs) if logs else 0.0,
        finish=finish,
    )


def rank_beams(beams: Iterable[Beam], rank: str) -> list[Beam]:
    """Best first by ``rank``; one beam per text (the best one)."""
    ordered = sorted(beams, key=lambda b: (-b.rank_value(rank), b.text))
    seen: set[str] = set()
    out: list[Beam] = []
    for beam in ordered:
        if beam.text in seen or not beam.text.strip():
            continue
        seen.add(beam.text)
        out.append(beam)
    return out

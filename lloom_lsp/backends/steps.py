"""One generated position in llama-server's per-token shape, which llama-server's native
``/completion`` and the chat-style ``logprobs.content[]`` of its, Ollama's and OpenAI's
``/v1`` endpoints share: the llama.cpp and OpenAI-style backends both parse with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..engine.source import Candidate, Step, sort_candidates
from .base import clamp_prob, prob_from_logprob

__all__ = ["parse_step"]

_BYTE_TOKEN = re.compile(r"^byte: \\x([0-9a-fA-F]{2})$")

#: Tokens that are markers, not text, though the server writes them as text: Gemma 3's image
#: and audio markers are "user-defined" tokens, not control tokens (which llama-server writes
#: with empty ``bytes``), and a beam ran "<start_of_image>The whale was a large," on Gemma 3
#: 270M.  ``<|...|>`` is the other families' spelling of a special token.  Taking one ends the
#: beam, as the end of sequence does: nothing after it is prose.
_MARKERS = re.compile(
    rb"<(start_of_image|end_of_image|image_soft_token|start_of_audio|end_of_audio"
    rb"|audio_soft_token)>|<\|[a-z_]+\|>"
)


def parse_step(entry: Mapping[str, Any]) -> Step:
    """One position: current (``top_logprobs``), post-sampling (``top_probs``), old (``probs``)."""
    if "top_logprobs" in entry:
        top = [
            _candidate(alt, prob_from_logprob(alt.get("logprob"))) for alt in entry["top_logprobs"]
        ]
        chosen = _withheld(_candidate(entry, prob_from_logprob(entry.get("logprob"))), top)
    elif "top_probs" in entry:
        top = [_candidate(alt, clamp_prob(alt.get("prob"))) for alt in entry["top_probs"]]
        chosen = _candidate(entry, clamp_prob(entry.get("prob")))
    elif "probs" in entry:
        top = [
            Candidate(None, _old_token_bytes(alt["tok_str"]), clamp_prob(alt.get("prob")))
            for alt in entry["probs"]
        ]
        content = str(entry.get("content", ""))
        data = content.encode()
        match = next((c for c in top if c.data == data), None)
        chosen = Candidate(None, data, match.prob if match else 0.0)
    else:
        raise KeyError("top_logprobs, top_probs or probs")
    return Step(chosen, sort_candidates(_dedupe(top)))


def _candidate(obj: Mapping[str, Any], prob: float) -> Candidate:
    """One token.  ``bytes`` present and empty is an end of sequence (or another control
    token, which adds no text either): llama-server writes ``<eos>`` among the alternatives as
    ``{"token": "", "bytes": []}``, and taking it must end the beam, not continue past it.
    A ``token`` of ``""`` without ``bytes`` is not one: that is a cut-back partial character."""
    raw = obj.get("bytes")
    token_id = obj.get("id")
    tid = int(token_id) if token_id is not None else None
    if isinstance(raw, Sequence):
        data = bytes(raw)
        if not data:
            return Candidate(tid, b"", prob, is_end=True)
    else:
        data = str(obj.get("token", "")).encode()
    if _MARKERS.fullmatch(data):
        return Candidate(tid, b"", prob, is_end=True)
    return Candidate(tid, data, prob)


def _withheld(chosen: Candidate, top: Sequence[Candidate]) -> Candidate:
    """The chosen token, spelt as the alternatives spell it where the server withheld its
    text: llama-server writes the chosen token as the text it sends, which is empty for the
    token that holds a stop string (``stop``), while the same token among the alternatives
    keeps its bytes.  A real end of sequence is empty there too, and stays an end."""
    if not chosen.is_end or chosen.token_id is None:
        return chosen
    same = next((c for c in top if c.token_id == chosen.token_id), None)
    if same is None or same.is_end:
        return chosen
    return Candidate(chosen.token_id, same.data, chosen.prob)


def _old_token_bytes(tok_str: str) -> bytes:
    match = _BYTE_TOKEN.match(tok_str)
    return bytes([int(match.group(1), 16)]) if match else tok_str.encode()


def _dedupe(cands: list[Candidate]) -> list[Candidate]:
    seen: set[Any] = set()
    out = []
    for cand in cands:
        key = cand.token_id if cand.token_id is not None else cand.data
        if key not in seen:
            seen.add(key)
            out.append(cand)
    return out

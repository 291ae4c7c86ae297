"""The one small interface every backend implements, and helpers they share."""

from __future__ import annotations

import math
from typing import Any, Protocol

import attrs

from ..engine.source import Continuation, Prompt

__all__ = ["Backend", "BackendInfo", "prob_from_logprob"]


@attrs.frozen
class BackendInfo:
    """What ``lloom-lsp check`` reports about a server."""

    url: str
    protocol: str  # llamacpp | openai | openai-chat | ollama
    model: str
    probabilities: bool  # token probabilities come back
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class Backend(Protocol):
    """A TokenSource with a name, a health check and a client to close."""

    protocol: str
    url: str

    async def continue_prompt(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> Continuation: ...

    async def check(self) -> BackendInfo: ...

    async def aclose(self) -> None: ...


def prob_from_logprob(value: Any) -> float:
    """A probability in 0..1 from a log-probability, whatever the server wrote.

    llama.cpp writes zero probability as the lowest float (about -3.4e38); others write
    -inf, -9999, null or NaN.  All of those are 0.
    """
    if value is None:
        return 0.0
    try:
        logprob = float(value)
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(logprob) or logprob < -1e4:
        return 0.0
    return min(1.0, math.exp(min(logprob, 0.0)))


def clamp_prob(value: Any) -> float:
    """A probability given directly (post-sampling ``prob``), clamped to 0..1."""
    try:
        prob = float(value)
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(prob):
        return 0.0
    return min(1.0, max(0.0, prob))

"""The one small interface every backend implements, and helpers they share."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import attrs

from ..engine.source import Candidate, Continuation, Prompt, Step
from .errors import BackendProtocolError

__all__ = [
    "parse_steps",
    "DEFAULT_MAX_LOGPROBS",
    "OPENAI_HOST",
    "OPENAI_LEGACY_MAX_LOGPROBS",
    "Backend",
    "BackendInfo",
    "allowed_logprobs",
    "api_base",
    "api_key_from_env",
    "as_end",
    "auth_message",
    "clamp_prob",
    "end_continuation",
    "no_probabilities",
    "prob_from_logprob",
    "server_name",
]


@attrs.frozen
class BackendInfo:
    """What ``lloom-lsp check`` reports about a server."""

    url: str
    protocol: str  # llamacpp | openai | openai-chat | ollama
    model: str
    probabilities: bool  # token probabilities come back
    detail: str = ""
    #: What the user should change on the server, one line each.
    notes: tuple[str, ...] = ()

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


# -- helpers shared by the OpenAI-style backends (appended for issue 4) -----------------------


def end_continuation(steps: Sequence[Step], ended: bool) -> Continuation:
    """A Continuation whose last step is marked as end of sequence where the server says so.

    Servers that report the end-of-sequence token list it as an empty token (llama-server)
    and others leave it out (vLLM, Ollama); either way ``ended`` tells the engine.
    """
    steps = tuple(steps)
    if ended and steps and not steps[-1].chosen.data:
        last = steps[-1]
        steps = (*steps[:-1], Step(as_end(last.chosen), last.top))
    return Continuation(steps, ended)


def as_end(cand: Candidate) -> Candidate:
    """The same token, marked as the end of the sequence (it adds no text)."""
    return Candidate(cand.token_id, b"", cand.prob, is_end=True)


#: vLLM's default ``--max-logprobs``; also OpenAI's cap on chat ``top_logprobs`` and Ollama's.
DEFAULT_MAX_LOGPROBS = 20
#: OpenAI's legacy ``/v1/completions`` allows ``logprobs`` up to 5.
OPENAI_LEGACY_MAX_LOGPROBS = 5
OPENAI_HOST = "api.openai.com"

#: ``owned_by`` in ``GET /v1/models`` names the server software for most servers.
_OWNERS = {
    "llamacpp": "llama.cpp llama-server",
    "vllm": "vLLM",
    "tabbyapi": "TabbyAPI",
    "me": "llama-cpp-python",
    "library": "Ollama",
    "ollama": "Ollama",
    "openai": "OpenAI",
    "system": "OpenAI",
    "openai-internal": "OpenAI",
}


def server_name(owned_by: str, url: str = "") -> str:
    """The server software an ``owned_by`` value (or the host) names, for messages."""
    if urlsplit(url).hostname == OPENAI_HOST:
        return "OpenAI"
    return _OWNERS.get(owned_by.lower(), f"an OpenAI-compatible server (owned_by {owned_by!r})")


# The numbers servers put in their "too many logprobs" messages:
# vLLM "... greater than max allowed: 20", OpenAI "must be less than or equal to 5",
# Ollama "top_logprobs must be between 0 and 20", Together "greater than the maximum of 1".
_CAP_PATTERNS = (
    re.compile(r"max(?:imum)?(?:\s+allowed)?(?:\s+(?:is|of))?\s*:?\s*(\d+)", re.IGNORECASE),
    re.compile(r"(?:less than or equal to|at most|no more than|<=)\s*(\d+)", re.IGNORECASE),
    re.compile(r"between\s+\d+\s+and\s+(\d+)", re.IGNORECASE),
)


def allowed_logprobs(body: str, asked: int) -> int | None:
    """The top-logprobs count to retry with after a 400 about ``asked``, or None when the
    answer is not about logprobs (or there is nothing smaller to try)."""
    if "logprob" not in body.lower():
        return None
    for pattern in _CAP_PATTERNS:
        for match in pattern.finditer(body):
            value = int(match.group(1))
            if 0 < value < asked:
                return value
    # No usable number: the caps the common servers document, largest first.
    return next(
        (cap for cap in (DEFAULT_MAX_LOGPROBS, OPENAI_LEGACY_MAX_LOGPROBS) if cap < asked), None
    )


def api_key_from_env(api_key_env: str) -> str | None:
    """The API key in the environment variable named ``api_key_env`` (``apiKeyEnv``);
    None without a name, or when the variable is unset or empty."""
    return (os.environ.get(api_key_env) or None) if api_key_env else None


def auth_message(api_key_env: str, api_key: str | None, body: str) -> str:
    """What to fix after a 401/403: the variable to set, never the key (scrubbed from the
    server's text too, in case it echoes the header back)."""
    if not api_key_env:
        advice = (
            "API key missing or invalid: put the key in an environment variable and set "
            "lloom.backend.apiKeyEnv (--api-key-env) to that variable's name"
        )
    elif api_key is None:
        advice = f"API key missing or invalid, set env var {api_key_env} (it is not set)"
    else:
        advice = f"API key missing or invalid, set env var {api_key_env} (the server refused it)"
    said = _error_text(body)
    if api_key:
        said = said.replace(api_key, "***")
    said = " ".join(_MASKED.sub("***", said).split())[:200]
    return f"{advice}; the server said: {said}" if said else advice


# A server's own masked echo of the key ("sk-ab********1234") still shows some of it.
_MASKED = re.compile(r"\S*\*{4,}\S*")


def _error_text(body: str) -> str:
    """The message inside the common JSON error shapes (OpenAI, vLLM, Ollama, FastAPI)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict):
            inner = inner.get("message", inner)
        for value in (inner, data.get("message"), data.get("detail")):
            if isinstance(value, str) and value:
                return value
    return body


def api_base(url: str) -> str:
    # Users copy base URLs that already end in /v1 (OpenAI's SDKs want that form).
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def no_probabilities(url: str) -> BackendProtocolError:
    return BackendProtocolError(
        url,
        "the server returned no token probabilities (logprobs missing or null), so it "
        "cannot weave; use a server that returns them (llama-server, vLLM, Ollama >= 0.12.11, "
        "TabbyAPI, llama-cpp-python, OpenAI)",
    )


def parse_steps(entries: Iterable[Any], parse: Callable[[Any], Step], url: str) -> list[Step]:
    """Per-token entries as Steps; a malformed entry is a BackendProtocolError naming the URL."""
    try:
        return [parse(entry) for entry in entries]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BackendProtocolError(url, f"unexpected token probability entry ({exc!r})") from exc

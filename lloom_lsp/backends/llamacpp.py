"""llama.cpp ``llama-server``: the native ``/completion`` endpoint.

One request returns a greedy chain with the top-N alternatives at every position.
Beams continue by token ids (a mixed prompt ``["story", 12, 34]``), so the model
continues its own tokens instead of a re-tokenisation of their text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ..engine.source import Candidate, Continuation, Prompt, Step, sort_candidates
from .base import BackendInfo, clamp_prob, parse_steps, prob_from_logprob
from .errors import BackendError, BackendProtocolError
from .http import HttpTransport

__all__ = ["LlamaCppBackend", "completion_body", "parse_completion", "parse_step"]

_BYTE_TOKEN = re.compile(r"^byte: \\x([0-9a-fA-F]{2})$")


class LlamaCppBackend:
    """Talks to llama-server's native API."""

    protocol = "llamacpp"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = HttpTransport(
            url, timeout=timeout, concurrency=concurrency, transport=transport
        )
        self.url = self.http.base_url

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        body = completion_body(prompt, max_tokens, top_n, stream=False)
        answer = await self.http.post_json("/completion", body)
        return parse_completion(answer, self.http.url("/completion"))

    async def check(self) -> BackendInfo:
        health = await self.http.get_json("/health")
        props = await self.http.get_json("/props")
        model = str(props.get("model_path") or props.get("model_alias") or "")
        cont = await self.continue_prompt(Prompt("Hello"), 1, 2)
        probs = bool(cont.steps and cont.steps[0].top)
        slots = props.get("total_slots")
        detail = f"health {health.get('status', '?')}, {slots} slots" if slots else ""
        return BackendInfo(self.url, self.protocol, model, probs, detail)

    async def aclose(self) -> None:
        await self.http.aclose()


def completion_body(prompt: Prompt, max_tokens: int, top_n: int, *, stream: bool) -> dict[str, Any]:
    """A greedy ``/completion`` request that continues the beam by its token ids."""
    return {
        "prompt": [prompt.text, *prompt.token_ids] if prompt.token_ids else prompt.text,
        "n_predict": max_tokens,
        "n_probs": top_n,
        "temperature": 0,
        "cache_prompt": True,
        "stream": stream,
    }


def parse_completion(answer: Any, url: str) -> Continuation:
    """A ``/completion`` answer in any of the formats llama-server has used."""
    if isinstance(answer, list):  # an array prompt can come back as an array of results
        if len(answer) != 1:
            raise BackendProtocolError(url, f"expected one result, got {len(answer)}")
        answer = answer[0]
    if not isinstance(answer, Mapping):
        raise BackendProtocolError(url, "expected a JSON object")
    entries = answer.get("completion_probabilities")
    if entries is None:
        raise BackendProtocolError(
            url,
            "the answer has no completion_probabilities: this server returns no token "
            "probabilities (n_probs ignored?)",
        )
    steps = tuple(parse_steps(entries, parse_step, url))
    ended = answer.get("stop_type") == "eos" or bool(answer.get("stopped_eos"))
    last = entries[-1] if entries else {}
    if ended and not (last.get("bytes") or last.get("token") or last.get("content")):
        # llama-server reports the end-of-sequence token as an empty token
        last = steps[-1]
        steps = (*steps[:-1], Step(_as_end(last.chosen), last.top))
    return Continuation(steps, ended)


def _as_end(cand: Candidate) -> Candidate:
    return Candidate(cand.token_id, b"", cand.prob, is_end=True)


def parse_step(entry: Mapping[str, Any]) -> Step:
    """One position: current (``top_logprobs``), post-sampling (``top_probs``), old (``probs``)."""
    if "top_logprobs" in entry:
        top = [
            _candidate(alt, prob_from_logprob(alt.get("logprob"))) for alt in entry["top_logprobs"]
        ]
        chosen = _candidate(entry, prob_from_logprob(entry.get("logprob")))
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
    raw = obj.get("bytes")
    data = bytes(raw) if isinstance(raw, Sequence) else str(obj.get("token", "")).encode()
    token_id = obj.get("id")
    return Candidate(int(token_id) if token_id is not None else None, data, prob)


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


# Re-exported for callers that catch backend failures without importing errors.
__all__ += ["BackendError"]

"""Ollama's native ``POST /api/generate`` (token probabilities since Ollama 0.12.11).

``raw: true`` sends the story without the model's chat template, so a base or instruct model
continues the text itself.  Answers stream as NDJSON, one line per token with its
``logprobs`` entry and a last line with ``done: true``.  Ollama takes one text prompt per
request and no token ids, so beams continue by text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from ..engine.source import Continuation, Prompt, Step
from .base import DEFAULT_MAX_LOGPROBS, BackendInfo, no_probabilities, parse_steps
from .errors import BackendError, BackendProtocolError
from .openai import OpenAIStyleBackend, parse_entry
from .streaming import Chunk, closing, collect, ndjson_objects, release_steps

__all__ = ["MIN_VERSION", "OLLAMA_DEFAULT_CONTEXT", "OllamaBackend"]

#: The first release whose /api/generate returns logprobs (ollama/ollama PR #12899).
MIN_VERSION = (0, 12, 11)
#: The context Ollama gives a model that sets no ``num_ctx`` (``OLLAMA_CONTEXT_LENGTH``).
OLLAMA_DEFAULT_CONTEXT = 4096


class OllamaBackend(OpenAIStyleBackend):
    """``/api/generate`` with ``logprobs: true``, ``top_logprobs`` (at most 20), raw prompt."""

    protocol = "ollama"
    path = "/api/generate"
    models_path = "/api/tags"

    def default_max_logprobs(self) -> int:
        return DEFAULT_MAX_LOGPROBS

    def _first_model(self, answer: Any) -> tuple[str, str]:
        models = answer.get("models") if isinstance(answer, Mapping) else None
        if not isinstance(models, list) or not models or not isinstance(models[0], Mapping):
            raise BackendProtocolError(self.url, "/api/tags lists no models (ollama pull one)")
        first = models[0]
        return str(first.get("name") or first.get("model") or ""), "ollama"

    async def context_tokens(self) -> int | None:
        """Tokens one request may hold: the model's ``num_ctx`` parameter (``/api/show``),
        else Ollama's default context, 4,096.  Ollama cuts a longer prompt's start without
        an error, so the story must be sized before it is sent."""
        answer = await self.http.post_json("/api/show", {"model": await self.model_name()})
        parameters = answer.get("parameters") if isinstance(answer, Mapping) else None
        found = (
            re.search(r"^num_ctx\s+(\d+)", parameters or "", re.M)
            if isinstance(parameters, str)
            else None
        )
        return int(found.group(1)) if found else OLLAMA_DEFAULT_CONTEXT

    async def _body_for(self, prompt: Prompt, max_tokens: int) -> Callable[[int], dict[str, Any]]:
        model = await self.model_name()
        text = prompt.as_text()

        def body(n: int) -> dict[str, Any]:
            return {
                "model": model,
                "prompt": text,
                "raw": True,
                "stream": True,
                "logprobs": True,
                "top_logprobs": n,
                "options": {"num_predict": max_tokens, "temperature": 0},
            }

        return body

    async def _chunks(self, prompt: Prompt, max_tokens: int, top_n: int) -> AsyncIterator[Chunk]:
        body_for = await self._body_for(prompt, max_tokens)
        url = self.http.url(self.path)
        async with closing(
            self._stream(
                self.path,
                body_for,
                top_n,
                lambda lines: _ndjson_chunks(lines, url),
                framing="ndjson",
            )
        ) as stream:
            async for chunk in stream:
                yield chunk

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        # Ollama only reports logprobs reliably per streamed line, so gather the stream.
        return await collect(self._chunks(prompt, max_tokens, top_n), self.http.url(self.path))

    async def stream_steps(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> AsyncIterator[Step]:
        chunks = self._chunks(prompt, max_tokens, top_n)
        async with closing(release_steps(chunks, self.http.url(self.path))) as stream:
            async for step in stream:
                yield step

    async def version(self) -> str:
        with self._auth_hint():
            answer = await self.http.get_json("/api/version")
        return str(answer.get("version", "")) if isinstance(answer, Mapping) else ""

    async def check(self) -> BackendInfo:
        model = await self.model_name()
        try:
            version = await self.version()
        except BackendError:
            version = ""
        ok, why = await self._probe()
        detail = f"Ollama {version or '(version unknown)'} via POST {self.path} (raw prompt)"
        if version and _parse_version(version) < MIN_VERSION:
            detail += "; Ollama before 0.12.11 returns no token probabilities: upgrade it"
        return BackendInfo(
            self.url, self.protocol, model, ok, f"{detail}; {why}" if why else detail
        )


def _parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.lstrip("v").split("-")[0].split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


async def _ndjson_chunks(lines: AsyncIterator[str], url: str) -> AsyncIterator[Chunk]:
    async with closing(ndjson_objects(lines, url)) as stream:
        async for obj in stream:
            entries = obj.get("logprobs") or ()
            done = bool(obj.get("done"))
            if not entries and obj.get("response") and not done:
                raise no_probabilities(url)  # an Ollama that ignores `logprobs`
            steps = parse_steps(entries, parse_entry, url)
            yield steps, (obj.get("done_reason") == "stop" if done else None)

"""OpenAI-compatible text completions (``POST /v1/completions``), and what every OpenAI-style
backend shares: the API key, model discovery, the server's cap on top logprobs, and clear
errors.

Serves vLLM, llama-server's ``/v1``, TabbyAPI, llama-cpp-python and OpenAI's legacy instruct
models.  Two answer shapes exist and both are parsed: OpenAI's legacy arrays (``tokens``,
``token_logprobs``, ``top_logprobs`` dicts keyed by decoded string and not sorted) and the
chat-style ``{"content": [...]}`` that llama-server and Ollama return.  Beams continue by
token ids where the server is llama-server (its ``/v1/completions`` takes the same mixed
prompt array as ``/completion``), elsewhere by text.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from httpx_sse import ServerSentEvent

from ..engine.source import Candidate, Continuation, Prompt, Step, sort_candidates
from .base import (
    DEFAULT_MAX_LOGPROBS,
    OPENAI_HOST,
    OPENAI_LEGACY_MAX_LOGPROBS,
    BackendInfo,
    allowed_logprobs,
    api_base,
    api_key_from_env,
    as_end,
    auth_message,
    end_continuation,
    no_probabilities,
    prob_from_logprob,
    server_name,
)
from .errors import (
    BackendAuthError,
    BackendHTTPError,
    BackendProtocolError,
)
from .http import HttpTransport
from .steps import parse_step
from .streaming import Chunk, closing, release_steps, sse_data

__all__ = [
    "LLAMACPP_MAX_LOGPROBS",
    "OpenAIBackend",
    "OpenAIStyleBackend",
    "first_choice",
    "legacy_token_bytes",
    "parse_completions",
    "parse_entry",
    "parse_logprobs",
]

log = logging.getLogger("lloom_lsp.backends")

#: llama-server has no cap; this is the settings' maximum for topN.
LLAMACPP_MAX_LOGPROBS = 100


class OpenAIStyleBackend:
    """Plumbing shared by the OpenAI-style backends; subclasses add the endpoint."""

    protocol = "openai"
    models_path = "/v1/models"

    def __init__(
        self,
        url: str,
        *,
        model: str = "",
        api_key_env: str = "",
        timeout: float = 60.0,
        concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        max_logprobs: int | None = None,
    ) -> None:
        self.api_key_env = api_key_env
        # Kept only to send it and to scrub it from error text; never logged.
        self._api_key = api_key_from_env(api_key_env)
        self.http = HttpTransport(
            api_base(url),
            timeout=timeout,
            api_key=self._api_key,
            concurrency=concurrency,
            transport=transport,
        )
        self.url = self.http.base_url
        self.model = model
        self.owned_by = ""
        self._explicit_cap = max_logprobs is not None
        self.max_logprobs = max_logprobs or self.default_max_logprobs()
        self._cap_logged = False
        self._models_listed = False
        self._models_lock = asyncio.Lock()
        #: Tokens a request may hold, where the model list says (vLLM's ``max_model_len``).
        self.context_length: int | None = None

    def default_max_logprobs(self) -> int:
        return DEFAULT_MAX_LOGPROBS

    @property
    def server(self) -> str:
        return server_name(self.owned_by, self.url) if self.owned_by else ""

    # -- model discovery ----------------------------------------------------------------

    async def model_name(self) -> str:
        """The model from settings, else the server's first model (listed once)."""
        await self._list_models()
        return self.model

    async def _list_models(self) -> None:
        if self._models_listed:
            return
        async with self._models_lock:
            if self._models_listed:
                return
            try:
                with self._auth_hint():
                    answer = await self.http.get_json(self.models_path)
                model, self.owned_by = self._first_model(answer)
            except BackendAuthError:
                raise
            except (BackendProtocolError, BackendHTTPError) as exc:
                # A server without a model list still works when the model is named.
                if not self.model:
                    raise BackendProtocolError(
                        self.url,
                        f"no model is set and {self.models_path} gave none ({exc.cause}): "
                        "set lloom.backend.model (--model)",
                    ) from exc
            else:
                self.model = self.model or model
                self.context_length = _max_model_len(answer, self.model)
                if not self._explicit_cap:
                    self.max_logprobs = self.max_logprobs_for(self.owned_by)
            self._models_listed = True

    async def context_tokens(self) -> int | None:
        """Tokens one request may hold: ``max_model_len`` from the model list (vLLM);
        None where the server does not say."""
        await self._list_models()
        return self.context_length

    def max_logprobs_for(self, owned_by: str) -> int:
        """The cap once the server is known (``owned_by`` names it)."""
        if owned_by == "llamacpp":
            return LLAMACPP_MAX_LOGPROBS  # llama-server has no cap
        return self.max_logprobs

    def _first_model(self, answer: Any) -> tuple[str, str]:
        """(id, owned_by) of the configured model if listed, else of the first one."""
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, list) or not data or not isinstance(data[0], Mapping):
            raise BackendProtocolError(self.url, f"{self.models_path} lists no models")
        entry = next(
            (m for m in data if isinstance(m, Mapping) and m.get("id") == self.model), data[0]
        )
        return str(entry.get("id", "")), str(entry.get("owned_by", ""))

    # -- errors -----------------------------------------------------------------------------

    @contextmanager
    def _auth_hint(self) -> Iterator[None]:
        """Say which environment variable to fix when the server refuses us."""
        try:
            yield
        except BackendAuthError as exc:
            # `from None`: the original text is the server's, which may echo the key back.
            message = auth_message(self.api_key_env, self._api_key, exc.body)
            raise BackendAuthError(exc.url, exc.status, message) from None

    def _lower_cap(self, exc: BackendHTTPError, asked: int) -> int:
        """After a 400: the smaller logprobs count to retry with, or re-raise."""
        allowed = allowed_logprobs(exc.body, asked) if exc.status in (400, 422) else None
        if allowed is None:
            raise exc
        self.max_logprobs = allowed
        if not self._cap_logged:
            self._cap_logged = True
            log.warning(
                "%s allows at most %d top logprobs (asked for %d); using %d from now on",
                self.url,
                allowed,
                asked,
                allowed,
            )
        return allowed

    async def _greedy_body(
        self, fields: dict[str, Any], max_tokens: int, stream: bool
    ) -> dict[str, Any]:
        """``fields`` plus what every greedy request here carries (and the model, if any)."""
        body = {**fields, "max_tokens": max_tokens, "temperature": 0, "stream": stream}
        model = await self.model_name()
        if model:
            body["model"] = model
        return body

    def _cap(self, top_n: int) -> int:
        return max(1, min(top_n, self.max_logprobs))

    # -- requests ------------------------------------------------------------------------

    async def _post(self, path: str, body_for: Callable[[int], dict[str, Any]], top_n: int) -> Any:
        """POST with the allowed logprobs count, lowering it once the server names its cap."""
        n = self._cap(top_n)
        with self._auth_hint():
            while True:
                try:
                    return await self.http.post_json(path, body_for(n))
                except BackendHTTPError as exc:
                    n = self._lower_cap(exc, n)  # re-raises all but a logprobs 400

    async def _stream(
        self,
        path: str,
        body_for: Callable[[int], dict[str, Any]],
        top_n: int,
        chunks: Callable[[AsyncIterator[Any]], AsyncIterator[Chunk]],
        *,
        framing: str = "sse",
    ) -> AsyncIterator[Chunk]:
        """The streaming twin of :meth:`_post` (a 400 comes before the first event).

        ``framing`` is ``sse`` (``chunks`` gets httpx-sse events) or ``ndjson`` (lines).
        """
        n = self._cap(top_n)
        open_stream = self.http.post_sse if framing == "sse" else self.http.post_lines
        with self._auth_hint():
            while True:
                try:
                    async with open_stream(path, body_for(n)) as events:
                        async with closing(chunks(events)) as stream:
                            async for chunk in stream:
                                yield chunk
                    return
                except BackendHTTPError as exc:
                    n = self._lower_cap(exc, n)  # re-raises all but a logprobs 400

    async def _probe(self) -> tuple[bool, str]:
        """Whether one short request comes back with alternatives, and why not."""
        try:
            cont = await self.continue_prompt(Prompt("Hello"), 1, 2)  # type: ignore[attr-defined]
        except BackendProtocolError as exc:
            return False, exc.cause
        if not (cont.steps and cont.steps[0].top):
            return False, "the answer has no alternatives at the first position"
        return True, ""

    async def aclose(self) -> None:
        await self.http.aclose()


BATCH_SIZE = 8
_BATCHING_OWNERS = {"vllm", "tabbyapi", "openai", "system", "openai-internal"}


class OpenAIBackend(OpenAIStyleBackend):
    """``/v1/completions`` with ``logprobs`` N (vLLM, llama-server, TabbyAPI, OpenAI legacy)."""

    protocol = "openai"
    path = "/v1/completions"

    def __init__(self, url: str, *, token_ids: bool | None = None, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._token_ids = token_ids  # None: decide from /v1/models (llama-server takes ids)

    def default_max_logprobs(self) -> int:
        if urlsplit(self.url).hostname == OPENAI_HOST:
            return OPENAI_LEGACY_MAX_LOGPROBS
        return DEFAULT_MAX_LOGPROBS

    def max_logprobs_for(self, owned_by: str) -> int:
        if server_name(owned_by) == "OpenAI":  # OpenAI's models, behind a proxy too
            return OPENAI_LEGACY_MAX_LOGPROBS
        return super().max_logprobs_for(owned_by)

    async def continues_by_ids(self) -> bool:
        if self._token_ids is None:
            await self._list_models()
            self._token_ids = self.owned_by == "llamacpp"
        return self._token_ids

    async def _body_for(
        self, prompt: Prompt, max_tokens: int, stream: bool
    ) -> Callable[[int], dict[str, Any]]:
        by_ids = await self.continues_by_ids() and bool(prompt.token_ids)
        value: Any = [prompt.text, *prompt.token_ids] if by_ids else prompt.as_text()
        fixed = await self._greedy_body({"prompt": value}, max_tokens, stream)
        return lambda n: {**fixed, "logprobs": n}

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        body_for = await self._body_for(prompt, max_tokens, stream=False)
        answer = await self._post(self.path, body_for, top_n)
        return parse_completions(answer, self.http.url(self.path))

    @property
    def max_batch(self) -> int:
        """Prompts per request: vLLM, TabbyAPI and OpenAI take a list of prompts (the
        engine then sends several beams at once); others, and llama-server (which
        continues by token ids instead), get one."""
        return BATCH_SIZE if self.owned_by.lower() in _BATCHING_OWNERS else 1

    async def continue_prompts(
        self, prompts: Sequence[Prompt], max_tokens: int, top_n: int
    ) -> list[Continuation]:
        """Several beams in one request, where the server takes a list of prompts."""
        await self.model_name()  # learns owned_by, hence max_batch
        if len(prompts) == 1 or self.max_batch == 1:
            return [await self.continue_prompt(p, max_tokens, top_n) for p in prompts]
        first = await self._body_for(prompts[0], max_tokens, stream=False)
        texts = [p.as_text() for p in prompts]

        def body(n: int) -> dict[str, Any]:
            return {**first(n), "prompt": texts}

        answer = await self._post(self.path, body, top_n)
        url = self.http.url(self.path)
        choices = answer.get("choices") if isinstance(answer, Mapping) else None
        if not isinstance(choices, list) or len(choices) != len(prompts):
            raise BackendProtocolError(
                url, f"expected {len(prompts)} choices for {len(prompts)} prompts"
            )
        ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, Mapping) else 0)
        return [parse_completions({"choices": [choice]}, url) for choice in ordered]

    async def stream_steps(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> AsyncIterator[Step]:
        body_for = await self._body_for(prompt, max_tokens, stream=True)
        url = self.http.url(self.path)
        chunks = self._stream(self.path, body_for, top_n, lambda events: _sse_chunks(events, url))
        async with closing(release_steps(chunks, url)) as stream:
            async for step in stream:
                yield step

    async def check(self) -> BackendInfo:
        model = await self.model_name()
        ok, why = await self._probe()
        by = "token ids" if await self.continues_by_ids() else "text"
        detail = (
            f"{self.server or 'server'} via POST {self.path}, top logprobs up to "
            f"{self.max_logprobs}, beams continue by {by}"
        )
        return BackendInfo(
            self.url, self.protocol, model, ok, f"{detail}; {why}" if why else detail
        )


# -- answers ------------------------------------------------------------------------------


def _max_model_len(answer: Any, model: str) -> int | None:
    """``max_model_len`` of ``model`` in a ``/v1/models`` answer (vLLM lists it)."""
    data = answer.get("data") if isinstance(answer, Mapping) else None
    for entry in data if isinstance(data, list) else ():
        if isinstance(entry, Mapping) and entry.get("id") == model:
            length = entry.get("max_model_len")
            return length if isinstance(length, int) and length > 0 else None
    return None


def first_choice(answer: Any, url: str) -> Mapping[str, Any]:
    choices = answer.get("choices") if isinstance(answer, Mapping) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise BackendProtocolError(url, "the answer has no choices")
    return choices[0]


def parse_completions(answer: Any, url: str) -> Continuation:
    """A ``/v1/completions`` answer, legacy or chat-style logprobs."""
    choice = first_choice(answer, url)
    steps = parse_logprobs(choice.get("logprobs"), url)
    ended = choice.get("finish_reason") == "stop"
    if ended and steps and _names_end_token(steps[-1].chosen.data, choice.get("text")):
        steps[-1] = Step(as_end(steps[-1].chosen), steps[-1].top)
    return end_continuation(steps, ended)


_SPECIAL_TOKEN = re.compile(rb"^<[|/]?[A-Za-z_]+[|]?>$")


def _names_end_token(data: bytes, text: Any) -> bool:
    """Whether a legacy answer lists the end-of-sequence token by name (``</s>``,
    ``<|endoftext|>``): a special-looking token that the answer's text does not end with."""
    return (
        bool(_SPECIAL_TOKEN.match(data))
        and isinstance(text, str)
        and not text.encode().endswith(data)
    )


def parse_logprobs(logprobs: Any, url: str) -> list[Step]:
    """Steps from either logprobs shape; an answer without probabilities is an error."""
    if not isinstance(logprobs, Mapping) or not logprobs:
        raise no_probabilities(url)
    try:
        if "content" in logprobs:
            steps = [parse_entry(entry) for entry in logprobs["content"] or ()]
        elif "tokens" in logprobs:
            steps = _parse_legacy(logprobs)
        else:
            raise no_probabilities(url)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BackendProtocolError(url, f"unexpected token probability entry ({exc!r})") from exc
    return steps


def parse_entry(entry: Mapping[str, Any]) -> Step:
    """One chat-style entry; servers omit an empty ``top_logprobs`` (Go's omitempty)."""
    if not any(key in entry for key in ("top_logprobs", "top_probs", "probs")):
        entry = {**entry, "top_logprobs": []}
    return parse_step(entry)


_LEGACY_BYTES = re.compile(r"^bytes:((?:\\x[0-9a-fA-F]{2})+)$")


def legacy_token_bytes(token: str) -> bytes:
    """A legacy token string as bytes; OpenAI writes a partial character as ``bytes:\\xNN``."""
    match = _LEGACY_BYTES.match(token)
    if match:
        return bytes.fromhex(match.group(1).replace("\\x", ""))
    return token.encode()


def _parse_legacy(logprobs: Mapping[str, Any]) -> list[Step]:
    tokens = logprobs["tokens"] or ()
    chosen_lps = logprobs.get("token_logprobs") or ()
    tops = logprobs.get("top_logprobs") or ()
    steps = []
    for i, token in enumerate(tokens):
        lp = chosen_lps[i] if i < len(chosen_lps) else None
        chosen = Candidate(None, legacy_token_bytes(str(token)), prob_from_logprob(lp))
        alternatives = tops[i] if i < len(tops) and tops[i] else {}
        # Keyed by decoded string, unsorted, and holding the sampled token too.
        top = [
            Candidate(None, legacy_token_bytes(str(key)), prob_from_logprob(value))
            for key, value in alternatives.items()
        ]
        steps.append(Step(chosen, sort_candidates(top)))
    return steps


async def _sse_chunks(events: AsyncIterator[ServerSentEvent], url: str) -> AsyncIterator[Chunk]:
    async with closing(sse_data(events, url)) as stream:
        async for event in stream:
            choice = first_choice(event, url)
            reason = choice.get("finish_reason")
            logprobs = choice.get("logprobs")
            if logprobs:
                steps = parse_logprobs(logprobs, url)
            elif choice.get("text") and reason is None:
                raise no_probabilities(url)
            else:
                steps = []
            yield steps, (None if reason is None else reason == "stop")

"""A llama-server of our own: when ``modelPath`` names a GGUF file and nothing answers at
``url``, start ``llama-server`` on a free port, talk to it, and take it down on ``aclose()``.

A server that dies is noticed on the next request (its process has exited, or the request
cannot connect): it is restarted on the same port and the request is retried once.  When a
server already answers at ``url``, that server is used and no process is started.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import attrs
import httpx

from ..config import BackendSettings
from ..engine.source import Continuation, Prompt, Step
from .base import Backend, BackendInfo
from .errors import BackendError, BackendUnavailable
from .http import HttpTransport
from .process import LlamaServerError, LlamaServerNotFound, LlamaServerProcess
from .streaming import closing, stream_steps

__all__ = ["ManagedBackend"]

log = logging.getLogger("lloom_lsp.backends")

#: Loading a model can take far longer than one request.
_START_TIMEOUT = 120.0

BuildBackend = Callable[[BackendSettings, str, str], Backend]  # settings, protocol, url


class ManagedBackend:
    """Uses the server at ``url`` if one answers, else runs llama-server on ``model_path``."""

    def __init__(
        self,
        settings: BackendSettings,
        build: BuildBackend,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.settings = settings
        self.url = settings.url
        self.process: LlamaServerProcess | None = None
        # The protocol we will speak to our own llama-server (a server already at `url` may
        # turn out to speak another one: then the delegate's).
        self.protocol = _managed_protocol(settings.type)
        self._build = build
        self._transport = transport
        self._extra_args = extra_args
        self._delegate: Backend | None = None
        self._generation = 0  # bumped on every (re)start, so one death restarts once
        self._lock = asyncio.Lock()

    @property
    def managed(self) -> bool:
        """Whether we run the server (False: one already answered at ``url``)."""
        return self.process is not None

    # -- lifecycle ---------------------------------------------------------------------------

    async def _ensure(self) -> tuple[Backend, int]:
        async with self._lock:
            if self._delegate is None:
                if await self._answers(self.settings.url):
                    self._delegate = self._build(
                        self.settings, self.settings.type, self.settings.url
                    )
                    self.protocol = self._delegate.protocol
                else:
                    await self._start()
            elif self.process is not None and not self.process.alive:
                await self._restart("the managed llama-server is not running")
            assert self._delegate is not None
            return self._delegate, self._generation

    async def _answers(self, url: str) -> bool:
        http = HttpTransport(url, timeout=3.0, transport=self._transport)
        try:
            await http.get_json("/health")
        except BackendUnavailable:
            return False
        except BackendError:
            return True  # an error status or odd body is still a server answering
        finally:
            await http.aclose()
        return True

    async def _start(self) -> None:
        if self.settings.type == "ollama":
            raise BackendUnavailable(
                self.settings.url,
                "nothing answers here, and modelPath cannot help: lloom-lsp runs llama-server, "
                "which does not speak the ollama protocol (set type to auto or llamacpp)",
            )
        try:
            process = LlamaServerProcess(
                self.settings.model_path,
                binary=self.settings.server_command or None,
                extra_args=self._extra_args,
            )
            await process.start(max(_START_TIMEOUT, self.settings.timeout_seconds))
        except (LlamaServerNotFound, LlamaServerError, OSError) as exc:
            raise BackendUnavailable(
                self.settings.url,
                f"nothing answers here and the managed llama-server for "
                f"{self.settings.model_path} did not start: {exc}",
            ) from exc
        log.info("started llama-server for %s at %s", self.settings.model_path, process.url)
        self.process = process
        self.url = process.url
        self._generation += 1
        self._delegate = self._build(self.settings, self.protocol, process.url)

    async def _restart(self, why: str) -> None:
        assert self.process is not None and self._delegate is not None
        log.warning("%s at %s; restarting it", why, self.process.url)
        # Same port, so the delegate and its client stay: other requests may be using it
        # right now, and the pool drops connections that the dead process closed.
        try:
            await self.process.restart(max(_START_TIMEOUT, self.settings.timeout_seconds))
        except (LlamaServerError, OSError) as exc:
            raise BackendUnavailable(self.url, f"the managed llama-server died: {exc}") from exc
        self._generation += 1
        forget = getattr(self._delegate, "forget_slots", None)
        if forget is not None:
            forget()  # a new process: its slots hold nothing

    async def _recover(self, generation: int) -> bool:
        """After a failed request: restart a dead server (once per death); retry if True."""
        if self.process is None:
            return False
        async with self._lock:
            if generation != self._generation:
                return True  # another request restarted it meanwhile
            if self.process.alive:
                return False  # alive: the failure was something else
            await self._restart("the managed llama-server exited")
            return True

    # -- Backend ---------------------------------------------------------------------------

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        delegate, generation = await self._ensure()
        try:
            return await delegate.continue_prompt(prompt, max_tokens, top_n)
        except BackendUnavailable:
            if not await self._recover(generation):
                raise
        delegate, _ = await self._ensure()
        return await delegate.continue_prompt(prompt, max_tokens, top_n)

    async def stream_steps(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> AsyncIterator[Step]:
        delegate, generation = await self._ensure()
        started = False
        try:
            async with closing(stream_steps(delegate, prompt, max_tokens, top_n)) as stream:
                async for step in stream:
                    started = True
                    yield step
            return
        except BackendUnavailable:
            # Steps already handed out cannot be taken back: retry only an empty stream.
            if started or not await self._recover(generation):
                raise
        delegate, _ = await self._ensure()
        async with closing(stream_steps(delegate, prompt, max_tokens, top_n)) as stream:
            async for step in stream:
                yield step

    async def warm(self, story: str) -> int:
        """The delegate's warm-up (0 when it has none); starts our server if need be."""
        # A weave cancels the warm-up.  A server start cut short would be killed, and the
        # weave would load the model all over again: let the start run on.
        starting = asyncio.ensure_future(self._ensure())
        starting.add_done_callback(lambda task: task.cancelled() or task.exception())
        delegate, _ = await asyncio.shield(starting)
        warm = getattr(delegate, "warm", None)
        return int(await warm(story)) if warm is not None else 0

    async def context_tokens(self) -> int | None:
        """The delegate's context per request (None where it cannot say)."""
        delegate, _ = await self._ensure()
        method = getattr(delegate, "context_tokens", None)
        return await method() if method is not None else None

    async def suffix_logprobs(
        self, prompt: Prompt, text: str, max_tokens: int
    ) -> tuple[float, ...] | None:
        """The delegate's score of ``text`` after ``prompt`` (None where it cannot score:
        engine/suffix.py)."""
        delegate, _ = await self._ensure()
        method = getattr(delegate, "suffix_logprobs", None)
        return await method(prompt, text, max_tokens) if method is not None else None

    async def count_tokens(self, text: str) -> int | None:
        """The delegate's token count of ``text`` (None where it cannot count)."""
        delegate, _ = await self._ensure()
        method = getattr(delegate, "count_tokens", None)
        return await method(text) if method is not None else None

    async def check(self) -> BackendInfo:
        delegate, _ = await self._ensure()
        info = await delegate.check()
        if self.process is None:
            note = f"a server already answers at {self.settings.url}, modelPath unused"
        else:
            note = f"managed llama-server for {self.settings.model_path} at {self.process.url}"
        return attrs.evolve(info, detail=f"{note}; {info.detail}" if info.detail else note)

    async def aclose(self) -> None:
        async with self._lock:
            if self._delegate is not None:
                await self._delegate.aclose()
                self._delegate = None
            if self.process is not None:
                await self.process.stop()
                self.process = None


def _managed_protocol(backend_type: str) -> str:
    # Our own server is llama-server: no need to probe it.
    return "llamacpp" if backend_type == "auto" else backend_type

"""llama.cpp ``llama-server``: the native ``/completion`` endpoint.

One request returns a greedy chain with the top-N alternatives at every position, streamed
as server-sent events so the engine can branch before the chain ends and close it early.
Beams continue by token ids (a mixed prompt ``["story", 12, 34]``), so the model continues
its own tokens instead of a re-tokenisation of their text.  Every request is pinned to a
slot that holds its story (:mod:`.slots`), and ``timings.prompt_n`` from each answer is
added to the weave's :class:`~lloom_lsp.engine.source.Usage`.

A prompt with the text after the cursor (its ``suffix``) goes to ``/infill`` where the
model fills in the middle (:mod:`.infill`), else to ``/completion`` as every other.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

import attrs
import httpx

from ..engine.source import (
    Continuation,
    Prompt,
    Step,
    current_usage,
)
from .base import BackendInfo, end_continuation, parse_steps
from .errors import BackendError, BackendProtocolError
from .http import HttpTransport
from .infill import InfillSupport, infill_body
from .slots import SlotPool, missing
from .steps import parse_step
from .streaming import Chunk, closing, release_steps, sse_data

__all__ = ["LlamaCppBackend", "completion_body", "parse_completion", "parse_step"]

log = logging.getLogger("lloom_lsp.backends")


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
        pin_slots: bool = True,
    ) -> None:
        self.http = HttpTransport(
            url, timeout=timeout, concurrency=concurrency, transport=transport
        )
        self.url = self.http.base_url
        self.concurrency = max(1, concurrency)
        self._pin_slots = pin_slots
        self._pool: SlotPool | None = None
        self._pool_known = False
        self._pool_lock = asyncio.Lock()
        self._lead_ids: dict[str, tuple[int, ...]] = {}  # suffix_logprobs: text -> its tokens
        #: A long story's token ids, tokenised once (``_story_ids_for``).
        self._story_ids: dict[str, asyncio.Task[tuple[int, ...] | None]] = {}
        #: Whether the model fills in the middle, learnt from the first ``/infill``.
        self.infill = InfillSupport()

    # -- slots --------------------------------------------------------------------------

    async def context_tokens(self) -> int | None:
        """Tokens one request may hold: a slot's ``n_ctx`` (``-c`` over ``-np``) from
        ``/props``; None where it does not say."""
        props = await self.http.get_json("/props")
        settings = props.get("default_generation_settings") if isinstance(props, Mapping) else None
        n_ctx = settings.get("n_ctx") if isinstance(settings, Mapping) else None
        return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None

    async def count_tokens(self, text: str) -> int | None:
        """How many tokens ``text`` is, by the server's own tokenizer (``/tokenize``)."""
        answer = await self.http.post_json("/tokenize", {"content": text})
        tokens = answer.get("tokens") if isinstance(answer, Mapping) else None
        return len(tokens) if isinstance(tokens, list) else None

    async def copies_slots(self) -> bool:
        """Whether the server saves and restores slots (``--slot-save-path``), tried by
        saving slot 0 to ``lloom-check.bin``."""
        try:
            await self._slot_action(0, "save", "lloom-check.bin")
        except BackendError:
            return False
        return True

    async def slots(self) -> SlotPool | None:
        """The slot pool, sized from ``/props`` on first use (None: do not pin)."""
        if self._pool_known or not self._pin_slots:
            return self._pool
        async with self._pool_lock:
            if not self._pool_known:
                try:
                    props = await self.http.get_json("/props")
                    total = int(props.get("total_slots") or 0)
                except (BackendError, TypeError, ValueError, AttributeError) as exc:
                    log.info("%s: no slot count from /props (%s); not pinning slots", self.url, exc)
                    total = 0
                if total > 0:
                    self._pool = SlotPool(min(total, self.concurrency))
                self._pool_known = True
        return self._pool

    async def _slot(
        self, prompt: Prompt, *, fill: bool = True
    ) -> AbstractAsyncContextManager[int | None]:
        """A slot for ``prompt``; without ``fill``, one chosen alike but not filled with
        the story first (an ``/infill`` prompt starts with a FIM token: a story filled by
        ``/completion`` would not be its cache)."""
        pool = await self.slots()
        if pool is None:
            return nullcontext(None)
        if not fill:
            return pool.slot(prompt.text, prompt.token_ids)
        return self._filled_slot(pool, prompt.text, prompt.token_ids)

    @asynccontextmanager
    async def _filled_slot(
        self, pool: SlotPool, story: str, ids: tuple[int, ...] = ()
    ) -> AsyncIterator[int]:
        """A slot for ``story`` that holds it (up to ``cheap_chars``) once entered."""
        async with pool.slot(story, ids) as slot:
            await self._fill(pool, slot, story)
            yield slot

    async def _fill(self, pool: SlotPool, slot: int, story: str) -> str:
        """Make ``slot`` hold ``story`` before a request uses it, where the server copies
        slots: restore a saved copy of the story, or evaluate it here first and save that
        for the other slots.  A server that cannot copy evaluates as the request goes.

        Returns what it did: ``held`` (nothing: the slot held all but a little of it, or
        the server cannot copy), ``restored`` (a copy, maybe of an earlier draft) or
        ``evaluated`` (all of it, and saved)."""
        if pool.copies is False or missing(pool.slots[slot].before, story) <= pool.cheap_chars:
            return "held"
        name = pool.covered(story)
        if name is not None:
            try:
                await self._slot_action(slot, "restore", name)
                return "restored"
            except BackendError as exc:
                log.info("%s: restoring %s into slot %d failed (%s)", self.url, name, slot, exc)
                pool.saved.pop(name, None)
        await self._evaluate(slot, story)
        await self._save(pool, slot, story)
        return "evaluated"

    async def _evaluate(self, slot: int, story: str) -> None:
        """Evaluate ``story`` into ``slot``'s cache (``n_predict: 0``), counted as usage.

        Streamed, so the server says at once how many tokens it must evaluate
        (``prompt_progress``), and a weave waiting for it can say so."""
        body = {
            "prompt": story,
            "n_predict": 0,
            "cache_prompt": True,
            "id_slot": slot,
            "stream": True,
            "return_progress": True,
            "timings_per_token": True,
        }
        url = self.http.url("/completion")
        answer = _Answer()
        try:
            async with self.http.post_sse("/completion", body) as events:
                async with closing(sse_data(events, url)) as stream:
                    async for event in stream:
                        if isinstance(event, Mapping):
                            _note_progress(event, answer)
        finally:
            _count_prompt({"timings": answer.timings})

    async def _save(self, pool: SlotPool, slot: int, story: str) -> None:
        """Save ``slot``, which holds ``story``, for the other slots to copy."""
        name = pool.save_name(story)
        try:
            await self._slot_action(slot, "save", name)
        except BackendError as exc:
            if pool.copies is None:
                log.info(
                    "%s cannot copy slots (%s): each slot evaluates the story itself; start "
                    "llama-server with --slot-save-path DIR (and --swa-full for models with "
                    "sliding-window layers, such as Gemma 3)",
                    self.url,
                    exc.cause,
                )
            pool.copies = False
            return
        pool.copies = True
        pool.remember_saved(name, story)
        await pool.changed()  # requests waiting for this slot can take a copy instead

    async def _slot_action(self, slot: int, action: str, name: str) -> None:
        """``POST /slots/{slot}?action=save|restore`` with the file ``name``."""
        answer = await self.http.post_json(f"/slots/{slot}?action={action}", {"filename": name})
        if not isinstance(answer, Mapping) or "error" in answer:
            raise BackendProtocolError(self.url, f"slot {action} answered {answer!r}")

    def forget_slots(self) -> None:
        """The server restarted: no slot holds anything we sent before (and it may be
        another model, with other token ids)."""
        if self._pool is not None:
            self._pool.forget()
        for task in self._story_ids.values():
            task.cancel()
        self._story_ids.clear()
        self.infill.forget()

    # -- a long story by its token ids ----------------------------------------------------

    def _story_ids_for(self, text: str) -> tuple[int, ...] | None:
        """``text``'s token ids as llama-server tokenises a prompt (BOS first), once known.

        llama-server tokenises a prompt's text on every request: for the 16,000-character
        long story that took 30-300 ms of a 2-core machine per request (measured under
        load), about what decoding the request's tokens costs, and a weave makes ~20
        requests.  So a story of ``STORY_IDS_CHARS`` or more is tokenised once, in the
        background while its first request goes as text, and sent as ids after that: the
        same tokens, so the same cache and the same answers."""
        if len(text) < STORY_IDS_CHARS:
            return None
        task = self._story_ids.get(text)
        if task is None:
            if len(self._story_ids) >= 8:  # drafts of a document come and go
                self._story_ids.pop(next(iter(self._story_ids))).cancel()
            task = asyncio.ensure_future(self._tokenize_story(text))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._story_ids[text] = task
            return None
        if not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    async def _tokenize_story(self, text: str) -> tuple[int, ...] | None:
        body = {"content": text, "add_special": True, "parse_special": True}
        try:
            answer = await self.http.post_json("/tokenize", body)
        except BackendError as exc:
            log.info("%s: the story stays text (/tokenize: %s)", self.url, exc)
            return None
        tokens = answer.get("tokens") if isinstance(answer, Mapping) else None
        if not isinstance(tokens, list) or not tokens:
            return None
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            return None
        return tuple(tokens)

    def _body(
        self,
        prompt: Prompt,
        max_tokens: int,
        top_n: int,
        *,
        stream: bool,
        slot: int | None,
        path: str = "/completion",
    ) -> dict[str, Any]:
        """:func:`completion_body`, with a long story as token ids where they are known;
        for ``/infill``, :func:`.infill.infill_body` with the story as text (its ids from
        ``/tokenize`` start with a BOS, which the server puts before ``FIM_PRE`` itself)."""
        body = completion_body(prompt, max_tokens, top_n, stream=stream, slot=slot)
        if path == "/infill":
            return infill_body(body, prompt)
        if prompt.token_ids or not prompt.tail:
            ids = self._story_ids_for(prompt.text)
            if ids is not None:
                body["prompt"] = [*ids, *prompt.token_ids]
        return body

    async def warm(self, story: str) -> int:
        """Put ``story`` (a prompt, trailing spaces already held back) into every slot the
        pool uses that does not hold it yet, so the next weave of it starts warm: the slot
        that holds most of it first, then the others as copies of it where the server copies
        slots, else each evaluates it.  Returns how many slots it filled.  Cancel it freely:
        a weave should not wait behind it.

        A long story is also tokenised meanwhile, so that the weave's requests, its first
        included, go as token ids (``_story_ids_for``)."""
        self._story_ids_for(story)
        pool = await self.slots()
        if pool is None:
            await self._tokenised(story)
            return 0
        warmed = 0
        for state in sorted(pool.slots, key=lambda s: s.missing(story)):
            if state.missing(story) <= 0:
                continue
            async with pool.slot(story, only=state.id) as slot:
                done = await self._fill(pool, slot, story)
                if done != "evaluated":  # the rest of the story, after a copy or a draft
                    await self._evaluate(slot, story)
                if done == "held" and pool.copies is not False and pool.covered(story) is None:
                    await self._save(pool, slot, story)  # copies of the newest draft
                warmed += 1
        await self._tokenised(story)
        return warmed

    async def _tokenised(self, story: str) -> None:
        """Wait for ``story``'s tokenising, if any, without cancelling it when cancelled
        ourselves: a weave of the story uses it."""
        if (tokenising := self._story_ids.get(story)) is not None:
            await asyncio.wait({tokenising})

    # -- requests -----------------------------------------------------------------------

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        if self.infill.wanted(prompt):
            try:
                cont = await self._continue(prompt, max_tokens, top_n, "/infill")
            except BackendError as exc:
                if not self.infill.refused(exc, self.url):
                    raise
            else:
                self.infill.answered(self.url)
                return cont
        return await self._continue(prompt, max_tokens, top_n, "/completion")

    async def _continue(
        self, prompt: Prompt, max_tokens: int, top_n: int, path: str
    ) -> Continuation:
        async with await self._slot(prompt, fill=path == "/completion") as slot:
            body = self._body(prompt, max_tokens, top_n, stream=False, slot=slot, path=path)
            answer = await self.http.post_json(path, body)
        _count_prompt(answer[0] if isinstance(answer, list) and answer else answer)
        return parse_completion(answer, self.http.url(path))

    async def stream_steps(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> AsyncIterator[Step]:
        """The chain as the server generates it; closing the iterator stops the server.
        With a suffix, from ``/infill`` where the model fills in the middle (a refusal
        comes before any step: the chain then comes from ``/completion``)."""
        if self.infill.wanted(prompt):
            stream = self._stream(prompt, max_tokens, top_n, "/infill")
            try:
                try:
                    first = await anext(stream)
                except StopAsyncIteration:
                    return
                except BackendError as exc:
                    if not self.infill.refused(exc, self.url):
                        raise
                else:
                    self.infill.answered(self.url)
                    yield first
                    async for step in stream:
                        yield step
                    return
            finally:
                await stream.aclose()
        stream = self._stream(prompt, max_tokens, top_n, "/completion")
        try:
            async for step in stream:
                yield step
        finally:
            await stream.aclose()

    async def _stream(
        self, prompt: Prompt, max_tokens: int, top_n: int, path: str
    ) -> AsyncGenerator[Step, None]:
        url = self.http.url(path)
        async with await self._slot(prompt, fill=path == "/completion") as slot:
            body = self._body(prompt, max_tokens, top_n, stream=True, slot=slot, path=path)
            pool = await self.slots()  # where the slot came from, if one did
            answer = _Answer()
            try:
                async with self.http.post_sse(path, body) as events:
                    async with closing(release_steps(_chunks(events, url, answer), url)) as stream:
                        async for step in stream:
                            token = step.chosen.token_id
                            if pool is not None and slot is not None and token is not None:
                                pool.decoded(slot, token)
                            yield step
            finally:
                _count_prompt({"timings": answer.timings})

    async def suffix_logprobs(
        self, prompt: Prompt, text: str, max_tokens: int
    ) -> tuple[float, ...] | None:
        """The log-probability of each of the first ``max_tokens`` tokens of ``text`` after
        ``prompt`` (engine/suffix.py): a greedy completion held to those token ids by a
        grammar of ``<[id]>`` references, whose probabilities are the raw softmax.  On the
        prompt's slot, so only the beam and these tokens are evaluated.  None where the
        server fails or does not follow the grammar (a llama-server before token
        references): the weave then ranks without it.

        None too for a prompt with a suffix where the model fills in the middle: its
        beams were woven with the next words in view, and a ``/completion`` here would
        evaluate the whole story again outside the slot's ``/infill`` cache."""
        if prompt.suffix.strip() and self.infill.supported:
            return None
        try:
            ids = self._lead_ids.get(text)
            if ids is None:
                answer = await self.http.post_json("/tokenize", {"content": text})
                tokens = answer.get("tokens") if isinstance(answer, Mapping) else None
                ids = tuple(t for t in tokens or () if isinstance(t, int))
                if len(self._lead_ids) > 64:
                    self._lead_ids.clear()
                self._lead_ids[text] = ids
            ids = ids[:max_tokens]
            if not ids:
                return None
            async with await self._slot(prompt) as slot:
                body = completion_body(prompt, len(ids), 1, stream=False, slot=slot)
                body["grammar"] = "root ::= " + " ".join(f"<[{i}]>" for i in ids)
                answer = await self.http.post_json("/completion", body)
            _count_prompt(answer[0] if isinstance(answer, list) and answer else answer)
            steps = parse_completion(answer, self.http.url("/completion")).steps
        except BackendError as exc:
            log.info("%s: no score for the text after the cursor (%s)", self.url, exc)
            return None
        if tuple(step.chosen.token_id for step in steps) != ids:
            log.info("%s: the grammar of token ids was not followed; not scoring", self.url)
            return None
        return tuple(math.log(max(step.chosen.prob, 1e-45)) for step in steps)

    async def check(self) -> BackendInfo:
        health = await self.http.get_json("/health")
        props = await self.http.get_json("/props")
        model = str(props.get("model_path") or props.get("model_alias") or "")
        cont = await self.continue_prompt(Prompt("Hello"), 1, 2)
        probs = bool(cont.steps and cont.steps[0].top)
        await self.continue_prompt(Prompt("Hello", suffix=" world."), 1, 2)  # /infill?
        fim = "fills in the middle" if self.infill.supported else "no fill-in-the-middle"
        slots = props.get("total_slots")
        detail = f"health {health.get('status', '?')}, {slots} slots, {fim}" if slots else fim
        return BackendInfo(
            self.url, self.protocol, model, probs, detail, tuple(await self._notes(props))
        )

    async def _notes(self, props: Mapping[str, Any]) -> list[str]:
        """The server flags that cost a writer: slots that cannot be copied.  (Speculative
        decoding cannot be told from ``/props``: its ``speculative.types`` says ``none``
        under ``--spec-type ngram-simple`` too.)"""
        notes = []
        if not await self.copies_slots():
            notes.append(
                "llama-server cannot copy slots: each slot evaluates the story itself; start "
                "it with --slot-save-path DIR (and --swa-full for Gemma and other "
                "sliding-window models)"
            )
        return notes

    async def aclose(self) -> None:
        tasks = list(self._story_ids.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.http.aclose()


#: Stories this long (characters) or longer are sent as token ids once tokenised: below,
#: tokenising costs the server less than the round trip to ask for the ids.
STORY_IDS_CHARS = 2000


def completion_body(
    prompt: Prompt, max_tokens: int, top_n: int, *, stream: bool, slot: int | None = None
) -> dict[str, Any]:
    """A greedy ``/completion`` request that continues the beam by its token ids.  A server
    that gives no ids (llama-server before December 2024) gets the beam as text: its bytes
    are all there is to continue from."""
    body: dict[str, Any] = {
        "prompt": [prompt.text, *prompt.token_ids] if prompt.token_ids else prompt.as_text(),
        "n_predict": max_tokens,
        "n_probs": top_n,
        "temperature": 0,
        "cache_prompt": True,
        "stream": stream,
    }
    if stream:
        body["timings_per_token"] = True  # prompt_n in every event, not only the last
        body["return_progress"] = True  # the prompt tokens to evaluate, before the first token
        if stop := server_stops(prompt.stop):
            body["stop"] = stop
    if slot is not None:
        body["id_slot"] = slot
    return body


def server_stops(stops: Sequence[str]) -> list[str]:
    """The stop strings llama-server may stop a stream at: those of one character.

    Stopping there saves the tokens it would decode before it noticed the closed stream
    (1 to 2 a chain, 16 of 100 in a weave of the long story).  It still streams the stopping
    token's probabilities, with its text withheld (:func:`.steps.parse_step` takes it from
    the alternatives).  A longer string is left to the engine: the server withholds each
    token that could begin one, then sends it joined to the next, which would spell the
    beam wrong.  Without streaming it drops the stopping token altogether, so only streams
    ask."""
    return [s for s in stops if len(s) == 1]


def _count_prompt(answer: Any) -> None:
    """Add the prompt tokens an answer says it evaluated to the weave's usage."""
    usage = current_usage.get()
    timings = answer.get("timings") if isinstance(answer, Mapping) else None
    if usage is not None and isinstance(timings, Mapping):
        prompt_n = timings.get("prompt_n")
        if isinstance(prompt_n, int) and prompt_n > 0:
            usage.prompt_tokens += prompt_n


@attrs.define
class _Answer:
    """What one streamed answer has said so far, besides its tokens."""

    timings: dict[str, Any] = attrs.Factory(dict)
    told: bool = False  # the weave was told how many prompt tokens this request evaluates


def _note_progress(event: Mapping[str, Any], answer: _Answer) -> bool:
    """Keep an event's ``timings``; tell the weave's usage how many prompt tokens the
    server must evaluate, from the first ``prompt_progress`` of a request (``total`` less
    ``cache``).  Whether the event was only progress, with no token."""
    if isinstance(event.get("timings"), Mapping):
        answer.timings.update(event["timings"])
    progress = event.get("prompt_progress")
    if not isinstance(progress, Mapping):
        return False
    if not answer.told:
        answer.told = True
        total, cache = progress.get("total"), progress.get("cache")
        usage = current_usage.get()
        if usage is not None and isinstance(total, int) and isinstance(cache, int):
            usage.evaluating(total - cache)
    return not event.get("completion_probabilities") and not event.get("stop")


async def _chunks(events: Any, url: str, answer: _Answer) -> AsyncIterator[Chunk]:
    async with closing(sse_data(events, url)) as stream:
        async for event in stream:
            if not isinstance(event, Mapping):
                raise BackendProtocolError(url, "expected a JSON object per event")
            if _note_progress(event, answer):
                continue  # prompt progress only
            entries = event.get("completion_probabilities") or ()
            if not entries and not event.get("stop"):
                # A token without probabilities: the server ignored n_probs.
                raise BackendProtocolError(url, "the stream carries no token probabilities")
            steps = parse_steps(entries, parse_step, url)
            finished = None
            if event.get("stop"):
                finished = event.get("stop_type") == "eos" or bool(event.get("stopped_eos"))
            yield steps, finished


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
    return end_continuation(steps, ended)  # llama-server reports EOS as an empty token


# Re-exported for callers that catch backend failures without importing errors.
__all__ += ["BackendError"]

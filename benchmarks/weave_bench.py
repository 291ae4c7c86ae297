"""Benchmark: `chain` vs `token` against a real llama-server on the project's test model.

Prints, per configuration, the requests, wall time, tokens/s and suggestions of each
strategy over several prompts, and whether both found the same suggestion set.

    .venv/bin/python benchmarks/weave_bench.py [--repeat 3] [--url URL]

Without --url it builds the test model and starts its own llama-server.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from pathlib import Path

import attrs

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.backends.process import LlamaServerProcess
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import weave

PROMPTS = ["Once upon a time,", "The old man", "She opened the door and", "The cat sat"]
CONFIGS = {
    "defaults (maxSuggestions 1000)": {"max_suggestions": 1000},
    "depth 16, cutoff 0.1": {"max_depth": 16, "cutoff": 0.1, "max_suggestions": 1000},
    "no auto-stop, depth 8": {"auto_stop": False, "max_depth": 8, "max_suggestions": 1000},
    "seed defaults (maxSuggestions 25)": {},
}


async def run(url: str, repeat: int) -> None:
    backend = LlamaCppBackend(url)
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"python {platform.python_version()}; server {url}"
    )
    print(
        f"{'configuration':36} {'strategy':8} {'requests':>8} {'time s':>8} "
        f"{'tok/s':>8} {'beams':>6}  same set"
    )
    try:
        for name, config in CONFIGS.items():
            base = attrs.evolve(WeaveSettings(), **config)  # type: ignore[arg-type]
            rows = {}
            for strategy in ("token", "chain"):
                s = attrs.evolve(base, strategy=strategy)
                times, requests, tokens, beams = [], 0, 0, []
                for _ in range(repeat):
                    requests = tokens = 0
                    beams = []
                    started = time.perf_counter()
                    for prompt in PROMPTS:
                        result = await weave(backend, prompt, s)
                        requests += result.stats.requests
                        tokens += result.stats.tokens
                        beams.append({b.text for b in result.beams})
                    times.append(time.perf_counter() - started)
                t = statistics.median(times)
                rows[strategy] = (requests, t, tokens / t, sum(map(len, beams)), beams)
            same = rows["token"][4] == rows["chain"][4]
            for strategy, (req, t, tps, n, _) in rows.items():
                print(
                    f"{name:36} {strategy:8} {req:8d} {t:8.3f} {tps:8.0f} {n:6d}  "
                    f"{'yes' if same else 'no'}"
                )
    finally:
        await backend.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.url:
        await run(args.url, args.repeat)
        return
    from lloom_lsp.testmodel import build_model

    model = build_model(Path(tempfile.gettempdir()) / "lloom-bench-model.gguf")
    async with LlamaServerProcess(model) as server:
        await run(server.url, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())

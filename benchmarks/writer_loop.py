"""The writer's loop: what a weave costs while a writer types, through the language server.

    .venv/bin/python benchmarks/real_bench.py --sections writer

``real_bench.py`` measures one weave of a fixed story on a cache its warm-up filled.  A
writer types a few words, pauses, weaves, and types again, in a document often longer than
the story window.  This section does that through ``python -m lloom_lsp`` (pygls' own
client, as an editor drives it), with the server's default settings, on the real model:

* open the document, weave at its end (the first weave);
* three times: type a few words at the end (one incremental ``didChange`` a word, 0.3 s
  apart), pause 2 s, weave at the end again (a typed weave);
* after each typed weave, the same story woven again on the cache it left warm
  (``lloom.weave`` with ``fresh``: anew, not from the result cache nor the step memory):
  the warm weave the typed one is compared with.

Documents: 12,000 characters (inside the story window), 47,000 characters (a chapter: the
story window is a part of it), and two 12,000-character documents woven in turn (each one's
first weave, then type-and-weave in one, then in the other).  Every document starts with a
line no server has seen (``Draft NNNNN``), so llama-server's RAM prompt cache cannot answer.

Prompt tokens come from llama-server's ``/metrics`` (``llamacpp:prompt_tokens_total``, the
server runs with ``--metrics``): every prompt token evaluated, also by requests cancelled
halfway.  A weave's count covers everything from the end of the weave before it: the
warm-ups the typing started included.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from bench_support import LspSession, median

from lloom_lsp.backends.process import counters

HERE = Path(__file__).resolve().parent
LONG = (HERE / "stories/lighthouse_long.txt").read_text()
#: What the writer types before each typed weave.
TYPED = (
    "The wind rose again before dawn.",
    "She kept the lamp burning all the same,",
    "and somewhere below the rocks a bell answered",
)
WORD_GAP_S = 0.3
PAUSE_S = 2.0


def document(chars: int, draft: int) -> str:
    """``chars`` characters of prose with a first line no server has seen: the long
    lighthouse story, repeated as numbered chapters as far as needed."""
    parts = [f"Draft {draft}.\n\n"]
    chapter = 1
    while sum(map(len, parts)) < chars:
        parts.append(f"Chapter {chapter} of draft {draft}\n\n{LONG.strip()}\n\n")
        chapter += 1
    text = "".join(parts)[: chars + 2000]
    # end on a sentence, so the first weave is at a natural spot
    return text[: text.rindex(". ", 0, chars) + 1]


async def prompt_tokens(url: str) -> int:
    """llama-server's ``llamacpp:prompt_tokens_total``."""
    return int((await counters(url))["prompt_tokens_total"])


class Writer:
    """One document in an LSP session: typing at its end and weaving there."""

    def __init__(self, session: LspSession, uri: str, text: str) -> None:
        self.session, self.uri, self.text = session, uri, text

    def open(self) -> None:
        self.session.open(self.uri, self.text)

    async def type(self, words: str) -> None:
        for word in words.split():
            piece = ("" if self.text[-1:].isspace() else " ") + word
            self.session.insert_at_end(self.uri, self.text, piece)
            self.text += piece
            await asyncio.sleep(WORD_GAP_S)

    async def weave(self) -> tuple[float, int]:
        return await self.session.complete_at_end(self.text, uri=self.uri)


async def writer_loop(url: str, drafts: Any, logs: Path) -> dict[str, Any]:
    """The loop for each document, through one language server per case."""
    options = {"lloom": {"backend": {"url": url, "type": "llamacpp", "timeoutSeconds": 600}}}
    cases = {
        "12k": [document(12_000, next(drafts))],
        "47k": [document(47_000, next(drafts))],
        "two 12k in turn": [document(12_000, next(drafts)), document(12_000, next(drafts))],
    }
    out: dict[str, Any] = {}
    for name, texts in cases.items():
        rows: list[dict[str, Any]] = []
        async with LspSession(options) as session:
            writers = [Writer(session, f"file:///bench/doc{i}.txt", t) for i, t in enumerate(texts)]
            for w in writers:
                w.open()
                await asyncio.sleep(PAUSE_S)
                before = await prompt_tokens(url)
                wall, items = await w.weave()
                tokens = await prompt_tokens(url) - before
                rows.append({"doc": w.uri, "kind": "first", "wall": wall, "items": items,
                             "prompt": tokens, "chars": len(w.text)})  # fmt: skip
                _say(name, rows[-1])
            for typed in TYPED:
                for w in writers:
                    before = await prompt_tokens(url)
                    await w.type(typed)
                    await asyncio.sleep(PAUSE_S)
                    wall, items = await w.weave()
                    tokens = await prompt_tokens(url) - before
                    warm = await session.weave_again_at_end(w.uri, w.text)
                    rows.append({"doc": w.uri, "kind": "typed", "wall": wall,
                                 "items": items, "prompt": tokens, "warm": warm,
                                 "chars": len(w.text)})  # fmt: skip
                    _say(name, rows[-1])
            log = [line for line in session.log if "window" in line or "shrunk" in line]
            (logs / f"lsp {name}.log").write_text("\n".join(session.log) + "\n")
        typed_rows = [r for r in rows if r["kind"] == "typed"]
        out[name] = {
            "rows": rows,
            "typed_wall": median([r["wall"] for r in typed_rows]),
            "typed_prompt": median([r["prompt"] for r in typed_rows]),
            "warm_wall": median([r["warm"] for r in typed_rows]),
            "server_log": log[:10],
        }
    return out


#: The memory a chapter starts with, and what the writer changes it to (issue 20).
MEMORY = ("Keeper Ilse Varga tends the lighthouse alone.", "Keeper Odo Brand tends it now.")


async def memory_loop(url: str, drafts: Any, logs: Path) -> dict[str, Any]:
    """The 47,000-character document with a memory in its front matter: the first weave, a
    typed weave, a weave after the writer changes the memory, and a typed weave after that.
    The memory leads every story window, so changing it reads the window once again (its
    tokens, as ``lloom.showContext`` counts them) and typing still reads only the new words."""
    options = {"lloom": {"backend": {"url": url, "type": "llamacpp", "timeoutSeconds": 600}}}
    head = f"---\nmemory: |\n  {MEMORY[0]}\n---\n\n"
    rows: list[dict[str, Any]] = []
    async with LspSession(options) as session:
        w = Writer(session, "file:///bench/memory.txt", head + document(47_000, next(drafts)))
        w.open()
        await asyncio.sleep(PAUSE_S)

        async def weave(kind: str) -> None:
            before = await prompt_tokens(url)
            wall, items = await w.weave()
            tokens = await prompt_tokens(url) - before
            window = await session.context_tokens(w.uri, w.text)
            rows.append({"kind": kind, "wall": wall, "items": items, "prompt": tokens,
                         "window": window})  # fmt: skip
            _say("47k with memory", rows[-1])

        await weave("first")
        await w.type(TYPED[0])
        await asyncio.sleep(PAUSE_S)
        await weave("typed")
        old = f"  {MEMORY[0]}"
        session.replace_line(w.uri, 2, old, f"  {MEMORY[1]}")
        w.text = w.text.replace(old, f"  {MEMORY[1]}", 1)
        await asyncio.sleep(PAUSE_S)
        await weave("memory changed")
        await w.type(TYPED[1])
        await asyncio.sleep(PAUSE_S)
        await weave("typed")
        (logs / "lsp 47k with memory.log").write_text("\n".join(session.log) + "\n")
    return {"rows": rows}


def _say(name: str, row: dict[str, Any]) -> None:
    warm = f", warm {row['warm']:.2f}s" if "warm" in row else ""
    print(
        f"  writer {name}: {row['kind']} weave {row['wall']:.2f}s{warm}, "
        f"{row['prompt']} prompt tokens, {row['items']} items",
        file=sys.stderr,
        flush=True,
    )


async def small_servers(model: Path, drafts: Any, logs: Path) -> list[dict[str, Any]]:
    """A weave at the end of the 47,000-character document against llama-servers started
    with a small context: beams, not an error, and the window it had to shrink to."""
    from lloom_lsp.backends.process import LlamaServerProcess

    text = document(47_000, next(drafts))
    rows = []
    for args in (("-c", "2048", "-np", "1"), ("-c", "4096", "-np", "4")):
        name = " ".join(args)
        async with LlamaServerProcess(
            model, extra_args=args, log_path=logs / f"small {name}.log"
        ) as server:
            options = {"lloom": {"backend": {"url": server.url, "type": "llamacpp"}}}
            async with LspSession(options) as session:
                session.open(LspSession.URI, text)
                started = time.perf_counter()
                wall, items = await session.complete_at_end(text)
                said = [line for line in session.log if "shrunk" in line or "window" in line]
                errors = [line for line in session.log if "failed" in line]
            rows.append({"server": name, "wall": wall, "items": items, "said": said[:3],
                         "errors": errors[:3],
                         "total_s": time.perf_counter() - started})  # fmt: skip
            print(f"  small server {name}: {items} items in {wall:.2f}s; {said[:1]} {errors[:1]}",
                  file=sys.stderr, flush=True)  # fmt: skip
    return rows


def writer_report(result: dict[str, Any]) -> list[str]:
    """The README's tables for the writer's loop and the small servers."""
    from bench_support import fmt, table

    parts: list[str] = []
    if (writer := result.get("writer")) is not None:
        rows = []
        for name, case in writer.items():
            first = [r for r in case["rows"] if r["kind"] == "first"]
            typed = [r for r in case["rows"] if r["kind"] == "typed"]
            rows.append([
                name,
                " ".join(f"{r['wall']:.2f}" for r in first),
                " ".join(f"{r['wall']:.2f}" for r in typed),
                " ".join(str(r["prompt"]) for r in typed),
                case["typed_prompt"],
                case["warm_wall"],
                _ratio(case["typed_wall"], case["warm_wall"]),
            ])  # fmt: skip
        ratio_47 = _ratio(writer["47k"]["typed_wall"], writer["12k"]["typed_wall"])
        parts += [
            "## The writer's loop (real model, through the language server, default settings)",
            "",
            table(
                [
                    "document",
                    "first weave s",
                    "typed weaves s",
                    "prompt tokens per typed weave",
                    "median tokens",
                    "warm weave s (median)",
                    "typed / warm",
                ],
                rows,
            ),
            "",
            f"47,000 / 12,000 characters, median typed weave: {fmt(ratio_47)} (target <= 1.2). "
            "Targets: median tokens <= 300, typed / warm <= 1.3.",
        ]
    if (memory := result.get("memory")) is not None:
        parts += [
            "",
            "## Memory (real model, the 47,000-character document with memory in front matter)",
            "",
            table(
                ["weave", "wall s", "prompt tokens evaluated", "window tokens", "suggestions"],
                [
                    [r["kind"], r["wall"], r["prompt"], r["window"], r["items"]]
                    for r in memory["rows"]
                ],
            ),
            "",
            "Changing the memory reads the window once (target: about its tokens); typing "
            "reads the new words (target: a small fraction of the window).",
        ]
    if (small := result.get("small")) is not None:
        parts += [
            "",
            "## Small servers (real model, the 47,000-character document)",
            "",
            table(
                ["llama-server", "suggestions", "wall s", "said", "errors"],
                [
                    [
                        r["server"],
                        r["items"],
                        r["wall"],
                        "; ".join(r["said"]) or "-",
                        "; ".join(r["errors"]) or "-",
                    ]
                    for r in small
                ],
            ),
        ]
    return parts


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b

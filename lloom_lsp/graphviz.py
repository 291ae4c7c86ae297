"""SVG from DOT through Graphviz's ``dot`` program, when it is installed (the server's
``lloom.tree`` and ``lloom-lsp weave --tree svg``)."""

from __future__ import annotations

import asyncio
import shutil

__all__ = ["DOT_TIMEOUT", "to_svg"]

#: Seconds Graphviz may take to lay out one weave.
DOT_TIMEOUT = 20.0


async def to_svg(dot: str) -> tuple[str, str | None]:
    """(svg, None), or ("", why not): Graphviz's ``dot -Tsvg``, when it is on PATH."""
    program = shutil.which("dot")
    if program is None:
        return "", (
            "Graphviz's dot is not on PATH; install graphviz, or ask for format dot "
            "and render it yourself"
        )
    process = await asyncio.create_subprocess_exec(
        program,
        "-Tsvg",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(dot.encode()), DOT_TIMEOUT)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return "", f"Graphviz's dot took longer than {DOT_TIMEOUT:g} s"
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        return "", f"Graphviz's dot failed ({process.returncode}): {err.decode(errors='replace')}"
    return out.decode("utf-8", errors="replace"), None

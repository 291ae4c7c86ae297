"""Beams for a terminal: the seed's suggestion list, with probability bars."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine import Beam, WeaveResult
from ..engine.render import bar, visible

__all__ = ["format_beam", "format_result"]


def format_beam(index: int, beam: Beam, best: float, rank: str) -> str:
    value = beam.rank_value(rank)
    if rank == "mean":
        fraction = 2.718281828459045**beam.mean_logprob
    else:
        fraction = value / best if best > 0 else 0.0
    marks = "".join(
        (
            f"  (also: {', '.join(beam.variants)})" if beam.variants else "",
            f"  [{beam.note}]" if beam.note else "",
        )
    )
    return (
        f"{index:>3}. {bar(fraction)} {beam.score:6.3f}  p={beam.joint:.2e}  "
        f"{visible(beam.text)}{marks}"
    )


def format_result(result: WeaveResult, rank: str, story: str | None = None) -> str:
    beams: Sequence[Beam] = result.beams
    lines = []
    if story is not None:
        lines.append(visible(story[-200:]))
        lines.append("")
    best = max((b.rank_value(rank) for b in beams), default=0.0)
    lines.extend(format_beam(i, b, best, rank) for i, b in enumerate(beams, 1))
    lines.append(result.stats.speed_line(len(beams)))
    return "\n".join(lines)

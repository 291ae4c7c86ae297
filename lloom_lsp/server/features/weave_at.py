"""The weave at a position, as ``lloom.weave`` and ``lloom.tree`` both ask for it: their
arguments ``[uri, position, options?]`` read and checked, the story taken, the weave run
(or answered from the cache), and a weave something else stopped told apart from a
cancelled request.

Options, all optional: ``fresh`` (weave anew instead of answering from the cache; the
result replaces it), ``deeper`` (beams twice as long: ``weave.maxDepth`` doubled, up to its
maximum), ``after`` (weave from the story plus this text, a beam not inserted yet),
``depth`` (beams this many tokens long: with ``after``, "step N more tokens" on a beam).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import attrs
from lsprotocol import types

from ...config import WeaveSettings
from ...engine import WeaveResult
from ..app import LloomServer, command_progress_token

__all__ = ["MAX_DEPTH", "Woven", "weave_at"]

#: The largest ``weave.maxDepth`` the schema allows ("weave deeper" stops there).
MAX_DEPTH = int(attrs.fields(WeaveSettings).max_depth.metadata["maximum"])

_OPTIONS: dict[str, type] = {"fresh": bool, "deeper": bool, "after": str, "depth": int}


@attrs.frozen
class Woven:
    result: WeaveResult
    version: int | None
    after: str
    options: Mapping[str, Any]


async def weave_at(
    ls: LloomServer,
    command: str,
    uri: str,
    position: types.Position,
    rest: tuple[Any, ...],
    extra: Mapping[str, type] | None = None,
) -> Woven | dict[str, Any]:
    """The weave, or the answer to give instead (``{"error": …}``, naming what is wrong;
    ``"cancelled": true`` when something else stopped the weave).  ``extra``: the command's
    own options and their types."""
    doc = ls.document(uri)
    if doc is None:
        return {"error": f"document not open: {uri}"}
    if len(rest) > 1:
        return {"error": f"{command}: 2 or 3 arguments, got {2 + len(rest)}"}
    options = rest[0] if rest and rest[0] is not None else {}
    known = {**_OPTIONS, **(extra or {})}
    problem = _bad_options(command, options, known)
    if problem:
        return {"error": problem, "version": doc.version}
    after = options.get("after") or ""
    settings = await ls.settings_for(uri)
    depth = options.get("depth")
    if depth is not None and (isinstance(depth, bool) or not 1 <= depth <= MAX_DEPTH):
        return {"error": f"{command}: option 'depth' must be 1 to {MAX_DEPTH}, got {depth!r}"}
    if options.get("deeper"):
        depth = min((depth or settings.weave.max_depth) * 2, MAX_DEPTH)
    if depth is not None:
        settings = attrs.evolve(settings, weave=attrs.evolve(settings.weave, max_depth=depth))
    story = await ls.story(doc, position, settings, inserted=after)
    following = ls.weaver.windows.after_at(doc, position, settings)  # the text after the cursor
    token = command_progress_token.get()
    try:
        result = await ls.weaver.weave(
            uri,
            story,
            settings,
            progress_token=token,
            fresh=bool(options.get("fresh")),
            after=following,
        )
    except asyncio.CancelledError:
        if _cancelled_itself():
            raise  # $/cancelRequest: pygls answers -32800
        # Someone else stopped the weave (lloom.cancel, a settings change): an answer,
        # since Neovim drops a -32800 it did not ask for and would wait forever.
        return {"cancelled": True, "error": "cancelled", "version": doc.version}
    if result is None:
        return {"error": "backend failed", "version": doc.version}
    return Woven(result, doc.version, after, options)


def _cancelled_itself() -> bool:
    """Whether the running task itself was cancelled, not something it awaited (on Python
    3.10, which cannot tell, always)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


def _bad_options(command: str, options: Any, known: Mapping[str, type]) -> str | None:
    """What is wrong with the options, naming the field; None when nothing."""
    if not isinstance(options, dict):
        return f"{command}: options must be an object, got {type(options).__name__}"
    for key, value in options.items():
        kind = known.get(key)
        if kind is None:
            return f"{command}: unknown option {key!r} (known: {', '.join(known)})"
        if value is not None and not isinstance(value, kind):
            return f"{command}: option {key!r} must be a {kind.__name__}"
    return None

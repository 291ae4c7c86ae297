"""The VS Code extension's settings must match the server's settings schema.

``editors/vscode/package.json`` is generated from ``lloom-lsp schema`` by
``editors/vscode/scripts/gen-settings.mjs``; these tests fail when someone changes a
setting in ``config.py`` and forgets to run ``npm run gen-settings``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lloom_lsp.config import json_schema

EXTENSION = Path(__file__).resolve().parents[2] / "editors" / "vscode"

#: Settings only the VS Code client reads.
CLIENT_ONLY = {"lloom.server.command", "lloom.languages", "lloom.trace.server"}

#: Settings that pick a program, a file or a secret: user settings only.
MACHINE_SCOPED = {
    "lloom.backend.apiKeyEnv",
    "lloom.backend.modelPath",
    "lloom.backend.serverCommand",
    "lloom.server.command",
}

COMPARED = ("type", "default", "description", "enum", "minimum", "maximum", "items", "format")

VALID_SCOPES = {
    "application",
    "machine",
    "machine-overridable",
    "window",
    "resource",
    "language-overridable",
}


def _manifest() -> dict[str, Any]:
    return json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))


def _contributed() -> dict[str, dict[str, Any]]:
    configuration = _manifest()["contributes"]["configuration"]
    sections = configuration if isinstance(configuration, list) else [configuration]
    properties: dict[str, dict[str, Any]] = {}
    for section in sections:
        for key, prop in section["properties"].items():
            assert key not in properties, f"{key} is contributed twice"
            properties[key] = prop
    return properties


SERVER = json_schema()["properties"]


@pytest.mark.parametrize("key", sorted(SERVER))
def test_server_setting_matches_schema(key: str) -> None:
    contributed = _contributed()
    assert key in contributed, f"{key} missing from package.json: run `npm run gen-settings`"
    for field in COMPARED:
        assert contributed[key].get(field) == SERVER[key].get(field), (
            f"{key}.{field}: package.json has {contributed[key].get(field)!r}, "
            f"the server schema {SERVER[key].get(field)!r}"
        )
    assert contributed[key]["markdownDescription"] == SERVER[key]["description"]


def test_client_only_settings_are_exactly_the_expected_set() -> None:
    assert set(_contributed()) - set(SERVER) == CLIENT_ONLY


def test_every_setting_has_a_scope() -> None:
    for key, prop in _contributed().items():
        assert prop.get("scope") in VALID_SCOPES, f"{key} has scope {prop.get('scope')!r}"


def test_settings_that_choose_executables_files_or_secrets_are_machine_scoped() -> None:
    machine = {key for key, prop in _contributed().items() if prop["scope"] == "machine"}
    assert machine == MACHINE_SCOPED


def test_untrusted_workspaces_cannot_set_url_or_executables() -> None:
    restricted = set(_manifest()["capabilities"]["untrustedWorkspaces"]["restrictedConfigurations"])
    assert {"lloom.backend.url", *MACHINE_SCOPED} <= restricted


def test_default_languages_activate_the_extension() -> None:
    manifest = _manifest()
    languages = _contributed()["lloom.languages"]["default"]
    assert languages == ["plaintext", "markdown"]
    for language in languages:
        assert f"onLanguage:{language}" in manifest["activationEvents"]


def test_schema_command_prints_the_schema_the_generator_reads() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lloom_lsp", "schema"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["properties"] == SERVER

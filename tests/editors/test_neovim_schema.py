"""The Neovim plugin's generated settings must match the server's settings schema.

``editors/neovim/lua/lloom/schema.lua`` and the settings list in ``doc/lloom.txt`` are
generated from ``lloom_lsp.config.json_schema()`` by ``editors/neovim/scripts/gen_schema.py``;
these tests fail when someone changes a setting in ``config.py`` and forgets to run it.
They need no Neovim (tests/editors/test_neovim.py loads the generated Lua in one).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "editors" / "neovim"
SCRIPT = PLUGIN / "scripts" / "gen_schema.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_schema", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("target", "generated"),
    [("SCHEMA_LUA", '"lloom.weave.maxDepth"'), ("HELP", "*lloom.weave.maxDepth*")],
)
def test_check_reports_a_stale_file_and_a_rerun_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, generated: str
) -> None:
    gen = _load_script()
    for name in ("SCHEMA_LUA", "HELP"):
        copy = tmp_path / getattr(gen, name).name
        shutil.copy(getattr(gen, name), copy)
        monkeypatch.setattr(gen, name, copy)
    stale = getattr(gen, target)
    text = stale.read_text(encoding="utf-8")
    assert generated in text
    stale.write_text(text.replace(generated, generated.replace("Depth", "Deep")), encoding="utf-8")

    assert gen.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") != text  # --check writes nothing
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == text


def test_lua_strings_survive_quotes_backslashes_and_control_characters() -> None:
    gen = _load_script()
    assert gen.lua_string('a "b" \\ c\nd\te') == '"a \\"b\\" \\\\ c\\nd\\009e"'
    assert gen.lua_value([".", ","]) == '{ ".", "," }'
    assert gen.lua_value(False) == "false"

"""Installing the Neovim plugin from a clone, as the documented lazy.nvim and packer specs do:
the plugin lives in editors/neovim of the clone, so the spec appends that folder to
'runtimepath', and the documented install step puts the server in the clone's .venv, where
the plugin finds it by itself.

The checkout here is a copy of the plugin in a temporary folder, with a .venv/bin/lloom-lsp
that runs this repository's server.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from test_neovim import PLUGIN, STORY, expected_beams, run_nvim

#: The lines of the documented specs that this test runs.
RTP_LINE = "vim.opt.rtp:append(plugin.dir .. '/editors/neovim')"
SOURCE_LINE = "vim.cmd('runtime plugin/lloom.lua')"
BUILD = "python3 -m venv .venv && .venv/bin/pip install ."


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    import shutil

    repo = tmp_path / "lazy" / "lloom-lsp"
    shutil.copytree(PLUGIN, repo / "editors" / "neovim")
    server = repo / ".venv" / "bin" / "lloom-lsp"
    server.parent.mkdir(parents=True)
    server.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lloom_lsp "$@"\n', encoding="utf-8")
    server.chmod(server.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return repo


def test_the_documented_specs_say_what_this_test_runs() -> None:
    for doc in (PLUGIN / "doc" / "lloom.txt", PLUGIN / "README.md"):
        text = doc.read_text(encoding="utf-8")
        for line in (RTP_LINE, SOURCE_LINE, BUILD, "rtp = 'editors/neovim'"):
            assert line in text, (doc.name, line)
    # `lloom-lsp` is not a PyPI package: nothing in the plugin may say to pip-install it.
    for path in PLUGIN.rglob("*"):
        if path.is_file() and path.suffix in {".lua", ".txt", ".md", ".py"}:
            assert "pip install lloom-lsp" not in path.read_text(encoding="utf-8"), path


def test_plugin_loads_from_a_checkout_and_finds_its_server(
    tmp_path: Path, checkout: Path, llama_server_url: str
) -> None:
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    body = f"""
R.before = vim.fn.exists(':LLooMWeave')
-- The spec's config function, after startup as lazy.nvim runs it:
local plugin = {{ dir = P.repo }}
{RTP_LINE}
{SOURCE_LINE}
R.commands = vim.tbl_map(vim.fn.exists, {{ ':LLooMWeave', ':LLooMAccept', ':LLooMToggle' }})
require('lloom').setup({{
  settings = {{ lloom = {{ backend = {{ url = P.url }}, weave = EXACT }} }},
}})
R.lsp_cmd = dofile(plugin.dir .. '/editors/neovim/lsp/lloom.lua').cmd
open_story()
R.cmd = require('lloom').client().config.cmd
local before = buffer_text()
vim.cmd('LLooMAccept')
wait(30000, function() return buffer_text() ~= before end, 'the best beam')
R.text = buffer_text()
"""
    result = run_nvim(
        tmp_path, body, init="", story=str(story), url=llama_server_url, repo=str(checkout)
    )

    assert result["before"] == 0  # nothing of the plugin before the spec's lines
    assert result["commands"] == [2, 2, 2]
    server = str(checkout / ".venv" / "bin" / "lloom-lsp")
    assert result["cmd"] == [server]
    assert result["lsp_cmd"] == [server]
    assert result["text"] == STORY + expected_beams(llama_server_url)[0].insert_text

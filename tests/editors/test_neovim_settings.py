"""The Neovim plugin's settings on their way to the server: merged, told, and sent as JSON
objects, on both roads (``setup()`` and ``vim.lsp.enable('lloom')``), plus :LLooMToggle.

Driven headless like tests/editors/test_neovim.py, against the real server and backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_neovim import PLUGIN, STORY, expected_beams, run_nvim


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "story.txt"
    path.write_text(STORY, encoding="utf-8")
    return path


#: Records every workspace/configuration answer in ``answers``, as JSON text (so an empty
#: Lua table's list-or-object encoding is what the test sees), and weaves on request.
RECORD = """
local answers = {}
local answer = vim.lsp.handlers['workspace/configuration']
vim.lsp.handlers['workspace/configuration'] = function(err, params, ctx, config)
  local result = answer(err, params, ctx, config)
  table.insert(answers, vim.fn.json_encode(result))
  return result
end
R.answers = answers

local function weave_now()
  local done
  require('lloom').weave_result(function(err, result) done = { err = err, result = result } end)
  wait(30000, function() return done ~= nil end, 'lloom.weave')
  return vim.tbl_map(function(beam)
    return { text = beam.insertText, tokens = #beam.tokens }
  end, (done.result or {}).beams or {})
end
"""

SKIP_BEFORE_011 = """
if not vim.lsp.enable then
  local v = vim.version()
  R.skipped = ('Neovim %d.%d.%d has no vim.lsp.enable (0.11+)'):format(v.major, v.minor, v.patch)
  return
end
"""

DEPTH_2 = {"maxDepth": 2, "autoStop": False, "strategy": "chain", "cutoff": 0.2}


def beams_of(url: str, depth: int) -> list[dict[str, object]]:
    beams = expected_beams(url, max_depth=depth, auto_stop=False)
    return [{"text": b.insert_text, "tokens": depth} for b in beams]


def test_update_settings_on_the_lsp_enable_path_merges_into_the_clients_settings(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        SKIP_BEFORE_011
        + RECORD
        + """
vim.lsp.config('lloom', {
  cmd = P.cmd,
  settings = { lloom = { backend = { url = P.url }, weave = P.weave } },
})
vim.lsp.enable('lloom')
open_story()
R.first = weave_now()
R.told = require('lloom').update_settings({ lloom = { weave = { maxDepth = 3 } } })
R.second = weave_now()
R.client_settings = require('lloom').client().settings
R.config_settings = vim.lsp.config.lloom.settings
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, weave=DEPTH_2)
    if "skipped" in result:
        pytest.skip(result["skipped"])

    assert result["first"] == beams_of(llama_server_url, 2)
    assert result["told"] == 1
    # The change alone would have dropped backend.url: the weave would find no backend.
    assert result["second"] == beams_of(llama_server_url, 3)
    merged = {"backend": {"url": llama_server_url}, "weave": {**DEPTH_2, "maxDepth": 3}}
    assert result["client_settings"] == {"lloom": merged}
    assert json.loads(result["answers"][-1]) == [merged]
    # A client vim.lsp.enable starts later (another root) gets the change too.
    assert result["config_settings"] == {"lloom": merged}


def test_setup_again_tells_the_running_clients(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        RECORD
        + """
local function setup(depth, keymaps)
  local weave = vim.deepcopy(P.weave)
  weave.maxDepth = depth
  require('lloom').setup({
    cmd = P.cmd, settings = { lloom = { backend = { url = P.url }, weave = weave } },
    keymaps = keymaps,
  })
end
setup(2)
open_story()
R.first = weave_now()
local id = require('lloom').client().id
setup(3, { weave = '<leader>lw' })  -- as a plugin manager reloading the config does
R.mapping = vim.fn.maparg('<leader>lw', 'n', false, true).desc or vim.NIL
R.second = weave_now()
local client = require('lloom').client()
R.same_client = client.id == id
R.client_settings = client.config.settings
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, weave=DEPTH_2)

    assert result["first"] == beams_of(llama_server_url, 2)
    assert result["same_client"]
    assert result["mapping"] == "LLooM: weave at the cursor and pick a beam"  # new keymaps too
    assert result["second"] == beams_of(llama_server_url, 3)
    merged = {"backend": {"url": llama_server_url}, "weave": {**DEPTH_2, "maxDepth": 3}}
    assert result["client_settings"] == {"lloom": merged}
    assert json.loads(result["answers"][-1]) == [merged]


def test_lsp_config_is_typed_and_sends_settings_as_an_object(tmp_path: Path, story: Path) -> None:
    source = (PLUGIN / "lsp" / "lloom.lua").read_text(encoding="utf-8")
    assert "---@type vim.lsp.Config\nreturn {" in source
    body = (
        RECORD
        + """
R.encoded = vim.fn.json_encode(dofile(P.plugin .. '/lsp/lloom.lua').settings)
"""
        + SKIP_BEFORE_011
        + """
vim.lsp.config('lloom', { cmd = P.cmd })
vim.lsp.enable('lloom')
open_story()
wait(30000, function() return #answers > 0 end, 'a workspace/configuration request')
"""
    )
    result = run_nvim(tmp_path, body, story=str(story))

    assert json.loads(result["encoded"]) == {"lloom": {}}
    if "skipped" in result:
        pytest.skip(result["skipped"])
    assert json.loads(result["answers"][0]) == [{}]  # an object; an empty list before
    problems = [n for n in result["notifications"] if n["level"] in ("WARN", "ERROR")]
    assert problems == []


def test_toggle_turns_automatic_suggestions_on_and_off(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        RECORD
        + """
require('lloom').setup({ cmd = P.cmd, settings = { lloom = { backend = { url = P.url } } } })
open_story()
local function automatic()
  local ok, decoded = pcall(vim.fn.json_decode, answers[#answers] or '')
  local section = ok and type(decoded) == 'table' and decoded[1]
  local inline = type(section) == 'table' and section.inline
  if type(inline) == 'table' then
    return inline.automatic
  end
end
vim.cmd('LLooMToggle')
R.on = require('lloom').settings().lloom.inline
wait(10000, function() return automatic() == true end, 'the server to read automatic = true')
vim.cmd('LLooMToggle')
R.off = require('lloom').settings().lloom.inline
wait(10000, function() return automatic() == false end, 'the server to read automatic = false')
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    assert result["on"] == {"automatic": True}
    assert result["off"] == {"automatic": False}
    infos = [n["message"] for n in result["notifications"] if n["level"] == "INFO"]
    assert "LLooM: automatic suggestions on" in infos
    assert "LLooM: automatic suggestions off" in infos


def test_a_settings_change_clears_a_failure_from_the_statusline(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = """
require('lloom').setup({
  cmd = P.cmd,
  settings = { lloom = { backend = { url = 'http://127.0.0.1:9', timeoutSeconds = 2 } } },
})
open_story()
vim.cmd('LLooMAccept')
wait(30000, function() return require('lloom').state().state == 'failed' end, 'the failure')
R.failed = require('lloom').status()
require('lloom').update_settings({ lloom = { backend = { url = P.url } } })
R.fixed = require('lloom').status()
R.fixed_state = require('lloom').state().state
local done
require('lloom').weave_result(function(err, result) done = { err = err, result = result } end)
wait(30000, function() return done ~= nil end, 'a weave with the settings fixed')
R.beams = #(done.result.beams or {})
wait(30000, function() return require('lloom').state().state == 'done' end, 'the done status')
R.after = require('lloom').status()
"""
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    assert result["failed"].startswith("LLooM: failed"), result["failed"]
    # At once, before any weave: the failure told of the settings just replaced.
    assert "failed" not in result["fixed"] and result["fixed_state"] != "failed", result["fixed"]
    assert result["beams"] > 0 and "failed" not in result["after"]

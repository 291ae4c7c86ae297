"""The Neovim plugin's weaves: where Nvim's own code actions weave, the statusline fed by
``lloom/status``, :LLooMCancel, :LLooMAccept's progress and :LLooMNext.

Driven headless like tests/editors/test_neovim.py, against the real server and backend.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_neovim import SETUP, STORY, expected_beams, run_nvim, transitions

from lloom_lsp.server.labels import beam_labels


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "story.txt"
    path.write_text(STORY, encoding="utf-8")
    return path


#: Stories whose last character is no space: the server holds trailing spaces back, so a
#: weave before a space would weave the same beams.
@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(STORY.rstrip(), "", id="end-of-line"),
        pytest.param("Über 🙂 once upon a time,", " THE END.", id="unicode-mid-line"),
    ],
)
def test_code_action_in_normal_mode_weaves_where_weave_does(
    tmp_path: Path, llama_server_url: str, before: str, after: str
) -> None:
    story = tmp_path / "story.txt"
    story.write_text(before + after, encoding="utf-8")
    cursor = [1, len(before.encode()) - 1]  # Normal mode, on the last character of `before`
    body = (
        SETUP
        + """
open_story()
local offered = {}
vim.ui.select = function(items, opts, on_choice)
  table.insert(offered, vim.tbl_map(function(item) return (opts.format_item(item)) end, items))
  on_choice(nil)
end
vim.lsp.buf.code_action()
wait(30000, function() return #offered == 1 end, "Nvim's code action menu")
R.titles = offered[1]
vim.cmd('LLooMWeave')
wait(30000, function() return #offered == 2 end, 'the :LLooMWeave picker')
R.rows = offered[2]
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, cursor=cursor)

    beams = expected_beams(llama_server_url, before)
    labels = beam_labels([beam.insert_text for beam in beams])
    titles = [re.sub(r" \(p=[^)]*\)$", "", t.removeprefix("Continue: ")) for t in result["titles"]]
    # Before the character under the cursor, the built-in wove a story one character short.
    assert titles == labels
    rows = [  # each row's note (why it sits below beams scored higher) after the label
        row.removesuffix(f"  · {beam.note}" if beam.note else "")
        for row, beam in zip(result["rows"], beams)
    ]
    shown = [row.split(" ", 2)[2].split("   │ ")[0].strip() for row in rows]
    assert len(shown) == len(labels)
    for text, label in zip(shown, labels):  # a label cut to leave room for the note ends in …
        assert text == label or (text.endswith("…") and label.startswith(text[:-1])), text


def test_code_action_of_an_lsp_enable_client_weaves_where_weave_does(
    tmp_path: Path, llama_server_url: str
) -> None:
    story = tmp_path / "story.txt"
    story.write_text(STORY.rstrip(), encoding="utf-8")
    body = """
if not vim.lsp.enable then
  R.skipped = 'no vim.lsp.enable before Nvim 0.11'
  return
end
vim.lsp.config('lloom', {
  cmd = P.cmd, settings = { lloom = { backend = { url = P.url }, weave = EXACT } },
})
vim.lsp.enable('lloom')
open_story()
vim.ui.select = function(items, opts, on_choice)
  R.titles = vim.tbl_map(function(item) return (opts.format_item(item)) end, items)
  on_choice(nil)
end
vim.lsp.buf.code_action()
wait(30000, function() return R.titles ~= nil end, "Nvim's code action menu")
"""
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)
    if "skipped" in result:
        pytest.skip(result["skipped"])

    beams = expected_beams(llama_server_url, STORY.rstrip())
    labels = beam_labels([beam.insert_text for beam in beams])
    titles = [re.sub(r" \(p=[^)]*\)$", "", t.removeprefix("Continue: ")) for t in result["titles"]]
    assert titles == labels


def test_statusline_follows_every_weave(tmp_path: Path, story: Path, llama_server_url: str) -> None:
    body = (
        """
R.no_client = require('lloom').status()
"""
        + SETUP
        + """
open_story()
R.idle = require('lloom').status()
local seen = {}
vim.api.nvim_create_autocmd('User', {
  pattern = 'LLooMStatus',
  callback = function()
    local state = require('lloom').state()
    table.insert(seen, state.state)
    if state.state == 'weaving' then
      table.insert(R.weaving, { message = state.message, shown = require('lloom').status() })
    end
  end,
})
R.weaving = {}
local done
require('lloom').weave_result(function(err, result) done = result end)
wait(30000, function() return done ~= nil and seen[#seen] == 'done' end, 'the weave to end')
R.seen = seen
R.done = require('lloom').status()
R.state = require('lloom').state()
R.speed = done.speedLine
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    assert result["no_client"] == ""
    assert result["idle"] == "LLooM"
    assert transitions(result["seen"]) == ["weaving", "done"]
    # While it weaves, what the server says it is doing ("3 of 12 beams") follows.
    for update in result["weaving"]:
        message = f" {update['message']}" if update["message"] else ""
        assert update["shown"] == "LLooM: weaving…" + message, update
    assert result["state"]["state"] == "done"
    assert result["state"]["message"] == result["speed"]
    assert result["state"]["last_weave"] == result["speed"]
    assert result["done"] == "LLooM: " + result["speed"]
    assert result["speed"].startswith(f"{len(expected_beams(llama_server_url))} suggestions in ")


def test_cancel_stops_the_weave_in_progress(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    # One token per request, up to 1,000 beams of 512 tokens: seconds of weaving.
    slow = {"strategy": "token", "maxDepth": 512, "maxSuggestions": 1000, "autoStop": False}
    body = """
require('lloom').setup({
  cmd = P.cmd, settings = { lloom = { backend = { url = P.url }, weave = P.slow } },
})
open_story()
local done
require('lloom').weave_result(function(err, result) done = { err = err, result = result } end)
wait(30000, function() return require('lloom').state().state == 'weaving' end, 'the weave to start')
vim.cmd('LLooMCancel')
wait(10000, function() return require('lloom').state().state == 'cancelled' end, 'cancelled')
R.status = require('lloom').status()
-- The server is free again: a short weave is answered.
require('lloom').update_settings({ lloom = { weave = { strategy = 'chain', maxDepth = 2 } } })
local again
require('lloom').weave_result(function(err, result) again = result end)
wait(30000, function() return again ~= nil end, 'a weave after the cancel')
R.again = #again.beams
R.answered = vim.wait(5000, function() return done ~= nil end, 10)
"""
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, slow=slow)

    assert result["status"] == "LLooM: cancelled"
    assert result["again"] > 0
    assert result["answered"]  # the cancelled lloom.weave is answered (-32800), not left pending


def test_accept_reports_progress(tmp_path: Path, story: Path, llama_server_url: str) -> None:
    body = (
        """
local reports = {}
local progress = vim.lsp.handlers['$/progress']
vim.lsp.handlers['$/progress'] = function(err, result, ctx, config)
  table.insert(reports, { token = result.token, kind = result.value.kind,
    message = result.value.message or vim.NIL })
  return progress(err, result, ctx, config)
end
"""
        + SETUP
        + """
open_story()
local before = buffer_text()
vim.cmd('LLooMAccept')
wait(30000, function() return buffer_text() ~= before end, 'the best beam')
R.reports = vim.tbl_filter(function(r)
  return tostring(r.token):find('^lloom%-accept%-') ~= nil
end, reports)
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    kinds = [r["kind"] for r in result["reports"]]
    assert kinds[0] == "begin" and kinds[-1] == "end", result["reports"]
    beams = expected_beams(llama_server_url)
    assert result["reports"][-1]["message"].startswith(f"{len(beams)} suggestions in ")


def test_next_puts_the_next_beam_in_place_of_the_one_inserted(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        SETUP
        + """
open_story()
local cursor = vim.api.nvim_win_get_cursor(0)
vim.cmd('LLooMAccept')
wait(30000, function()
  return not vim.deep_equal(vim.api.nvim_win_get_cursor(0), cursor)
end, 'the best beam')
R.texts = { buffer_text() }
vim.cmd('LLooMNext')
table.insert(R.texts, buffer_text())
R.cursor = vim.api.nvim_win_get_cursor(0)
vim.cmd('LLooMNext')
table.insert(R.texts, buffer_text())
vim.cmd('normal! x')  -- a change of the user's own: nothing to replace any more
vim.cmd('LLooMNext')
table.insert(R.texts, buffer_text())
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    beams = expected_beams(llama_server_url)
    texts = result["texts"]
    assert texts[:3] == [STORY + beam.insert_text for beam in beams[:3]]
    assert result["cursor"] == [1, len(texts[1].encode()) - 1]
    assert texts[3] == texts[2][:-1]
    warnings = [n["message"] for n in result["notifications"] if n["level"] == "WARN"]
    assert warnings == ["LLooM: no beam just inserted here: :LLooMAccept or :LLooMWeave first"]

""":LLooMWeave's picker and K in a lloom buffer: what a writer sees on a terminal screen.

Nvim's own vim.ui.select is an inputlist that pages 28 two-line beams through
``-- More --``; the plugin shows a floating list instead, one line per beam cut to the
screen, with K for a beam's tokens.  A vim.ui.select that a UI plugin put in its place
gets the same one-line rows.  K hovers a woven token through the LSP (on 0.7 it ran
``man``), unless the user mapped K.

Driven headless like tests/editors/test_neovim.py, against the real server and backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_neovim import SETUP, STORY, expected_beams, run_nvim

from lloom_lsp.server.labels import beam_labels

BAR = set("█▏▎▍▌▋▊▉·")


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "story.txt"
    path.write_text(STORY, encoding="utf-8")
    return path


def visible(text: str) -> str:
    return text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎").replace("\t", "⇥")


def check_row(row: str, label: str, width: int) -> None:
    """A row: the bar, the score and the beam's label from its beginning, cut to ``width``."""
    assert len(row) <= width, row
    bar, _score, rest = row.split(" ", 2)
    assert len(bar) == 10 and set(bar) <= BAR, row
    text = rest[1:]
    if text.endswith("…") and text[:-1] != visible(label):
        assert visible(label).startswith(text[:-1]), (row, label)
    else:
        assert text == visible(label), (row, label)


def test_the_builtin_picker_is_a_float_of_one_line_per_beam_with_tokens_on_k(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    pick = 3
    body = (
        SETUP
        + """
open_story()
local before = buffer_text()
R.builtin = require('lloom.picker').builtin_select()
vim.cmd('LLooMWeave')
wait(30000, function() return vim.bo.filetype == 'lloombeams' end, 'the beam list')
R.columns, R.screen_lines = vim.o.columns, vim.o.lines
R.rows = vim.api.nvim_buf_get_lines(0, 0, -1, false)
local config = vim.api.nvim_win_get_config(0)
R.float = { relative = config.relative, width = config.width, height = config.height }
vim.api.nvim_win_set_cursor(0, { P.pick, 0 })
local list = vim.api.nvim_get_current_win()
local function detail()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    local buf = vim.api.nvim_win_get_buf(win)
    if vim.bo[buf].filetype == 'lloombeam' then
      return vim.api.nvim_buf_get_lines(buf, 0, -1, false)
    end
  end
end
vim.cmd('normal K')
-- What a terminal's main loop does next: the scheduled callbacks, and CursorMoved (a
-- float opened resets where Nvim last saw the cursor).  The script has no main loop.
vim.wait(100, function() return false end)
vim.cmd('doautocmd CursorMoved')
R.list_open = vim.api.nvim_win_is_valid(list) and vim.api.nvim_get_current_win() == list
R.detail = detail()
vim.api.nvim_win_set_cursor(0, { P.pick + 1, 0 })
vim.cmd('doautocmd CursorMoved')
R.detail_after_move = detail() ~= nil
vim.api.nvim_win_set_cursor(0, { P.pick, 0 })
vim.cmd([[execute "normal \\<CR>"]])
wait(30000, function() return buffer_text() ~= before end, 'the chosen beam')
R.text = buffer_text()
R.floats = #vim.tbl_filter(function(win)
  return vim.api.nvim_win_get_config(win).relative ~= ''
end, vim.api.nvim_list_wins())
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, pick=pick)

    assert result["builtin"]
    beams = expected_beams(llama_server_url)
    labels = beam_labels([beam.insert_text for beam in beams])
    rows = result["rows"]
    assert len(rows) == len(beams) > pick
    assert result["float"]["relative"] == "editor"
    assert result["float"]["width"] <= result["columns"] - 4
    assert result["float"]["height"] <= result["screen_lines"] - 4
    for number, (row, label) in enumerate(zip(rows, labels), 1):
        assert row.startswith(f"{number:2d} "), row
        check_row(row[3:], label, result["columns"] - 6)
    # K: the beam's text, its score and joint probability, then a line per token, in a
    # float below the list, which stays open (on 0.7 that float's WinLeave closed it).
    assert result["list_open"] and not result["detail_after_move"]
    beam, detail = beams[pick - 1], result["detail"]
    assert detail[0] == visible(beam.insert_text)
    assert detail[1].startswith(f"score {beam.score:.2f}  p=")
    assert len(detail) == 2 + len(beam.tokens)
    for line, token in zip(detail[2:], beam.tokens):
        bar, percent, text = line.split(maxsplit=2)
        assert len(bar) == 8 and set(bar) <= BAR and percent.endswith("%"), line
        assert json.loads(text) == token.text, line
    assert result["text"] == STORY + beam.insert_text
    assert result["floats"] == 0  # the list and the tokens closed


def test_a_replaced_vim_ui_select_gets_one_line_rows_that_fit(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        SETUP
        + """
open_story()
vim.o.columns = 60
local before = buffer_text()
vim.ui.select = function(items, opts, on_choice)  -- as telescope or dressing would
  R.kind = opts.kind
  R.rows = vim.tbl_map(opts.format_item, items)
  R.details = vim.tbl_map(function(item) return item.detail end, items)
  on_choice(items[2], 2)
end
vim.cmd('LLooMWeave')
wait(30000, function() return R.rows ~= nil and buffer_text() ~= before end, 'the beam picked')
R.text = buffer_text()
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    beams = expected_beams(llama_server_url)
    labels = beam_labels([beam.insert_text for beam in beams])
    assert result["kind"] == "lloom.beam" and len(result["rows"]) == len(beams)
    for row, label in zip(result["rows"], labels):
        check_row(row, label, 60 - 10)
    assert result["rows"][0].startswith("█" * 10)
    assert result["details"][0].startswith("p=")  # the tokens, for a picker with a preview
    assert result["text"] == STORY + beams[1].insert_text


HOVER = """
open_story()
local before = buffer_text()
vim.cmd('LLooMAccept')
wait(30000, function() return buffer_text() ~= before end, 'the best beam')
-- the cursor on the first woven token (the story is ASCII: columns are bytes)
local spans
wait(10000, function()
  require('lloom').spans(function(err, result)
    spans = not err and result and result.spans or nil
  end)
  vim.wait(200, function() return spans ~= nil end, 10)
  return spans ~= nil and spans[1] ~= nil
end, 'the woven spans')
local start = spans[1].range.start
vim.api.nvim_win_set_cursor(0, { start.line + 1, start.character })
R.markdown_raw = vim.fn.has('nvim-0.8') == 0  -- 0.7 shows code spans and bold as typed
local map = vim.fn.maparg('K', 'n', false, true)
R.map = { buffer = map.buffer, desc = map.desc }
local params = vim.lsp.util.make_position_params(0, require('lloom').client().offset_encoding)
local answers = vim.lsp.buf_request_sync(0, 'textDocument/hover', params, 10000)
for _, answer in pairs(answers or {}) do
  if answer.result then R.hover = answer.result.contents.value end
end
vim.cmd('normal K')
"""


def test_k_hovers_a_woven_token(tmp_path: Path, story: Path, llama_server_url: str) -> None:
    body = (
        SETUP
        + HOVER
        + """
wait(10000, function()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(win).relative ~= '' then
      R.shown = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(win), 0, -1, false)
      return true
    end
  end
end, 'the hover window')
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    assert result["map"]["buffer"] == 1  # ours (0.7 to 0.9), or Nvim's own (0.10+)
    hover = result["hover"]
    assert hover, "no hover on the woven token"
    first_words = hover.split("\n")[0].split()[:2]
    shown = "\n".join(result["shown"])
    assert all(word.strip("`*“”") in shown for word in first_words), (hover, shown)
    if result["markdown_raw"]:  # so the plugin asks 0.7's hover for plain text
        assert "`" not in shown and "**" not in shown, shown


def test_k_stays_the_users_own(tmp_path: Path, story: Path, llama_server_url: str) -> None:
    body = (
        "vim.keymap.set('n', 'K', function() vim.g.users_k = (vim.g.users_k or 0) + 1 end)\n"
        + SETUP
        + HOVER
        + """
R.users_k = vim.g.users_k
R.floats = #vim.tbl_filter(function(win)
  return vim.api.nvim_win_get_config(win).relative ~= ''
end, vim.api.nvim_list_wins())
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    assert result["map"]["buffer"] == 0 and result["users_k"] == 1
    assert result["floats"] == 0

""":LLooMWeave's picker and K in a lloom buffer: what a writer sees on a terminal screen.

Nvim's own vim.ui.select is an inputlist that pages 28 two-line beams through
``-- More --``; the plugin shows a floating list instead, one line per beam cut to the
screen, with K for a beam's tokens.  A vim.ui.select that a UI plugin put in its place
gets the same one-line rows.  K hovers a woven token through the LSP (on 0.7 it ran
``man``), unless the user mapped K.

Driven headless like tests/editors/test_neovim.py, against the real server and backend.
"""

from __future__ import annotations

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


def check_row(row: str, label: str, width: int, note: str = "") -> None:
    """A row: the bar, the score and the beam's label from its beginning, cut to ``width``
    with an ellipsis, then the beam's note (why it sits below beams scored higher) whole."""
    assert len(row) <= width, row
    suffix = f"  · {note}" if note else ""
    assert row.endswith(suffix), (row, note)
    row = row[: len(row) - len(suffix)]
    bar, _score, rest = row.split(" ", 2)
    assert len(bar) == 10 and set(bar) <= BAR, row
    text = rest[1:]
    if text.endswith("…") and text[:-1] != visible(label):
        assert visible(label).startswith(text[:-1]), (row, label)
    else:
        assert text == visible(label), (row, label)


def quoted(text: str) -> str:
    """A token as the K details and the server's tokenDetails quote it: never escaped."""
    return f"“{visible(text)}”"


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
    for number, (row, label, beam) in enumerate(zip(rows, labels, beams), 1):
        assert row.startswith(f"{number:2d} "), row
        check_row(row[3:], label, result["columns"] - 6 - 3, beam.note)
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
        assert text == quoted(token.text), line
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
    for row, label, beam in zip(result["rows"], labels, beams):
        check_row(row, label, 60 - 10, beam.note)
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


#: The list's windows: the float with the beams, its tokens (K) and, on Nvim 0.7 and 0.8
#: (no float titles), the one-line float over its top border that shows its keys.
WINDOWS = """
local function float_windows()
  local out = {}
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    local config = vim.api.nvim_win_get_config(win)
    if config.relative ~= '' then
      local row = config.row
      if type(row) == 'table' then row = row[vim.val_idx] end  -- 0.7: a float as a table
      table.insert(out, {
        win = win,
        relative = config.relative,
        over = config.win,
        row = row,
        focusable = config.focusable,
        filetype = vim.bo[vim.api.nvim_win_get_buf(win)].filetype,
        lines = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(win), 0, -1, false),
      })
    end
  end
  return out
end
local function title_of(list)
  if vim.fn.has('nvim-0.9') == 1 then
    local title = vim.api.nvim_win_get_config(list).title
    if type(title) == 'table' then  -- 0.10+: chunks
      title = table.concat(vim.tbl_map(function(chunk) return chunk[1] end, title))
    end
    return title
  end
  for _, float in ipairs(float_windows()) do
    if float.relative == 'win' and float.over == list and float.row == -1 then
      assert(float.focusable == false, 'the keys float takes the cursor')
      return float.lines[1]
    end
  end
end
local function detail_open()
  for _, float in ipairs(float_windows()) do
    if float.filetype == 'lloombeam' then return true end
  end
  return false
end
"""


def test_the_float_shows_its_keys_and_each_beams_note_and_q_closes_the_tokens_first(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    """On every Nvim the list shows its keys on its top border (0.7 has no float titles);
    a beam the server ranks below beams scored higher says why; rows on a narrow screen
    end in an ellipsis; and q with a beam's tokens open closes only those."""
    body = (
        SETUP
        + WINDOWS
        + """
open_story()
vim.o.columns = P.columns
local before = buffer_text()
local answer
require('lloom').weave_result(function(err, result) answer = { err = err, result = result } end,
  { depth = P.depth })
wait(30000, function() return answer ~= nil end, 'the weave')
R.beams = vim.tbl_map(function(beam)
  return { label = beam.label, note = beam.note, insertText = beam.insertText }
end, answer.result.beams)
vim.cmd(P.depth .. 'LLooMStep')
wait(30000, function() return vim.bo.filetype == 'lloombeams' end, 'the beam list')
local list = vim.api.nvim_get_current_win()
R.rows = vim.api.nvim_buf_get_lines(0, 0, -1, false)
R.width = vim.api.nvim_win_get_width(list)
R.title = title_of(list)
vim.api.nvim_win_set_cursor(list, { 1, 0 })
vim.cmd('normal K')
vim.wait(100, function() return false end)
vim.cmd('doautocmd CursorMoved')
R.detail_open = detail_open()
vim.cmd('normal q')
vim.wait(100, function() return false end)
R.after_q = { detail = detail_open(), list = vim.api.nvim_win_is_valid(list) }
R.current_is_list = vim.api.nvim_get_current_win() == list
vim.cmd('normal q')
vim.wait(200, function() return false end)
R.after_second_q = vim.api.nvim_win_is_valid(list)
R.floats = #float_windows()
R.unchanged = buffer_text() == before
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, columns=56, depth=4)

    assert result["title"] == " LLooM beams: <CR> insert  K tokens  q cancel "
    beams, rows, width = result["beams"], result["rows"], result["width"]
    assert len(rows) == len(beams) > 1 and width <= 56 - 6
    for number, (row, beam) in enumerate(zip(rows, beams), 1):
        assert row.startswith(f"{number:2d} "), row
        check_row(row[3:], beam["label"], width - 3, beam["note"])
    assert any(beam["note"] for beam in beams), beams  # depth 4: some stop mid-phrase
    assert any("…  · " in row or row.endswith("…") for row in rows), rows  # cut to fit
    # K opens the tokens; q closes them and leaves the list; q again cancels it
    assert result["detail_open"]
    assert result["after_q"] == {"detail": False, "list": True} and result["current_is_list"]
    assert not result["after_second_q"] and result["floats"] == 0 and result["unchanged"]


def test_rows_keep_the_note_and_cut_long_labels_with_an_ellipsis_to_the_float(
    tmp_path: Path,
) -> None:
    """The rows of the capture on Gemma 3 270M (docs/captures): a long label is cut with
    "…" inside the float's border, never by it, and the notes stay whole; no server."""
    body = """
vim.o.columns = 70
local beams = require('lloom.beams')
local items = beams.items({
  { score = 4.33, joint = 1e-6, label = 'what he had never seen before: a whale.', note = '' },
  { score = 5.26, joint = 1e-6, note = 'stops mid-phrase',
    label = "what he had never seen before: the lighthouse keeper's" },
  { score = 4.56, joint = 1e-6, label = 'a ship in the water', note = 'cut short' },
})
local bufnr, win = require('lloom.picker').float(items, 'LLooM beams', function() end)
R.rows = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
R.width = vim.api.nvim_win_get_width(win)
R.widths = vim.tbl_map(vim.fn.strdisplaywidth, R.rows)
R.select_rows = vim.tbl_map(beams.format_item, items)
"""
    result = run_nvim(tmp_path, body)

    rows, width = result["rows"], result["width"]
    assert width == 70 - 6 and max(result["widths"]) <= width, rows
    assert rows[0] == " 1 ████████▎· 4.33  what he had never seen before: a whale."
    assert rows[1].startswith(" 2 ██████████ 5.26  what he had never") and rows[1].endswith(
        "…  · stops mid-phrase"
    ), rows[1]
    assert rows[2].endswith(" 4.56  a ship in the water  · cut short"), rows[2]
    assert result["select_rows"][1].endswith("…  · stops mid-phrase")

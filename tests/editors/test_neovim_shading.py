"""Probability shading in Neovim: the server's ``lloom/spans`` drawn as extmarks in the
``lloom_shading`` namespace (LLooMShadeLow below 5 %, LLooMShadeMedium below 20 %,
LLooMShadeFaint below 50 %), and :LLooMShading, which turns ``lloom.woven.shading`` off
and on.

Driven headless like tests/editors/test_neovim.py, against the real server and backend.
The spans expected come from a direct ``lloom.spans`` request in the same Neovim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_neovim import SETUP, STORY, run_nvim

#: Opens the story, inserts the best beam with :LLooMAccept and waits for its shading.
#: ``marks()`` reads the namespace's extmarks as plain tables; ``direct()`` asks
#: ``lloom.spans`` itself.
ACCEPTED = """
open_story()
R.story_buf = vim.api.nvim_get_current_buf()
local shading = require('lloom.shading')
local ns = vim.api.nvim_create_namespace('lloom_shading')
local function marks()
  local out = {}
  for _, m in ipairs(vim.api.nvim_buf_get_extmarks(R.story_buf, ns, 0, -1, { details = true })) do
    local d = m[4]
    table.insert(out, { m[2], m[3], d.end_row, d.end_col, d.hl_group })
  end
  return out
end
local function direct()
  local client = require('lloom').client()
  local answer
  require('lloom.client').execute(client, 'lloom.spans', { vim.uri_from_bufnr(R.story_buf) },
    function(err, result) answer = { err = err, result = result } end, R.story_buf)
  wait(10000, function() return answer ~= nil end, 'the lloom.spans answer')
  assert(answer.err == nil, vim.inspect(answer.err))
  return answer.result
end
local before = buffer_text()
vim.cmd('LLooMAccept')
wait(30000, function() return buffer_text() ~= before end, 'the best beam in the story')
wait(30000, function()
  local drawn = shading.drawn[R.story_buf]
  return drawn ~= nil and drawn.version == vim.lsp.util.buf_versions[R.story_buf]
end, 'the shading of the woven text')
"""


def groups(spans: list[dict[str, Any]]) -> list[str | None]:
    """Each span's shade, as the VS Code extension chooses it."""
    out: list[str | None] = []
    for span in spans:
        prob = span["prob"]
        out.append(
            "LLooMShadeLow"
            if prob < 0.05
            else "LLooMShadeMedium"
            if prob < 0.2
            else "LLooMShadeFaint"
            if prob < 0.5
            else None
        )
    return out


def expected_marks(
    text: str, spans: list[dict[str, Any]], encoding: str = "utf-16"
) -> list[list[Any]]:
    """(row, byte column, end row, end byte column, group) of each shaded span, for a
    one-line ``text`` whose spans are in code units of ``encoding`` (Nvim 0.7 negotiates
    UTF-16, 0.11 UTF-8)."""

    def byte_col(character: int) -> int:
        if encoding == "utf-8":
            return character
        units = 0
        for index, ch in enumerate(text):
            if units >= character:
                return len(text[:index].encode())
            units += 2 if ord(ch) > 0xFFFF else 1
        return len(text.encode())

    out = []
    for span, group in zip(spans, groups(spans)):
        if group:
            start, end = span["range"]["start"], span["range"]["end"]
            out.append(
                [
                    start["line"],
                    byte_col(start["character"]),
                    end["line"],
                    byte_col(end["character"]),
                    group,
                ]
            )
    return sorted(out)


@pytest.mark.parametrize(
    "story_text",
    [pytest.param(STORY, id="ascii"), pytest.param("Über 🙂 once upon a time, ", id="unicode")],
)
def test_an_accepted_beam_is_shaded_by_probability(
    tmp_path: Path, llama_server_url: str, story_text: str
) -> None:
    story = tmp_path / "story.txt"
    story.write_text(story_text, encoding="utf-8")
    body = (
        SETUP
        + ACCEPTED
        + """
R.text = buffer_text()
R.marks = marks()
R.direct = direct()
R.version = vim.lsp.util.buf_versions[R.story_buf]
R.encoding = require('lloom').client().offset_encoding
-- An answer for another version than the buffer's is dropped; the marks stay.
R.stale_applied = shading.apply(require('lloom').client(),
  { uri = R.direct.uri, version = R.version - 1, spans = {} })
R.marks_after_stale = #marks()
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    direct = result["direct"]
    assert direct["version"] == result["version"]
    spans = direct["spans"]
    assert spans, "the accepted beam left no woven spans"
    assert result["encoding"] in ("utf-8", "utf-16")
    assert "".join(s["text"] for s in spans) == result["text"][len(story_text) :]
    assert any(groups(spans)), f"no token of the beam is below 50 %: {spans}"
    assert sorted(result["marks"]) == expected_marks(result["text"], spans, result["encoding"])
    assert result["stale_applied"] is False
    assert result["marks_after_stale"] == len(result["marks"])


def test_shading_command_turns_it_off_and_on(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        SETUP
        + ACCEPTED
        + """
R.shaded = #marks()
local function woven_setting()
  local woven = require('lloom').settings().lloom.woven
  return woven and woven.shading
end
R.off = require('lloom').shading()
R.setting_off = woven_setting()
wait(10000, function() return #marks() == 0 end, 'the shading cleared')
R.drawn_off = shading.drawn[R.story_buf] ~= nil
vim.cmd('LLooMShading')
R.setting_on = woven_setting()
-- The server sends the spans again after the settings change.
wait(10000, function() return #marks() == R.shaded end, 'the shading again')
R.messages = vim.tbl_map(function(n) return n.message end, R.notifications)
-- Edit the woven text away: the server's empty list clears what is left of the marks.
vim.api.nvim_buf_set_lines(R.story_buf, 0, -1, false, { P.story_text })
wait(10000, function() return shading.drawn[R.story_buf] == nil end, 'the empty lloom/spans')
R.after_edit = #marks()
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, story_text=STORY)

    assert result["shaded"] > 0
    assert result["off"] is False and result["setting_off"] is False
    assert result["drawn_off"] is False
    assert result["setting_on"] is True
    assert result["messages"][-2:] == ["LLooM: shading off", "LLooM: shading on"]
    assert result["after_edit"] == 0


def test_highlight_groups_are_defaults_and_survive_a_colorscheme(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        """
vim.cmd('highlight LLooMShadeLow guibg=#123456')  -- the user's own, before the plugin's
"""
        + SETUP
        + ACCEPTED
        + """
local function bg(group)
  return vim.fn.synIDattr(vim.fn.synIDtrans(vim.fn.hlID(group)), 'bg#', 'gui')
end
R.before = { bg('LLooMShadeLow'), bg('LLooMShadeMedium'), bg('LLooMShadeFaint') }
vim.cmd('highlight clear')
vim.cmd('doautocmd ColorScheme')
R.after = { bg('LLooMShadeLow'), bg('LLooMShadeMedium'), bg('LLooMShadeFaint') }
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    low, medium, faint = result["before"]
    assert low == "#123456"  # `default`: the user's definition wins
    assert medium.startswith("#") and faint.startswith("#") and medium != faint
    assert result["after"][0].startswith("#") and result["after"][0] != "#123456"
    assert result["after"][1:] == [medium, faint]


def test_an_lsp_enable_client_is_shaded_too(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        """
if not vim.lsp.enable then
  R.skipped = 'no vim.lsp.enable before Nvim 0.11'
  return
end
vim.lsp.config('lloom', {
  cmd = P.cmd,
  settings = {
    lloom = { backend = { url = P.url }, weave = EXACT, warmup = { prefetch = false } },
  },
})
vim.lsp.enable('lloom')
"""
        + ACCEPTED
        + """
R.marks = marks()
R.direct = direct()
R.text = buffer_text()
R.encoding = require('lloom').client().offset_encoding
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)
    if result.get("skipped"):
        pytest.skip(result["skipped"])

    spans = result["direct"]["spans"]
    assert sorted(result["marks"]) == expected_marks(result["text"], spans, result["encoding"])
    assert result["marks"]


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "story.txt"
    path.write_text(STORY, encoding="utf-8")
    return path

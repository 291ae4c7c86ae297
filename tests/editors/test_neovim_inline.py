"""The ghost-text keys of Nvim 0.12+ (lloom.inline), on the Neovim builds that run here.

No Nvim 0.12 runs here, so ``vim.lsp.inline_completion`` is a stand-in with the 0.12
interface as read from Nvim's runtime/lua/vim/lsp/inline_completion.lua: ``enable(enable,
filter)``, ``get(opts)`` (true after scheduling the accept of the shown candidate, through
``opts.on_accept(item)`` when given; false when none is shown), ``select({ count })``,
and the buffer's augroup ``nvim.lsp.inline_completion:<bufnr>`` whose CursorMovedI
autocommand asks the server again.  Everything else is real: the keys, lloom-lsp and
llama-server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_neovim import STORY, run_nvim, transitions


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "story.txt"
    path.write_text(STORY, encoding="utf-8")
    return path


#: The 0.12 stand-in: ``shown`` is the candidate on screen (nil: none).
STAND_IN = """
local calls = { get = 0, select = {}, asked = 0 }
R.calls = calls
local shown = nil
vim.lsp.inline_completion = {
  enable = function(enable, filter) calls.enabled = { enable, filter.bufnr } end,
  is_enabled = function() return true end,
  get = function(opts)
    calls.get = calls.get + 1
    local item = shown
    if not item then
      return false
    end
    shown = nil
    vim.schedule(function()
      if opts and opts.on_accept then
        opts.on_accept(item)
      else
        calls.accepted = item.insert_text
      end
    end)
    return true
  end,
  select = function(opts) table.insert(calls.select, opts.count) end,
}
local function type_keys(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'mx', false)
end
"""


#: setup() with ``P.keymaps``, the story open, and the buffer's inline-completion augroup
#: counting the requests Nvim would send (``calls.asked``).
ATTACH = """
require('lloom').setup({
  cmd = P.cmd,
  settings = { lloom = { backend = { url = P.url }, weave = EXACT } },
  keymaps = P.keymaps,
})
open_story()
local bufnr = vim.api.nvim_get_current_buf()
R.enabled = calls.enabled
R.bufnr = bufnr
vim.api.nvim_create_autocmd('CursorMovedI', {
  group = vim.api.nvim_create_augroup('nvim.lsp.inline_completion:' .. bufnr, { clear = true }),
  buffer = bufnr,
  callback = function() calls.asked = calls.asked + 1 end,
})
R.states = {}
vim.api.nvim_create_autocmd('User', {
  pattern = 'LLooMStatus',
  callback = function() table.insert(R.states, require('lloom').state().state) end,
})
"""


def test_accept_key_weaves_when_nothing_is_shown_and_falls_through_without_a_client(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    (tmp_path / "code.lua").write_text("return {}\n", encoding="utf-8")
    body = (
        STAND_IN
        + ATTACH
        + """
-- Nothing shown: the key weaves, then Nvim is asked again (the cache answers it).
type_keys('A<Tab><Esc>')
wait(30000, function() return calls.asked == 1 end, 'the inline request after the weave')
R.after_ask = buffer_text()

-- A candidate shown: the key accepts it.
shown = { insert_text = 'there was a', client_id = 1 }
type_keys('A<Tab><Esc>')
wait(5000, function() return calls.accepted ~= nil end, 'the accept')
R.after_accept = buffer_text()

-- Without a lloom client, a mapping of one's own falls through to the key.
vim.keymap.set('i', '<Tab>', function()
  return require('lloom').inline_accept('all', '<Tab>')
end, { expr = true })
vim.cmd('edit code.lua')
type_keys('A<Tab><Esc>')
R.code = vim.api.nvim_get_current_line()
"""
    )
    keymaps = {"inline_accept": "<Tab>"}
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, keymaps=keymaps)

    assert result["enabled"] == [True, result["bufnr"]]
    # The key wove (with 0.12's own get() alone, nothing happened) and was not typed.
    assert transitions(result["states"])[:2] == ["weaving", "done"]
    assert result["after_ask"] == STORY
    assert result["calls"]["accepted"] == "there was a"
    assert result["after_accept"] == STORY
    assert result["code"] == "return {}\t"


def test_keys_accept_a_word_or_a_line_and_cycle_the_beams(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        STAND_IN
        + ATTACH
        + """
-- A word of the candidate shown; the rest is woven and asked for.
shown = { insert_text = 'there was a', range = { start = { row = 0, col = #P.story_text } } }
type_keys('A<C-l><Esc>')
wait(5000, function() return buffer_text() ~= P.story_text end, 'a word accepted')
R.word = buffer_text()
wait(30000, function() return calls.asked == 1 end, 'the rest woven and asked for')

-- A line: up to and including the line break.
local line = vim.api.nvim_get_current_line()
shown = { insert_text = ' once\\nmore', range = { start = { row = 0, col = #line } } }
type_keys('A<C-j><Esc>')
wait(5000, function() return vim.api.nvim_buf_line_count(0) == 2 end, 'a line accepted')
R.line = buffer_text()

-- Cycling asks Nvim for another candidate.
type_keys('A<M-]><M-[><Esc>')
wait(5000, function() return #calls.select == 2 end, 'select')
"""
    )
    keymaps = {
        "inline_accept_word": "<C-l>",
        "inline_accept_line": "<C-j>",
        "inline_next": "<M-]>",
        "inline_prev": "<M-[>",
    }
    result = run_nvim(
        tmp_path,
        body,
        story=str(story),
        url=llama_server_url,
        story_text=STORY,
        keymaps=keymaps,
    )

    assert result["word"] == STORY + "there"
    assert result["line"].split("\n") == [STORY + "there once", ""]
    assert result["calls"]["select"] == [1, -1]

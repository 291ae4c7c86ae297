""" "Branch here" in Neovim: Nvim's own code action menu at a woven token offers the
alternatives the model had there, and picking one replaces the woven text from that token
with the alternative woven onward (resolved with codeAction/resolve where Nvim resolves,
woven up front where it does not).

Driven headless like tests/editors/test_neovim.py, against the real server and backend.
"""

from __future__ import annotations

from pathlib import Path

from test_neovim import SETUP, STORY, run_nvim


def test_branch_here_replaces_the_woven_text_with_an_alternative(
    tmp_path: Path, llama_server_url: str
) -> None:
    story = tmp_path / "story.txt"
    story.write_text(STORY.rstrip(), encoding="utf-8")
    body = (
        SETUP
        + """
open_story()
local before = buffer_text()
vim.cmd('LLooMAccept')
wait(30000, function() return buffer_text() ~= before end, 'the best beam')
R.accepted = buffer_text()
-- on the first woven token: the character after the story
vim.api.nvim_win_set_cursor(0, { 1, #before + 1 })
local offered
vim.ui.select = function(items, opts, on_choice)
  offered = vim.tbl_map(function(item) return (opts.format_item(item)) end, items)
  for i, title in ipairs(offered) do
    if title:find('^Branch here: ') then
      R.picked = title
      return on_choice(items[i], i)
    end
  end
  on_choice(nil)
end
vim.lsp.buf.code_action()
wait(30000, function() return offered ~= nil end, "Nvim's code action menu")
R.offered = offered
wait(30000, function() return buffer_text() ~= R.accepted end, 'the branch applied')
R.branched = buffer_text()
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    before = STORY.rstrip()
    accepted, branched = result["accepted"], result["branched"]
    assert accepted.startswith(before) and len(accepted) > len(before)
    branches = [t for t in result["offered"] if t.startswith("Branch here: ")]
    assert 1 <= len(branches) <= 3, result["offered"]
    label = result["picked"].removeprefix("Branch here: ").rsplit(" (p=", 1)[0]
    # the story stays; from the woven token on, the alternative, woven onward
    assert branched.startswith(before)
    onward = branched[len(before) :]
    assert onward.lstrip().startswith(label), (onward, label)
    assert len(onward.strip()) > len(label)
    assert onward != accepted[len(before) :]

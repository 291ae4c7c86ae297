""":LLooMContext: what the next weave at the cursor would send (the server's
``lloom.showContext``), shown read-only in a scratch buffer that a rerun refreshes.

Driven headless like tests/editors/test_neovim.py, against the real server and backend.
"""

from __future__ import annotations

from pathlib import Path

from test_neovim import SETUP, run_nvim

#: Two lines and no trailing whitespace, so no whitespace is held back from the prompt:
#: woven after its last character, the prompt is the whole story.
STORY = "The keeper climbed the stairs.\nThe lamp was cold"
MORE = "and the sea was rising"
MEMORY = "---\nmemory: |\n  Ilse keeps the light.\n---\n"
RULE = "──── the prompt, exactly as sent ────"

#: Runs :LLooMContext without a client, then on the story, then again from the story
#: after a line was added, then closes it with `q`.
BODY = (
    SETUP
    + """
vim.cmd('LLooMContext')  -- the empty buffer at startup has no client
R.refusals = vim.deepcopy(R.notifications)
open_story()
local story_buf, story_win = vim.api.nvim_get_current_buf(), vim.api.nvim_get_current_win()
local shown
require('lloom').show_context(function(err, result, bufnr)
  shown = { err = err, result = result, bufnr = bufnr }
end)
wait(30000, function() return shown ~= nil end, 'the lloom.showContext answer')
local bufnr = shown.bufnr
R.result = shown.result
R.bufnr = bufnr
R.current = vim.api.nvim_get_current_buf()
R.lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
R.options = {
  buftype = vim.bo[bufnr].buftype,
  bufhidden = vim.bo[bufnr].bufhidden,
  swapfile = vim.bo[bufnr].swapfile,
  modifiable = vim.bo[bufnr].modifiable,
  filetype = vim.bo[bufnr].filetype,
}
R.windows = #vim.api.nvim_list_wins()
R.edit_refused = not pcall(vim.api.nvim_buf_set_lines, bufnr, 0, -1, false, { 'x' })
if P.more then
  vim.api.nvim_set_current_win(story_win)
  vim.api.nvim_buf_set_lines(story_buf, -1, -1, false, { P.more })
  vim.api.nvim_win_set_cursor(story_win, { vim.api.nvim_buf_line_count(story_buf), #P.more - 1 })
  vim.cmd('LLooMContext')
  wait(30000, function()
    local valid = vim.api.nvim_buf_is_valid(bufnr)
    return valid and vim.api.nvim_buf_get_lines(bufnr, -2, -1, false)[1] == P.more
  end, 'the refreshed context')
  R.rerun = {
    current = vim.api.nvim_get_current_buf(),
    lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false),
    windows = #vim.api.nvim_list_wins(),
    modifiable = vim.bo[bufnr].modifiable,
    context_buffers = #vim.tbl_filter(function(b)
      return vim.api.nvim_buf_is_valid(b) and vim.bo[b].filetype == 'lloom-context'
    end, vim.api.nvim_list_bufs()),
  }
  vim.cmd('normal q')
  R.closed = { valid = vim.api.nvim_buf_is_valid(bufnr), windows = #vim.api.nvim_list_wins() }
end
"""
)


def prompt_lines(lines: list[str]) -> list[str]:
    """The lines after the rule: the prompt."""
    assert RULE in lines, lines
    return lines[lines.index(RULE) + 1 :]


def test_context_shows_the_prompt_read_only_and_a_rerun_refreshes_it(
    tmp_path: Path, llama_server_url: str
) -> None:
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    last = STORY.split("\n")[-1]
    result = run_nvim(
        tmp_path,
        BODY,
        story=str(story),
        url=llama_server_url,
        cursor=[2, len(last) - 1],
        more=MORE,
    )

    refusals = [(n["level"], n["message"]) for n in result["refusals"]]
    assert refusals == [
        ("WARN", "LLooM: no lloom-lsp client is attached to this buffer (see :LLooMInfo)")
    ]
    answer = result["result"]
    lines = result["lines"]
    assert lines == answer["text"].split("\n")
    assert lines[0].startswith("LLooM context: ")
    assert any("tokens of" in line for line in lines), lines
    assert answer["prompt"] == STORY and answer["held"] == ""
    assert prompt_lines(lines) == STORY.split("\n")
    assert result["current"] == result["bufnr"]
    assert result["options"] == {
        "buftype": "nofile",
        "bufhidden": "wipe",
        "swapfile": False,
        "modifiable": False,
        "filetype": "lloom-context",
    }
    assert result["edit_refused"]
    assert result["windows"] == 2

    rerun = result["rerun"]
    assert prompt_lines(rerun["lines"]) == [*STORY.split("\n"), MORE]
    assert rerun["current"] == result["bufnr"]
    assert rerun["windows"] == 2 and rerun["context_buffers"] == 1
    assert not rerun["modifiable"]
    assert result["closed"] == {"valid": False, "windows": 1}
    errors = [n for n in result["notifications"] if n["level"] == "ERROR"]
    assert not errors


def test_context_shows_the_memory_from_front_matter_first(
    tmp_path: Path, llama_server_url: str
) -> None:
    story = tmp_path / "story.txt"
    story.write_text(MEMORY + STORY, encoding="utf-8")
    last = STORY.split("\n")[-1]
    lines_before = MEMORY.count("\n") + STORY.count("\n")
    result = run_nvim(
        tmp_path,
        BODY,
        story=str(story),
        url=llama_server_url,
        cursor=[lines_before + 1, len(last) - 1],
    )

    answer = result["result"]
    assert answer["memory"].strip() == "Ilse keeps the light."
    assert answer["memorySource"] == "front matter"
    assert answer["prompt"].startswith("Ilse keeps the light.")
    prompt = prompt_lines(result["lines"])
    assert prompt[0].startswith("Ilse keeps the light.")
    assert "\n".join(prompt) == answer["prompt"]
    assert "\n".join(prompt).endswith(STORY)

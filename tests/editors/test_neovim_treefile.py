""":LLooMSaveTree and :LLooMLoadTree: the tree of the weave at the cursor kept beside the
story (``<file>.lloom.json``, written and read by the server), shown again in the tree
buffer in a later Neovim, whose leaves insert at the saved place while the story still
reads as it did there.

Driven headless like tests/editors/test_neovim.py, against the real server and backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_neovim import SETUP, STORY, run_nvim
from test_neovim_tree import check_lines, preorder

SAVE = (
    SETUP
    + """
open_story()
local saved
require('lloom').save_tree(function(err, result) saved = { err = err, result = result } end)
wait(30000, function() return saved ~= nil end, 'the lloom.saveTree answer')
R.saved = saved.result
R.echo = vim.fn.execute('messages')
"""
)

#: Opens the story with the cursor at the start of the line (not where the tree was
#: saved), loads the tree and waits for its buffer.
LOAD = (
    SETUP
    + """
open_story()
R.story_buf = vim.api.nvim_get_current_buf()
vim.api.nvim_win_set_cursor(0, { 1, 0 })
if P.replace then
  vim.api.nvim_buf_set_lines(R.story_buf, 0, -1, false, { P.replace })
end
local loaded
require('lloom').load_tree(function(view) loaded = view end)
wait(30000, function() return loaded ~= nil end, 'the loaded tree')
local tree_buf = vim.api.nvim_get_current_buf()
local view = require('lloom.tree_buffer').views[tree_buf]
R.filetype = vim.bo.filetype
R.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
local line
for l, node in ipairs(view.layout.nodes) do
  if not node.children[1] then line = l end
end
R.leaf = view.layout.nodes[line]
vim.api.nvim_win_set_cursor(0, { line, 0 })
vim.cmd('execute "normal \\\\<CR>"')
local function story_text()
  return table.concat(vim.api.nvim_buf_get_lines(R.story_buf, 0, -1, false), '\\n')
end
"""
)


def test_a_saved_tree_loads_in_a_later_nvim_and_inserts_at_its_place(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    saved = run_nvim(tmp_path, SAVE, story=str(story), url=llama_server_url)

    path = Path(saved["saved"]["path"])
    assert path == story.with_name("story.txt.lloom.json") and path.is_file()
    data = json.loads(path.read_text(encoding="utf-8"))
    nodes = preorder(data["tree"]["root"])
    assert saved["saved"]["nodes"] == len(nodes)
    assert f"{len(nodes)} nodes saved to {path}" in saved["echo"]

    body = (
        LOAD
        + """
wait(30000, function()
  return story_text() ~= P.story_text and not vim.api.nvim_buf_is_valid(tree_buf)
end, 'the leaf in the story, and the tree closed')
R.text = story_text()
R.cursor = vim.api.nvim_win_get_cursor(0)
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, story_text=STORY)

    assert result["filetype"] == "lloomtree"
    lines = result["lines"]
    check_lines(lines, data["tree"]["root"])
    assert any(line.startswith(f"saved {data['savedAt']}") for line in lines), lines
    leaf = result["leaf"]
    assert leaf["insertText"]
    # At the saved place (the end of the story), not at the cursor (its start).
    assert result["text"] == STORY + leaf["insertText"]
    assert result["cursor"] == [1, len(result["text"].encode()) - 1]


def test_a_loaded_tree_whose_story_changed_refuses_to_insert(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    run_nvim(tmp_path, SAVE, story=str(story), url=llama_server_url)
    body = (
        LOAD
        + """
wait(30000, function()
  return vim.tbl_filter(function(n) return n.level == 'WARN' end, R.notifications)[1] ~= nil
end, 'the refusal')
R.text = story_text()
R.tree_open = vim.api.nvim_buf_is_valid(tree_buf)
vim.api.nvim_win_set_cursor(0, { 2, 0 })
vim.cmd('execute "normal w"')  -- weaving on from a node is refused too
R.warnings = #vim.tbl_filter(function(n) return n.level == 'WARN' end, R.notifications)
"""
    )
    replaced = "Once upon a tide, "  # as long as the story, so the place still exists
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, replace=replaced)

    assert result["text"] == replaced and result["tree_open"]
    warnings = [n["message"] for n in result["notifications"] if n["level"] == "WARN"]
    assert warnings[0].startswith("LLooM: this tree is stale: the text before line 1, column 19 ")
    assert result["warnings"] == 2


def test_save_tree_loomsidian_writes_the_other_loom_tools_file(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        SETUP
        + """
open_story()
R.complete = vim.fn.getcompletion('LLooMSaveTree ', 'cmdline')
vim.cmd('LLooMSaveTree loomsidian')
wait(30000, function()
  return vim.fn.filereadable(P.story .. '.loomsidian.json') == 1
end, 'the loomsidian file')
vim.cmd('LLooMSaveTree nonsense')
wait(30000, function()
  return vim.tbl_filter(function(n) return n.level == 'ERROR' end, R.notifications)[1] ~= nil
end, 'the server error')
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    assert result["complete"] == ["lloom", "loomsidian"]
    json.loads(story.with_name("story.txt.loomsidian.json").read_text(encoding="utf-8"))
    assert not story.with_name("story.txt.lloom.json").exists()
    errors = [n["message"] for n in result["notifications"] if n["level"] == "ERROR"]
    assert errors == ["lloom.saveTree: unknown format 'nonsense' (known: lloom, loomsidian)"]


def test_load_without_a_saved_tree_shows_the_server_error(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        SETUP
        + """
open_story()
local answered
require('lloom').load_tree(function(view) answered = { view = view } end)
wait(30000, function() return answered ~= nil end, 'the lloom.loadTree answer')
R.view = answered.view ~= nil
R.windows = #vim.api.nvim_list_wins()
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    errors = [n["message"] for n in result["notifications"] if n["level"] == "ERROR"]
    expected = f"lloom.loadTree: no tree saved at {story}.lloom.json"
    assert errors == [expected]
    assert not result["view"] and result["windows"] == 1


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "story.txt"
    path.write_text(STORY, encoding="utf-8")
    return path

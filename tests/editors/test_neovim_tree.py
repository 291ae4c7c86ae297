""":LLooMTree: the weave's token tree in a scratch buffer beside the story, one line per
node and folded by branch; <CR> inserts a leaf or weaves on from an inner node.

Driven headless like tests/editors/test_neovim.py, against the real server and backend.
The tree the buffer should show comes from a direct ``lloom.tree`` request in the same
Neovim, which the server answers from the same weave.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_neovim import SETUP, STORY, expected_beams, run_nvim

#: A node's line: indent (two spaces a level), the bar, the probability, the token as a
#: JSON string, and where a beam ended.
NODE_LINE = re.compile(r"^((?:  )*)([█▏▎▍▌▋▊▉·]{8}) +(\d+(?:\.\d+)?)%  (\".*\")(?:  \[(\w+)\])?$")

#: Opens the story, asks lloom.tree directly (R.direct), then runs :LLooMTree and waits for
#: its buffer, which is then the current one.
OPEN_TREE = (
    SETUP
    + """
open_story()
R.story_buf = vim.api.nvim_get_current_buf()
local direct
require('lloom').tree_result(function(err, result) direct = { err = err, result = result } end)
wait(30000, function() return direct ~= nil end, 'the direct lloom.tree answer')
assert(direct.err == nil, vim.inspect(direct.err))
R.direct = direct.result
vim.cmd('LLooMTree')
wait(30000, function()
  return vim.bo.filetype == 'lloomtree' and vim.api.nvim_buf_line_count(0) > 1
end, 'the tree buffer')
local tree_buf = vim.api.nvim_get_current_buf()
local function view() return require('lloom.tree_buffer').views[tree_buf] end
local function story_text()
  return table.concat(vim.api.nvim_buf_get_lines(R.story_buf, 0, -1, false), '\\n')
end
local function press(line, keys)
  vim.api.nvim_win_set_cursor(0, { line, 0 })
  vim.cmd('execute "normal ' .. keys .. '"')
end
"""
)


def preorder(node: dict[str, Any], depth: int = 0) -> list[tuple[dict[str, Any], int]]:
    """The tree's nodes in line order, with their depths."""
    out = [(node, depth)]
    for child in node["children"]:
        out.extend(preorder(child, depth + 1))
    return out


def fold_levels(node: dict[str, Any], level: int = 0) -> list[int]:
    """Each line's fold level: one more fold for every child of a node that splits."""
    out = [level]
    splits = len(node["children"]) > 1
    for child in node["children"]:
        out.extend(fold_levels(child, level + 1 if splits else level))
    return out


def branches(node: dict[str, Any], line: int = 1) -> tuple[list[tuple[int, int]], int]:
    """(first line, last line) of every branch (a child of a splitting node, and its
    subtree), and the number of lines of ``node``'s subtree."""
    found: list[tuple[int, int]] = []
    size = 1
    for child in node["children"]:
        inner, child_size = branches(child, line + size)
        if len(node["children"]) > 1:
            found.append((line + size, line + size + child_size - 1))
        found.extend(inner)
        size += child_size
    return found, size


def test_tree_shows_one_line_per_node_folded_by_branch(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        OPEN_TREE
        + """
R.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
local bo = vim.bo
R.options = { buftype = bo.buftype, bufhidden = bo.bufhidden, modifiable = bo.modifiable }
R.windows = #vim.api.nvim_list_wins()
R.beside = vim.fn.win_screenpos(0)[1] == vim.fn.win_screenpos(vim.fn.bufwinid(R.story_buf))[1]
R.levels = {}
for line = 1, #R.lines do
  table.insert(R.levels, vim.fn.foldlevel(line))
end
R.closed, R.opened = {}, {}
for line = 1, #R.lines do
  if tostring(view().layout.folds[line]):sub(1, 1) == '>' then
    vim.cmd('normal! zR')
    press(line, 'zc')
    table.insert(R.closed, { line, vim.fn.foldclosed(line), vim.fn.foldclosedend(line) })
    press(line, 'zo')
    table.insert(R.opened, vim.fn.foldclosed(line))
  end
end
vim.cmd('normal! zR')
press(1, 'q')
R.after_q = {
  windows = #vim.api.nvim_list_wins(),
  buf = vim.api.nvim_get_current_buf(),
  tree_buf = vim.api.nvim_buf_is_valid(tree_buf),
}
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    direct = result["direct"]
    assert direct["format"] == "json"
    nodes = preorder(direct["tree"]["root"])
    lines = result["lines"]
    assert len(lines) == len(nodes) > 2
    assert lines[0].startswith("story ") and direct["speedLine"] in lines[0]
    for line, (node, depth) in zip(lines[1:], nodes[1:]):
        match = NODE_LINE.match(line)
        assert match, line
        indent, bar, percent, token, finish = match.groups()
        assert len(indent) == 2 * depth, line
        assert json.loads(token) == node["text"], line
        assert float(percent) == pytest.approx(node["prob"] * 100, abs=0.51), line
        assert bar.count("█") == int(node["prob"] * 64 + 0.5) // 8, line
        if not node["children"]:
            assert finish == node["finish"] and finish, line  # every leaf says why it ended
    assert result["options"] == {"buftype": "nofile", "bufhidden": "wipe", "modifiable": False}
    assert result["windows"] == 2 and result["beside"]

    assert result["levels"] == fold_levels(direct["tree"]["root"])
    expected, _ = branches(direct["tree"]["root"])
    assert expected, "the weave never split"
    closed = {line: (first, last) for line, first, last in result["closed"]}
    assert sorted(closed) == [first for first, _ in expected]  # a fold starts every branch
    for first, last in expected:
        if last > first:  # a one-line fold never closes ('foldminlines')
            assert closed[first] == (first, last)
    assert set(result["opened"]) == {-1}  # and zo opens it again
    assert result["after_q"] == {"windows": 1, "buf": result["story_buf"], "tree_buf": False}


def test_enter_on_a_leaf_inserts_it_into_the_story(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        OPEN_TREE
        + """
local leaves = {}
for line, node in ipairs(view().layout.nodes) do
  if not node.children[1] then table.insert(leaves, line) end
end
local line = leaves[#leaves]  -- not the first: the choice must matter
R.leaf = view().layout.nodes[line]
press(line, '\\\\<CR>')
wait(30000, function()
  return story_text() ~= P.story_text and not vim.api.nvim_buf_is_valid(tree_buf)
end, 'the leaf in the story, and the tree closed')
R.text = story_text()
R.buf = vim.api.nvim_get_current_buf()
R.cursor = vim.api.nvim_win_get_cursor(0)
R.tree_buf = vim.api.nvim_buf_is_valid(tree_buf)
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, story_text=STORY)

    leaf = result["leaf"]
    assert leaf["insertText"]
    assert result["text"] == STORY + leaf["insertText"]
    assert result["buf"] == result["story_buf"] and not result["tree_buf"]
    assert result["cursor"] == [1, len(result["text"].encode()) - 1]  # on its last character


def test_enter_on_an_inner_node_weaves_on_from_it(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        OPEN_TREE
        + """
local line
for l, node in ipairs(view().layout.nodes) do
  if l > 1 and node.children[1] then line = l; break end
end
assert(line, 'no inner node below the root')
R.inner = view().layout.nodes[line]
local first_tree = view().tree
press(line, '\\\\<CR>')
wait(30000, function() return view().tree ~= first_tree end, 'the tree woven from the node')
R.tree = view().tree
R.after = view().after
R.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
local leaf_line
for l, node in ipairs(view().layout.nodes) do
  if not node.children[1] then leaf_line = l end
end
R.leaf = view().layout.nodes[leaf_line]
press(leaf_line, '\\\\<CR>')
wait(30000, function()
  return story_text() ~= P.story_text and not vim.api.nvim_buf_is_valid(tree_buf)
end, 'the leaf in the story, and the tree closed')
R.text = story_text()
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, story_text=STORY)

    inner, tree = result["inner"], result["tree"]
    assert tree["prompt"].endswith(inner["path"]), (tree["prompt"], inner["path"])
    assert result["after"] == inner["insertText"]
    nodes = preorder(tree["root"])
    assert len(result["lines"]) == len(nodes)
    for line, (node, _) in zip(result["lines"][1:], nodes[1:]):
        match = NODE_LINE.match(line)
        assert match and json.loads(match.group(4)) == node["text"], line
    # A leaf of the new tree inserts the inner node's text and its own: the whole beam.
    leaf = result["leaf"]
    assert leaf["insertText"].startswith(inner["insertText"])
    assert result["text"] == STORY + leaf["insertText"]


def test_enter_on_a_leaf_of_a_stale_tree_says_why_nothing_was_inserted(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        OPEN_TREE
        + """
vim.api.nvim_buf_set_lines(R.story_buf, 0, -1, false, { 'Something else entirely. ' })
local line
for l, node in ipairs(view().layout.nodes) do
  if not node.children[1] then line = l; break end
end
press(line, '\\\\<CR>')
wait(30000, function()
  return vim.tbl_filter(function(n) return n.level == 'WARN' end, R.notifications)[1] ~= nil
end, 'the refusal')
R.text = story_text()
R.tree_open = vim.api.nvim_buf_is_valid(tree_buf)
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    assert result["text"] == "Something else entirely. "
    warnings = [n["message"] for n in result["notifications"] if n["level"] == "WARN"]
    assert len(warnings) == 1 and warnings[0].startswith("LLooM: not inserted: "), warnings
    assert result["tree_open"]


def test_weave_from_back_and_accept_an_inner_node(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        OPEN_TREE
        + """
R.first = view().tree
R.inner = view().layout.nodes[2]
press(2, 'w')
wait(30000, function() return view().after == R.inner.insertText end, 'the tree from line 2')
R.from = view().tree
press(1, '\\\\<BS>')
wait(30000, function() return view().after == '' end, 'the tree before')
R.back = view().tree
-- :LLooMTree from the story again: the same window shows the tree, no second one.
vim.cmd('wincmd p')
R.in_story = vim.api.nvim_get_current_buf() == R.story_buf
local shown
require('lloom').tree(function(v) shown = v end)
wait(30000, function() return shown ~= nil end, 'the tree again')
R.windows = #vim.api.nvim_list_wins()
R.same_buf = vim.api.nvim_get_current_buf() == tree_buf
press(2, 'a')
wait(30000, function()
  return story_text() ~= P.story_text and not vim.api.nvim_buf_is_valid(tree_buf)
end, 'the inner node in the story, and the tree closed')
R.text = story_text()
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, story_text=STORY)

    inner = result["inner"]
    assert inner["children"] and inner["insertText"]
    assert result["from"]["prompt"].endswith(inner["path"])
    assert result["back"] == result["first"] == result["direct"]["tree"]
    assert result["in_story"] and result["windows"] == 2 and result["same_buf"]
    assert result["text"] == STORY + inner["insertText"]  # `a` inserts an inner node too


def depths(node: dict[str, Any], depth: int = 0) -> list[int]:
    """The depth (tokens below the root) of every leaf."""
    if not node["children"]:
        return [depth]
    return [d for child in node["children"] for d in depths(child, depth + 1)]


def test_s_steps_n_more_tokens_from_a_node(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        OPEN_TREE
        + """
R.statusline = vim.api.nvim_win_get_option(0, 'statusline')
R.inner = view().layout.nodes[2]
local first_tree = view().tree
press(2, '2s')
wait(30000, function() return view().tree ~= first_tree end, 'the tree 2 tokens on')
R.two = { tree = view().tree, after = view().after }
R.two.lines = vim.api.nvim_buf_line_count(0)
local second_tree = view().tree
press(1, 's')
wait(30000, function() return view().tree ~= second_tree end, 'the tree 4 tokens on')
R.four = { tree = view().tree, after = view().after }
press(1, '\\\\<BS>')
wait(30000, function() return view().depth == 2 end, 'back to the 2-token tree')
R.back = { after = view().after, depth = view().depth, history = #view().history }
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    assert "[N]s step N tokens" in result["statusline"]
    inner, two, four = result["inner"], result["two"], result["four"]
    assert inner["insertText"] and two["after"] == inner["insertText"]
    assert two["tree"]["prompt"].endswith(inner["path"])
    assert max(depths(two["tree"]["root"])) == 2 and two["lines"] == len(
        preorder(two["tree"]["root"])
    )
    # From the root of the stepped tree, `s` without a count: 4 more tokens after the node.
    assert four["after"] == inner["insertText"]
    assert max(depths(four["tree"]["root"])) == 4
    # <BS> weaves the tree before again, 2 tokens deep.  (Its tree may hold the 4 tokens
    # just woven for the same story: the server's step memory keeps what it explored.)
    assert result["back"] == {"after": inner["insertText"], "depth": 2, "history": 1}


@pytest.mark.parametrize(("count", "depth"), [("3", 3), ("", 4)])
def test_step_weaves_beams_of_count_tokens(
    tmp_path: Path, story: Path, llama_server_url: str, count: str, depth: int
) -> None:
    body = (
        SETUP
        + """
open_story()
vim.ui.select = function(items, opts, on_choice)
  R.beams = vim.tbl_map(function(item) return item.beam end, items)
  on_choice(items[2], 2)
end
local before = buffer_text()
vim.cmd(P.count .. 'LLooMStep')
wait(30000, function() return R.beams ~= nil and buffer_text() ~= before end, 'the beam picked')
R.text = buffer_text()
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, count=count)

    expected = expected_beams(llama_server_url, max_depth=depth)
    beams = result["beams"]
    assert [b["insertText"] for b in beams] == [b.insert_text for b in expected]
    assert max(len(b["tokens"]) for b in beams) == depth
    assert all(len(b["tokens"]) <= depth for b in beams)
    assert result["text"] == STORY + beams[1]["insertText"]


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "story.txt"
    path.write_text(STORY, encoding="utf-8")
    return path

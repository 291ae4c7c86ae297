""":LLooMTree: the weave's token tree in a scratch buffer beside the story, one line per
phrase (a chain of single-child tokens) and folded by branch, fitting half an 80-column
screen with its keys below; <CR> inserts a leaf or weaves on from an inner node.

Driven headless like tests/editors/test_neovim.py, against the real server and backend.
The tree the buffer should show comes from a direct ``lloom.tree`` request in the same
Neovim, which the server answers from the same weave.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_neovim import SETUP, STORY, expected_beams, run_nvim

#: A phrase's line: indent (two spaces a level, at most six levels), the bar, the
#: phrase's first token's probability, then the phrase as it reads and where a beam ended.
NODE_LINE = re.compile(r"^((?:  ){0,6})([█▏▎▍▌▋▊▉·]{8}) +(\d+(?:\.\d+)?)%  (.*)$")
#: The keys, as the tree buffer's last lines.
LEGEND = [
    "<CR> insert leaf / weave on",
    "a insert   w weave on",
    "[N]s step N tokens",
    "<BS> back   r again   q close",
]

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


def phrase(node: dict[str, Any]) -> tuple[dict[str, Any], str, float]:
    """A phrase from ``node``: the single-child tokens below it, up to one that splits or
    ends a beam.  Its last node, its text, and its first token's probability (the branch
    taken where the tree splits)."""
    last, texts, prob = node, [], node["prob"]
    while True:
        texts.append(last["text"])
        if len(last["children"]) != 1 or last.get("finish"):
            return last, "".join(texts), prob
        last = last["children"][0]


def layout(root: dict[str, Any]) -> list[dict[str, Any]]:
    """The tree's lines below the story's: each phrase with its level, its fold level and
    its subtree's last line (1-based lines; line 1 is the story's)."""
    rows: list[dict[str, Any]] = []

    def add(node: dict[str, Any], level: int, fold: int, starts: bool) -> None:
        last, text, prob = phrase(node)
        row = {"node": last, "text": text, "prob": prob, "level": level, "fold": fold}
        row["starts"], row["line"] = starts, len(rows) + 2
        rows.append(row)
        splits = len(last["children"]) > 1
        for child in last["children"]:
            add(child, level + 1, fold + 1 if splits else fold, splits)
        row["end"] = len(rows) + 1

    splits = len(root["children"]) > 1
    for child in root["children"]:
        add(child, 1, 1 if splits else 0, splits)
    return rows


def shown_phrase(text: str, finish: str | None) -> str:
    """A phrase as the tree shows it: as it reads, never JSON-escaped (line breaks as ⏎,
    tabs as ⇥, a phrase of spaces alone as middle dots), then ``[finish]``; an empty leaf
    is its ``[finish]`` alone."""
    shown = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎").replace("\t", "⇥")
    if shown and not shown.strip(" "):
        shown = "·" * len(shown)
    if finish:
        return f"{shown}  [{finish}]" if shown else f"[{finish}]"
    return shown


def check_lines(lines: list[str], root: dict[str, Any]) -> list[dict[str, Any]]:
    """Assert ``lines`` show ``root``'s phrases; return the layout."""
    rows = layout(root)
    assert lines[0].startswith("story "), lines[0]
    assert lines[len(rows) + 1] == "" and lines[-len(LEGEND) :] == LEGEND, lines
    for line, row in zip(lines[1:], rows):
        match = NODE_LINE.match(line)
        assert match, line
        indent, bar, percent, rest = match.groups()
        assert len(indent) == 2 * min(row["level"], 6), line
        finish = row["node"].get("finish")
        assert rest == shown_phrase(row["text"], finish), line
        assert float(percent) == pytest.approx(row["prob"] * 100, abs=0.51), line
        assert bar.count("█") == int(row["prob"] * 64 + 0.5) // 8, line
        if not row["node"]["children"]:
            assert finish and rest.endswith(f"[{finish}]"), line  # why each beam ended
    return rows


def test_tree_shows_one_line_per_phrase_folded_by_branch_in_half_a_screen(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = (
        OPEN_TREE
        + """
R.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
R.columns, R.width = vim.o.columns, vim.api.nvim_win_get_width(0)
R.widths = vim.tbl_map(vim.fn.strdisplaywidth, R.lines)
R.wrap = vim.wo.wrap
R.statusline = vim.api.nvim_win_get_option(0, 'statusline')
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
    root = direct["tree"]["root"]
    lines = result["lines"]
    rows = check_lines(lines, root)
    # Chains of single tokens are phrases: fewer lines than tokens.
    assert 1 < len(rows) < len(preorder(root)) - 1
    assert direct["speedLine"] in lines  # on its own line, below the tree
    # Half of an 80-column screen: the story's line, every phrase's start and the keys fit;
    # a long phrase wraps.
    assert result["columns"] == 80 and result["width"] <= 40
    widths = result["widths"]
    assert widths[0] <= result["width"], lines[0]
    assert all(w <= result["width"] for w in widths[-len(LEGEND) :])
    starts = [NODE_LINE.match(line) for line in lines[1 : len(rows) + 1]]
    assert all(match and match.start(4) <= 30 for match in starts)
    assert result["wrap"] and len(result["statusline"]) <= 40, result["statusline"]
    assert result["options"] == {"buftype": "nofile", "bufhidden": "wipe", "modifiable": False}
    assert result["windows"] == 2 and result["beside"]

    assert result["levels"] == [0] + [row["fold"] for row in rows] + [0] * (
        len(lines) - len(rows) - 1
    )
    expected = [(row["line"], row["end"]) for row in rows if row["starts"]]
    assert expected, "the weave never split"
    closed = {line: (first, last) for line, first, last in result["closed"]}
    assert sorted(closed) == [first for first, _ in expected]  # a fold starts every branch
    for first, last in expected:
        if last > first:  # a one-line fold never closes ('foldminlines')
            assert closed[first] == (first, last)
    assert set(result["opened"]) == {-1}  # and zo opens it again
    assert result["after_q"] == {"windows": 1, "buf": result["story_buf"], "tree_buf": False}


def test_phrases_read_as_text_not_json(tmp_path: Path) -> None:
    """The phrases of the capture on Gemma 3 270M (docs/captures/neovim-0.11-tree.txt):
    line breaks as ⏎, quotes as typed, an empty leaf as its ending alone; no server."""
    tree = {
        "prompt": "Far out past the reef, he saw what he had never seen before: a whale.",
        "root": {
            "text": "",
            "prob": 1,
            "children": [
                {
                    "text": "\n\n",
                    "prob": 0.55,
                    "children": [
                        {
                            "text": "\"I'm afraid it's a whale,\"",
                            "prob": 0.068,
                            "finish": "stop",
                            "children": [],
                        },
                        {"text": "  ", "prob": 0.02, "finish": "depth", "children": []},
                    ],
                },
                {"text": "", "prob": 0.017, "finish": "end", "children": []},
            ],
        },
    }
    body = """
R.lines = require('lloom.tree').layout(P.tree, '24 suggestions').lines
"""
    lines = run_nvim(tmp_path, body, tree=tree)["lines"]

    assert lines[:5] == [
        "story …ad never seen before: a whale.",
        "  ████▍···  55%  ⏎⏎",
        "    ▌······· 6.8%  \"I'm afraid it's a whale,\"  [stop]",
        "    ▏······· 2.0%  ··  [depth]",
        "  ▏······· 1.7%  [end]",
    ]
    check_lines(lines, tree["root"])


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
    check_lines(result["lines"], tree["root"])
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
local line = 2
while not view().layout.nodes[line].children[1] do line = line + 1 end
R.inner = view().layout.nodes[line]
press(line, 'w')
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
line = 2
while not view().layout.nodes[line].children[1] do line = line + 1 end
press(line, 'a')
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
R.legend = vim.api.nvim_buf_get_lines(0, -5, -1, false)
local line = 2
while not view().layout.nodes[line].children[1] do line = line + 1 end
R.inner = view().layout.nodes[line]
local first_tree = view().tree
press(line, '2s')
wait(30000, function() return view().tree ~= first_tree end, 'the tree 2 tokens on')
R.two = { tree = view().tree, after = view().after }
R.two.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
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

    assert "[N]s step N tokens" in result["legend"]
    inner, two, four = result["inner"], result["two"], result["four"]
    assert inner["insertText"] and two["after"] == inner["insertText"]
    assert two["tree"]["prompt"].endswith(inner["path"])
    assert max(depths(two["tree"]["root"])) == 2
    check_lines(two["lines"], two["tree"]["root"])
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

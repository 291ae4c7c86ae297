"""The Neovim plugin (editors/neovim), driven headless against the real server and backend.

Each test writes a Lua script, runs it in ``nvim --headless --clean`` with the plugin on
'runtimepath', and reads back the JSON the script wrote.  The script exits with ``:cq``
when anything fails.  The only thing replaced is ``vim.ui.select``, the UI seam where a
person would pick a beam; ``vim.lsp``, lloom-lsp and llama-server are all real.  Expected
beams come from running the engine directly on the same llama-server.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.config import WeaveSettings, json_schema
from lloom_lsp.engine import Beam, Weave
from lloom_lsp.server.labels import beam_labels

#: Another Neovim build to test with, e.g. LLOOM_TEST_NVIM=/opt/nvim-0.11/bin/nvim.
NVIM = os.environ.get("LLOOM_TEST_NVIM") or shutil.which("nvim")
pytestmark = pytest.mark.skipif(
    NVIM is None, reason="nvim is not installed (CI installs it: apt-get install -y neovim)"
)

#: The plugin under test; LLOOM_TEST_PLUGIN points at another copy (an older commit's, to
#: see a new test fail without the fix).
PLUGIN = Path(
    os.environ.get("LLOOM_TEST_PLUGIN")
    or Path(__file__).resolve().parents[2] / "editors" / "neovim"
)
SERVER = [sys.executable, "-m", "lloom_lsp"]
STORY = "Once upon a time, "
#: Tests that compare a weave in Neovim with one made here use LLooM's rules (``chain``) at its
#: original cutoff: the default ``best`` takes the next prefixes as concurrent answers arrive,
#: and on the bigram model the default cutoff (0.1, for real models) lets maxSuggestions bind,
#: so both depend on the order answers arrive.
EXACT_WEAVE = {"strategy": "chain", "cutoff": 0.2}

#: Helpers every test script starts with.  ``P`` holds the test's parameters; the body
#: fills ``R``, which is written to ``P.out`` as JSON.
PRELUDE = r"""
local P = vim.fn.json_decode(vim.fn.readfile(PARAMS_PATH)[1])
local R = { notifications = {} }
local EXACT = { strategy = 'chain', cutoff = 0.2 }  -- EXACT_WEAVE in the test module

local notify = vim.notify
vim.notify = function(message, level, opts)
  local name = 'INFO'
  for level_name, number in pairs(vim.log.levels) do
    if number == level then
      name = level_name
    end
  end
  table.insert(R.notifications, { message = message, level = name })
  return notify(message, level, opts)
end

local function wait(ms, predicate, what)
  if not vim.wait(ms, predicate, 10) then
    error('timed out after ' .. ms .. ' ms waiting for ' .. what, 2)
  end
end

local function buffer_text()
  return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
end

local function open_story()
  vim.cmd('edit ' .. vim.fn.fnameescape(P.story))
  wait(30000, function()
    local client = require('lloom').client()
    return client ~= nil and client.initialized
  end, 'lloom-lsp to attach')
  -- Normal mode, on the story's last character (P.cursor, or the end of line 1): the
  -- weave continues after it.
  vim.api.nvim_win_set_cursor(0, P.cursor or { 1, #vim.api.nvim_get_current_line() - 1 })
end

local function finish(ok, err)
  R.ok, R.error = ok, err
  vim.fn.writefile({ vim.fn.json_encode(R) }, P.out)
  vim.cmd(ok and 'qall!' or 'cquit')
end
"""

RUN = r"""
local ok, err = xpcall(function()
{body}
end, debug.traceback)
finish(ok, ok and vim.NIL or err)
"""


def run_nvim(
    tmp_path: Path, body: str, *, init: str | None = None, **params: Any
) -> dict[str, Any]:
    """Run ``body`` (Lua) in headless Neovim with the plugin loaded; return its ``R``.
    ``init`` replaces the init.lua that puts the plugin on 'runtimepath'."""
    out = tmp_path / "result.json"
    params_path = tmp_path / "params.json"
    params_path.write_text(
        json.dumps({"out": str(out), "plugin": str(PLUGIN), "cmd": SERVER, **params}),
        encoding="utf-8",
    )
    init_path = tmp_path / "init.lua"
    if init is None:
        init = f"vim.opt.runtimepath:prepend({json.dumps(str(PLUGIN))})\n"
    init_path.write_text(init + "vim.opt.swapfile = false\n", encoding="utf-8")
    script = tmp_path / "test.lua"
    script.write_text(
        PRELUDE.replace("PARAMS_PATH", json.dumps(str(params_path))) + RUN.format(body=body),
        encoding="utf-8",
    )
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = str(tmp_path / "xdg" / var.lower())
    proc = subprocess.run(
        [NVIM or "nvim", "--headless", "--clean", "-u", str(init_path), "-c", f"luafile {script}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert out.is_file(), f"nvim wrote no result; {output}"
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert result["ok"], f"{result['error']}\n{output}"
    assert proc.returncode == 0, output
    deprecated = [n for n in result["notifications"] if "deprecated" in n["message"]]
    assert not deprecated and "deprecated" not in proc.stderr, (deprecated, output)
    return result


#: The server folds near-duplicate beams into variants of the best (``Weave(fold=True)``),
#: where the engine knows how; the expected beams are folded the same way.
FOLD: dict[str, Any] = {"fold": True} if "fold" in inspect.signature(Weave).parameters else {}


def expected_beams(url: str, story: str = STORY, **weave_settings: Any) -> list[Beam]:
    """The beams the engine weaves for ``story``, straight from the backend, as the server
    weaves them."""

    async def run() -> list[Beam]:
        backend = LlamaCppBackend(url)
        try:
            exact = WeaveSettings(**{**EXACT_WEAVE, **weave_settings})
            return (await Weave(backend, story, exact, **FOLD).run()).beams
        finally:
            await backend.aclose()

    return asyncio.run(run())


def transitions(states: list[str]) -> list[str]:
    """``lloom/status`` states, each run of one state once: the server sends ``weaving``
    again with what it is doing ("3 of 12 beams")."""
    return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "story.txt"  # filetype text, from Neovim's own detection
    path.write_text(STORY, encoding="utf-8")
    return path


#: No prefetch: after an accept it weaves in the background, and its lloom/status would
#: race the test for the last speed line.
SETUP = """
require('lloom').setup({
  cmd = P.cmd,
  settings = {
    lloom = { backend = { url = P.url }, weave = EXACT, warmup = { prefetch = false } },
  },
})
"""


def test_weave_shows_every_beam_and_inserts_the_chosen_one(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    pick = 3  # not the best: the choice must matter
    body = """
require('lloom').setup({
  cmd = P.cmd,
  settings = { lloom = { backend = { url = P.url }, weave = EXACT } },
  keymaps = { weave = '<leader>lw' },
})
open_story()
local mapping = vim.fn.maparg('<leader>lw', 'n', false, true)
R.mapping = { desc = mapping.desc, buffer = mapping.buffer }
local before = buffer_text()
vim.ui.select = function(items, opts, on_choice)
  -- Read now: the accept starts a background prefetch, whose lloom/status follows.
  R.last_weave = require('lloom').state().last_weave
  R.status = require('lloom').status()
  R.prompt = opts.prompt
  R.offered = vim.tbl_map(opts.format_item, items)
  on_choice(items[P.pick], P.pick)
end
local cursor = vim.api.nvim_win_get_cursor(0)
vim.cmd('LLooMWeave')
wait(30000, function()
  return R.offered ~= nil and buffer_text() ~= before
    and not vim.deep_equal(vim.api.nvim_win_get_cursor(0), cursor)
end, 'the chosen beam, and the cursor on it')
R.text = buffer_text()
R.cursor = vim.api.nvim_win_get_cursor(0)
"""
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, pick=pick)

    beams = expected_beams(llama_server_url)
    assert len(beams) > pick
    offered = result["offered"]
    assert len(offered) == len(beams)
    # Each row, as in VS Code's QuickPick: a bar of the beam's score relative to the best,
    # the score and the beam's label (where it differs from the others), on one line that
    # fits the screen (test_neovim_picker.py has the rest).
    labels = beam_labels([beam.insert_text for beam in beams])
    best = max(beam.score for beam in beams)
    for shown, label, beam in zip(offered, labels, beams):
        if beam.note:  # why it sits below beams scored higher, after the label
            assert shown.endswith(f"  · {beam.note}"), shown
            shown = shown.removesuffix(f"  · {beam.note}")
        bar, score, rest = shown.split(" ", 2)
        assert len(bar) == 10 and set(bar) <= set("█▏▎▍▌▋▊▉·"), shown
        assert bar.count("█") == int(beam.score / best * 80 + 0.5) // 8, shown
        assert float(score) == pytest.approx(beam.score, abs=0.005), shown
        assert rest == f" {label}" or label.startswith(rest[1:].rstrip("…")), shown
    assert offered[0].startswith("█" * 10), offered[0]
    assert result["text"] == STORY + beams[pick - 1].insert_text
    # The cursor rests on the beam's last character, ready for the next weave.
    assert result["cursor"] == [1, len(result["text"].encode()) - 1]
    assert result["mapping"] == {"desc": "LLooM: weave at the cursor and pick a beam", "buffer": 1}
    # The weave's progress ended with the speed line, which :LLooMInfo shows.
    assert result["last_weave"].startswith(f"{len(beams)} suggestions in ")
    assert result["status"] == "LLooM: " + result["last_weave"]


def test_setup_settings_reach_the_server_and_updates_take_effect(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = """
local answers = {}
local answer = vim.lsp.handlers['workspace/configuration']
vim.lsp.handlers['workspace/configuration'] = function(err, params, ctx, config)
  local result = answer(err, params, ctx, config)
  table.insert(answers, result)
  return result
end
require('lloom').setup({
  cmd = P.cmd,
  settings = {
    lloom = {
      backend = { url = P.url },
      weave = { maxDepth = 2, autoStop = false, strategy = 'chain', cutoff = 0.2 },
    },
  },
})
open_story()

local function weave_now()
  local done
  require('lloom').weave_result(function(err, result) done = { err = err, result = result } end)
  wait(30000, function() return done ~= nil end, 'lloom.weave')
  assert(done.err == nil, vim.inspect(done.err))
  return vim.tbl_map(function(beam)
    return { text = beam.insertText, tokens = #beam.tokens }
  end, done.result.beams)
end

R.init_options = require('lloom').client().config.init_options
R.first = weave_now()
R.answers_before = #answers
R.told = require('lloom').update_settings({ lloom = { weave = { maxDepth = 3 } } })
R.second = weave_now()
R.answers = answers
"""
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    first = {"maxDepth": 2, "autoStop": False, "strategy": "chain", "cutoff": 0.2}
    assert result["init_options"]["lloom"]["weave"] == first
    two = expected_beams(llama_server_url, max_depth=2, auto_stop=False)
    assert result["first"] == [{"text": b.insert_text, "tokens": 2} for b in two]
    # The server asked workspace/configuration and got the setup() settings.
    assert result["answers_before"] >= 1
    assert result["answers"][0][0]["weave"] == first

    assert result["told"] == 1
    three = expected_beams(llama_server_url, max_depth=3, auto_stop=False)
    assert result["second"] == [{"text": b.insert_text, "tokens": 3} for b in three]
    assert result["answers"][-1][0]["weave"] == {**first, "maxDepth": 3}
    assert result["answers"][-1][0]["backend"] == {"url": llama_server_url}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(STORY, "", id="end-of-line"),
        # Mid-line after multi-byte text: a byte column sent as a UTF-16 or UTF-8
        # position would move both the story and the insertion point.
        pytest.param("Title\n\nÜber 🙂 once upon a time, ", "THE END.", id="unicode-mid-line"),
    ],
)
def test_accept_inserts_the_best_beam_and_info_reports_it(
    tmp_path: Path, llama_server_url: str, before: str, after: str
) -> None:
    story = tmp_path / "story.txt"
    story.write_text(before + after, encoding="utf-8")
    lines = before.split("\n")
    cursor = [len(lines), len(lines[-1].encode()) - 1]  # on the last character of `before`
    body = (
        SETUP
        + """
open_story()
local before = buffer_text()
vim.cmd('LLooMAccept')
wait(30000, function() return buffer_text() ~= before end, 'the best beam')
R.text = buffer_text()
R.messages = vim.fn.execute('messages')
R.info = vim.fn.execute('LLooMInfo')
-- Nvim 0.11 maps K to vim.lsp.buf.hover() itself for a server with hover: not ours.
local ours = 0
for _, mode in ipairs({ 'n', 'i' }) do
  for _, map in ipairs(vim.api.nvim_buf_get_keymap(0, mode)) do
    if map.lhs ~= 'K' then ours = ours + 1 end
  end
end
R.mappings = ours
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url, cursor=cursor)

    beams = expected_beams(llama_server_url, before)
    assert result["text"] == before + beams[0].insert_text + after
    info = result["info"]
    assert re.search(r"client \d+: running, root .*, utf-\d+ positions", info), info
    assert f"last weave: {len(beams)} suggestions in " in info
    assert f'* lloom.backend.url = "{llama_server_url}"' in info
    assert "lloom.weave.maxDepth = 12" in info  # a server default, shown as in force
    problems = [n for n in result["notifications"] if n["level"] in ("WARN", "ERROR")]
    assert problems == []
    assert result["mappings"] == 0  # keymaps are off unless asked for
    # Nvim prints an applyEdit's label over the speed line: the plugin drops it
    assert "Workspace edit" not in result["messages"], result["messages"]


def test_one_client_per_root_on_the_configured_filetypes_only(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    (tmp_path / "chapter2.txt").write_text("The next day, ", encoding="utf-8")
    other = tmp_path / "other"
    (other / ".git").mkdir(parents=True)  # a root marker: a root of its own
    (other / "notes.md").write_text("# Notes\n", encoding="utf-8")
    (tmp_path / "code.lua").write_text("return {}\n", encoding="utf-8")
    body = (
        SETUP
        + """
local function client_of(name)
  vim.cmd('edit ' .. vim.fn.fnameescape(name))
  wait(30000, function()
    local client = require('lloom').client()
    return client ~= nil and client.initialized
  end, 'lloom-lsp to attach to ' .. name)
  local client = require('lloom').client()
  return { id = client.id, root = client.config.root_dir }
end
R.story = client_of(P.story)
R.chapter2 = client_of('chapter2.txt')
R.notes = client_of('other/notes.md')
vim.cmd('edit code.lua')  -- FileType runs during :edit, so any attach would be done
R.lua_attached = vim.tbl_filter(function(id)
  return vim.lsp.buf_is_attached(0, id)
end, { R.story.id, R.notes.id })
"""
    )
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)

    assert result["story"] == result["chapter2"]  # same root: the client is reused
    assert result["story"]["root"] == str(tmp_path)  # no marker: the working directory
    assert result["notes"]["id"] != result["story"]["id"]
    assert result["notes"]["root"] == str(other)
    assert result["lua_attached"] == []


HEALTH = """
open_story()
vim.cmd('checkhealth lloom')
R.report = vim.api.nvim_buf_get_lines(0, 0, -1, false)
"""


def test_checkhealth_passes_with_a_working_server_and_backend(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    result = run_nvim(tmp_path, SETUP + HEALTH, story=str(story), url=llama_server_url)

    report = "\n".join(result["report"])
    assert "ERROR" not in report and "WARN" not in report, report
    assert re.search(r"OK:? the server answers: lloom-lsp \d", report), report
    assert f"backend {llama_server_url} answers (llamacpp" in report, report
    assert re.search(r"OK:? client \d+: running", report), report


def test_checkhealth_warns_when_the_backend_is_down(tmp_path: Path, story: Path) -> None:
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens
    result = run_nvim(tmp_path, SETUP + HEALTH, story=str(story), url=dead)

    report = "\n".join(result["report"])
    assert "ERROR" not in report, report
    assert re.search(rf"WARN\w*:? backend {re.escape(dead)} does not answer", report), report


def test_checkhealth_tells_a_busy_backend_from_a_dead_one(tmp_path: Path, story: Path) -> None:
    # A server that takes the connection and answers nothing in time: llama-server busy
    # evaluating a long story (the kernel accepts into the backlog; nobody reads).
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(8)
        url = f"http://127.0.0.1:{busy.getsockname()[1]}"
        result = run_nvim(tmp_path, SETUP + HEALTH, story=str(story), url=url)

    report = "\n".join(result["report"])
    assert "ERROR" not in report, report
    assert re.search(rf"WARN\w*:? backend {re.escape(url)} is busy or slow, not down", report)
    assert "Start llama-server" not in report and "does not answer" not in report, report


def test_checkhealth_names_where_cmd_came_from(tmp_path: Path, story: Path) -> None:
    given = run_nvim(tmp_path, SETUP + HEALTH, story=str(story), url="http://127.0.0.1:9")
    assert "(cmd from setup())" in "\n".join(given["report"])

    body = """
require('lloom').setup({ settings = { lloom = { backend = { url = P.url } } } })
vim.cmd('checkhealth lloom')
R.report = vim.api.nvim_buf_get_lines(0, 0, -1, false)
"""
    result = run_nvim(tmp_path, body, url="http://127.0.0.1:9")
    report = "\n".join(result["report"])
    assert "(cmd from setup())" not in report, report
    default = r"the default: (this checkout's \.venv|lloom-lsp on \$PATH)"
    assert re.search(rf"is executable \(cmd from {default}, setup\(\) gave no cmd\)", report), (
        report
    )


def test_setup_validates_options_and_settings_by_name(tmp_path: Path) -> None:
    body = """
local lloom = require('lloom')
local function error_of(f)
  local ok, err = pcall(f)
  return ok and '' or tostring(err)
end
local function with_settings(weave)
  return function() lloom.setup({ settings = { lloom = { weave = weave } } }) end
end
R.errors = {
  cmd = error_of(function() lloom.setup({ cmd = 'lloom-lsp' }) end),
  unknown_option = error_of(function() lloom.setup({ filetype = { 'text' } }) end),
  keymaps = error_of(function() lloom.setup({ keymaps = { wave = '<leader>w' } }) end),
  range = error_of(with_settings({ maxDepth = 0 })),
  enum = error_of(with_settings({ rank = 'best' })),
  update = error_of(function()
    lloom.update_settings({ lloom = { weave = { autoStop = 'yes' } } })
  end),
}
lloom.setup({ cmd = P.cmd, settings = {
  ['lloom.weave.maxDepth'] = 5,
  weave = { cutoff = 0.1 },
  backend = { urll = 'typo' },
} })
R.normalized = lloom.settings()
R.info = vim.fn.execute('LLooMInfo')
R.commands = vim.tbl_map(vim.fn.exists, { ':LLooMWeave', ':LLooMAccept', ':LLooMInfo' })
"""
    result = run_nvim(tmp_path, body)

    errors = result["errors"]
    assert "cmd" in errors["cmd"] and "list of strings" in errors["cmd"]
    assert 'unknown option "filetype"' in errors["unknown_option"]
    assert "keymaps" in errors["keymaps"]
    assert "lloom.weave.maxDepth" in errors["range"] and "from 1 to 512" in errors["range"]
    assert "lloom.weave.rank" in errors["enum"] and '"joint"' in errors["enum"]
    assert "lloom.weave.autoStop" in errors["update"] and "true or false" in errors["update"]

    # Flat keys and a bare section both become { lloom = { ... } }; an unknown key warns.
    assert result["normalized"] == {
        "lloom": {"weave": {"maxDepth": 5, "cutoff": 0.1}, "backend": {"urll": "typo"}}
    }
    warnings = [n["message"] for n in result["notifications"] if n["level"] == "WARN"]
    assert warnings == ["LLooM: unknown setting lloom.backend.urll (see :help lloom-settings)"]
    assert "no lloom-lsp client on this buffer" in result["info"]
    assert "* lloom.weave.maxDepth = 5" in result["info"]
    assert result["commands"] == [2, 2, 2]


def test_generated_schema_and_lsp_config_load_in_neovim(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(PLUGIN / "doc", docs / "doc")
    body = """
R.schema = require('lloom.schema')
R.lsp = dofile(P.plugin .. '/lsp/lloom.lua')
local defaults = require('lloom.config').defaults
R.defaults = {
  cmd = defaults.cmd, filetypes = defaults.filetypes, root_markers = defaults.root_markers,
}
vim.opt.runtimepath:append(P.docs)
vim.cmd('helptags ' .. vim.fn.fnameescape(P.docs .. '/doc'))  -- E154 on a duplicate tag
vim.cmd('help lloom.weave.maxDepth')
R.help = { file = vim.fn.expand('%:t'), line = vim.api.nvim_get_current_line() }
"""
    result = run_nvim(tmp_path, body, docs=str(docs))

    properties = json_schema()["properties"]
    assert [entry["key"] for entry in result["schema"]] == list(properties)
    for entry in result["schema"]:
        prop = properties[entry["key"]]
        for field in ("type", "default", "description", "enum", "minimum", "maximum"):
            assert entry.get(field) == prop.get(field), (entry["key"], field)

    lsp = result["lsp"]
    assert {k: lsp[k] for k in ("cmd", "filetypes", "root_markers")} == result["defaults"]
    assert "lloom" in lsp["settings"]
    assert result["help"]["file"] == "lloom.txt"
    assert "*lloom.weave.maxDepth*" in result["help"]["line"]


def test_lsp_enable_uses_the_shipped_config(
    tmp_path: Path, story: Path, llama_server_url: str
) -> None:
    body = """
if not vim.lsp.enable then
  local v = vim.version()
  R.skipped = ('Neovim %d.%d.%d has no vim.lsp.enable (0.11+)'):format(v.major, v.minor, v.patch)
  return
end
vim.lsp.config('lloom', {
  cmd = P.cmd,
  settings = { lloom = { backend = { url = P.url }, weave = EXACT } },
})
vim.lsp.enable('lloom')
open_story()
local before = buffer_text()
vim.cmd('LLooMAccept')
wait(30000, function() return buffer_text() ~= before end, 'the best beam')
R.text = buffer_text()
R.messages = vim.fn.execute('messages')
R.config = vim.lsp.config.lloom
"""
    result = run_nvim(tmp_path, body, story=str(story), url=llama_server_url)
    if "skipped" in result:
        pytest.skip(result["skipped"])

    assert result["config"]["filetypes"] == ["text", "markdown"]
    assert "Workspace edit" not in result["messages"], result["messages"]
    assert result["text"] == STORY + expected_beams(llama_server_url)[0].insert_text

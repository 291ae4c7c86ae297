"""The command line against the real llama-server: weave output, errors, schema."""

from __future__ import annotations

import json
import re
import subprocess
import sys

CLI = [sys.executable, "-m", "lloom_lsp"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_weave_prints_bars_scores_and_the_speed_line(llama_server_url: str) -> None:
    done = run("weave", "Once upon a time,", "--url", llama_server_url)
    assert done.returncode == 0, done.stderr
    *beams, speed = done.stdout.strip().splitlines()
    assert len(beams) > 3
    row = re.compile(r" *\d+\. [█▏▎▍▌▋▊▉·]{10} +\d+\.\d{3}  p=\d\.\d\de-\d\d  .+")
    assert all(row.fullmatch(line) for line in beams), beams
    scores = [float(line.split()[2]) for line in beams]
    assert scores == sorted(scores, reverse=True)
    assert re.fullmatch(
        rf"{len(beams)} suggestions in \d+\.\d\d s @ \d+\.\d tokens/s, \d+ requests", speed
    )


def test_weave_json_and_strategy_flags(llama_server_url: str) -> None:
    token = run(
        "weave",
        "The old man",
        "--url",
        llama_server_url,
        "--strategy",
        "token",
        "--json",
        "--max-depth",
        "4",
    )
    chain = run("weave", "The old man", "--url", llama_server_url, "--json", "--max-depth", "4")
    a, b = json.loads(token.stdout), json.loads(chain.stdout)
    assert [x["text"] for x in a["beams"]] == [x["text"] for x in b["beams"]]
    assert all(len(x["tokens"]) <= 4 for x in a["beams"])
    assert b["stats"]["requests"] < a["stats"]["requests"]


def test_bad_arguments_and_dead_backend_give_one_line_errors() -> None:
    bad = run("weave", "x", "--cutoff", "2")
    assert bad.returncode != 0
    assert bad.stderr.strip() == "lloom-lsp: error: --cutoff must be a number from 0 to 1 (got 2)"
    dead = run("weave", "x", "--url", "http://127.0.0.1:9", "--backend", "llamacpp")
    assert dead.returncode != 0
    (line,) = dead.stderr.strip().splitlines()
    assert "http://127.0.0.1:9" in line and "cannot connect" in line


def test_schema_is_json_schema_with_every_setting() -> None:
    done = run("schema")
    schema = json.loads(done.stdout)
    assert schema["properties"]["lloom.weave.maxDepth"]["default"] == 12
    assert schema["properties"]["lloom.weave.cutoff"]["maximum"] == 1
    assert {k.split(".")[1] for k in schema["properties"]} == {
        "backend",
        "weave",
        "story",
        "inline",
        "warmup",
    }

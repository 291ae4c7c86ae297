"""The command line against the real llama-server: weave output, errors, schema."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

CLI = [sys.executable, "-m", "lloom_lsp"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_weave_prints_bars_scores_and_the_speed_line(llama_server_url: str) -> None:
    done = run("weave", "Once upon a time,", "--url", llama_server_url)
    assert done.returncode == 0, done.stderr
    *beams, speed = done.stdout.strip().splitlines()
    assert 3 < len(beams) <= 25  # maxSuggestions' default, cut beams included
    row = re.compile(r" *\d+\. [█▏▎▍▌▋▊▉·]{10} +\d+\.\d{3}  p=\d\.\d\de-\d\d  .+")
    assert all(row.fullmatch(line) for line in beams), beams
    # rank order: beams that end naturally by score, then those that stop mid-phrase, those
    # that repeat the story, and those the best-first budget cut short, each marked
    notes = ["", "[stops mid-phrase]", "[repeats the story]", "[cut short]"]
    groups = [max(i for i, note in enumerate(notes) if note in line) for line in beams]
    assert groups == sorted(groups)
    for group in set(groups):
        scores = [float(b.split()[2]) for b, g in zip(beams, groups) if g == group]
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
    chain = run(
        "weave",
        "The old man",
        "--url",
        llama_server_url,
        "--strategy",
        "chain",
        "--json",
        "--max-depth",
        "4",
    )
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
        "completion",
        "weave",
        "story",
        "inline",
        "warmup",
        "woven",
    }


def _frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_the_server_starts_with_the_flags_clients_pass() -> None:
    """``lloom-lsp --stdio`` (what many clients run) exited with status 2: --stdio was only
    known to ``serve``."""
    session = b"".join(
        _frame(m)
        for m in (
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
            {"jsonrpc": "2.0", "id": 2, "method": "shutdown"},
            {"jsonrpc": "2.0", "method": "exit"},
        )
    )
    for flags in (["--stdio"], ["--log-level=INFO", "--stdio"], ["serve", "--stdio"]):
        done = subprocess.run([*CLI, *flags], input=session, capture_output=True, timeout=60)
        assert done.returncode == 0, (flags, done.stderr[-500:])
        assert b'"capabilities"' in done.stdout, flags


def test_an_auth_error_is_not_told_to_start_a_server() -> None:
    """Every backend error used to end with "is llama-server running?", a 401 included."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Refuse(BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"error": "invalid api key"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _refuse

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = run("weave", "x", "--url", url, "--backend", "llamacpp")
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode != 0
    (line,) = done.stderr.strip().splitlines()
    assert url in line and "401" in line and "--api-key-env" in line
    assert "running" not in line


def test_weave_tree_prints_the_token_tree_in_each_format(llama_server_url: str) -> None:
    common = ("--url", llama_server_url, "--strategy", "chain")
    data = json.loads(run("weave", "Once upon a time,", *common, "--tree", "json").stdout)
    assert data["root"]["id"] == "n0" and data["root"]["children"]
    first = data["root"]["children"][0]
    text = run("weave", "Once upon a time,", *common, "--tree", "text")
    assert text.returncode == 0 and text.stdout.startswith("story …Once upon a time,")
    assert first["text"].strip() in text.stdout
    dot = run("weave", "Once upon a time,", *common, "--tree", "dot").stdout
    assert dot.startswith("digraph weave {") and f'{first["id"]} [id="{first["id"]}"' in dot
    mermaid = run("weave", "Once upon a time,", *common, "--tree", "mermaid").stdout
    assert mermaid.startswith("flowchart LR")
    svg = run("weave", "Once upon a time,", *common, "--tree", "svg")
    if shutil.which("dot") is None:  # a clear error, not a traceback
        assert svg.returncode == 1 and "Graphviz's dot is not on PATH" in svg.stderr
    else:
        assert svg.returncode == 0 and "<svg" in svg.stdout and 'id="n0_0"' in svg.stdout

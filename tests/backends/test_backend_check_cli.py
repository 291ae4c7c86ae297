"""``lloom-lsp check --url ...`` as a user runs it (a subprocess), for the real llama-server and
each protocol fixture: it must name the protocol it found."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import KEY_ENV, TEST_KEY

REPO = Path(__file__).resolve().parents[2]


def _check(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(KEY_ENV, None)
    if key is not None:
        env[KEY_ENV] = key
    return subprocess.run(
        [sys.executable, "-m", "lloom_lsp", "check", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _fields(stdout: str) -> dict[str, str]:
    return {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in stdout.splitlines())
    }


@pytest.mark.parametrize(
    ("target", "protocol", "server"),
    [
        ("llama_server_url", "llamacpp", "llama.cpp llama-server"),
        ("vllm_stub", "openai", "vLLM"),
        ("openai_legacy_stub", "openai", "OpenAI"),
        ("openai_chat_stub", "openai-chat", "OpenAI"),
        ("ollama_stub", "ollama", "Ollama"),
    ],
)
def test_check_names_the_protocol(
    request: pytest.FixtureRequest, target: str, protocol: str, server: str
) -> None:
    found: Any = request.getfixturevalue(target)
    url = found if isinstance(found, str) else found.url
    result = _check("--url", url, "--api-key-env", KEY_ENV, key=TEST_KEY)
    assert result.returncode == 0, result.stderr
    fields = _fields(result.stdout)
    assert fields["protocol"] == protocol
    assert fields["probabilities"] == "yes"
    assert f"auto-detected {server}" in fields["detail"]
    assert TEST_KEY not in result.stdout + result.stderr

    as_json = _check("--url", url, "--api-key-env", KEY_ENV, "--json", key=TEST_KEY)
    assert json.loads(as_json.stdout)["protocol"] == protocol


def test_check_without_the_key_names_the_variable(openai_legacy_stub: Any) -> None:
    result = _check("--url", openai_legacy_stub.url, "--api-key-env", KEY_ENV)
    assert result.returncode == 1
    assert f"API key missing or invalid, set env var {KEY_ENV}" in result.stderr


def test_check_with_a_wrong_key_never_prints_it(openai_legacy_stub: Any) -> None:
    wrong = "sk-wrong-but-secret-wxyz"
    result = _check("--url", openai_legacy_stub.url, "--api-key-env", KEY_ENV, key=wrong)
    assert result.returncode == 1
    assert f"set env var {KEY_ENV} (the server refused it)" in result.stderr
    assert "Incorrect API key provided" in result.stderr  # the server's words, unwrapped
    # Not the key, and not the masked echo of it that OpenAI sends back ("sk-...wxyz").
    assert "wxyz" not in result.stdout + result.stderr


def test_check_reports_a_server_without_probabilities(no_logprobs_stub: Any) -> None:
    result = _check("--url", no_logprobs_stub.url, "--backend", "openai")
    assert result.returncode == 1
    fields = _fields(result.stdout)
    assert fields["protocol"] == "openai"
    assert fields["probabilities"].startswith("NO")
    assert "no token probabilities" in fields["detail"]


def test_check_says_the_server_flags_that_cost_a_writer(
    test_model_path: Path, tmp_path: Path
) -> None:
    """A small context and slots that cannot be copied, on a real llama-server."""
    from lloom_lsp.backends.process import LlamaServerProcess

    with LlamaServerProcess(
        test_model_path,
        extra_args=("-c", "1024", "-np", "1"),
        copies=False,
        log_path=tmp_path / "llama-server.log",
    ) as server:
        done = _check("--url", server.url)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 2, done.stdout
    assert "1024 tokens a request" in notes[0] and "maxContextChars 16000" in notes[0]
    assert "--slot-save-path" in notes[1]


def test_check_of_the_managed_flags_says_the_context_and_nothing_of_copies(
    llama_server_url: str,
) -> None:
    """The session's server has the managed flags; the test model's slots stop at its
    4,096-token training context."""
    done = _check("--url", llama_server_url)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "4096 tokens a request" in notes[0], done.stdout


def test_check_json_says_what_kind_of_failure() -> None:
    """Editors' health checks read ``error.kind``, not English: a server that takes the
    connection and answers nothing in time is busy; a closed port is unreachable."""
    with socket.socket() as busy, socket.socket() as closed:
        busy.bind(("127.0.0.1", 0))
        busy.listen(8)  # takes connections, never answers
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        kinds = {}
        for name, sock in (("busy", busy), ("closed", closed)):
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            result = _check("--url", url, "--timeout-seconds", "1", "--json")
            assert result.returncode == 1
            error = json.loads(result.stdout)["error"]
            assert url in error["message"]
            kinds[name] = error["kind"]
    assert kinds == {"busy": "busy", "closed": "unreachable"}

"""Through what sits between a writer and their llama-server in the field, the weaves that
work straight to it work the same: Debian's nginx as a reverse proxy with keep-alive on both
sides, a plain TCP forwarder (an SSH tunnel, a proxy that only copies bytes), and the same
forwarder holding every byte back 20 ms each way (a LAN).  ``test_storm.py`` types through
nginx and the LAN too.

The default strategy's hundreds of short requests reuse kept-alive connections that the
forwarder is closing a moment after llama-server closed its side; such a request fails
before any byte of its answer comes back, and is sent again on a new connection.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from proxies import check_installed, through

from lloom_lsp.backends import BackendUnavailable
from lloom_lsp.backends.http import translate_errors


async def _weave_cli(url: str, strategy: str) -> tuple[int, str, str]:
    """``lloom-lsp weave`` as a user runs it (its own process, so that the forwarder in this
    one and the client race as they do across a network)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lloom_lsp", "weave", "You may", "--url", url,
        "--strategy", strategy, "--max-depth", "6", "--cutoff", "0.08",
        "--max-suggestions", "1000", "--no-auto-stop", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _texts(out: str) -> set[str]:
    return {beam["text"] for beam in json.loads(out)["beams"]}


@pytest.mark.parametrize("route", ["nginx", "forwarder", "lan"])
@pytest.mark.parametrize("strategy", ["best", "chain", "token"])
async def test_a_weave_through_a_proxy_is_the_weave_straight_to_the_server(
    llama_server_url: str,
    strategy: str,
    route: str,
    tmp_path: Path,
    real_part_missing: Callable[[str], None],
) -> None:
    """The weave that failed every time through a forwarder with "ReadError: ReadError"
    (issue 19), for ``best`` at concurrency 4: hundreds of short requests on kept-alive
    connections."""
    check_installed(route, real_part_missing)
    async with through(route, llama_server_url, tmp_path) as url:
        code, out, err = await _weave_cli(url, strategy)
    assert code == 0, err
    assert _texts(out)
    if strategy != "best":  # best's set depends on the order answers arrive at this size
        code, direct, err = await _weave_cli(llama_server_url, strategy)
        assert code == 0, err
        assert _texts(out) == _texts(direct)


def test_a_connection_closed_before_the_answer_says_so_in_words() -> None:
    with pytest.raises(BackendUnavailable) as raised, translate_errors("http://x/completion"):
        raise httpx.ReadError("")
    message = str(raised.value)
    assert "ReadError: ReadError" not in message
    assert "connection closed before the answer was complete (ReadError)" in message
    assert "proxy" in message

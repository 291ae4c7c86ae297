"""stdio carries nothing but JSON-RPC; --tcp serves the same protocol."""

from __future__ import annotations

import json
import socket
import subprocess
import time

from conftest import SERVER


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "processId": None,
        "rootUri": None,
        "capabilities": {},
        "initializationOptions": {"lloom": {"weave": {"maxDepth": 0}}},
    },
}
SESSION = [
    INIT,
    {"jsonrpc": "2.0", "method": "initialized", "params": {}},
    {"jsonrpc": "2.0", "id": 2, "method": "shutdown"},
    {"jsonrpc": "2.0", "method": "exit"},
]


def parse_frames(data: bytes) -> list[dict]:
    """Every byte must belong to a Content-Length frame holding JSON."""
    messages = []
    while data:
        header, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"stray bytes on stdout: {data[:80]!r}"
        fields = dict(line.split(": ", 1) for line in header.decode().split("\r\n"))
        length = int(fields["Content-Length"])
        messages.append(json.loads(rest[:length]))
        data = rest[length:]
    return messages


def test_stdout_holds_only_json_rpc() -> None:
    # A bad setting makes the server log and show a message: all of it must stay framed.
    done = subprocess.run(
        SERVER, input=b"".join(frame(m) for m in SESSION), capture_output=True, timeout=60
    )
    messages = parse_frames(done.stdout)
    init = next(m for m in messages if m.get("id") == 1)
    assert "inlineCompletionProvider" in init["result"]["capabilities"]
    shown = [m for m in messages if m.get("method") == "window/showMessage"]
    assert any("lloom.weave.maxDepth" in m["params"]["message"] for m in shown)
    assert b"maxDepth" in done.stderr  # the log went to stderr as well


def test_tcp_transport() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*SERVER, "serve", "--tcp", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline, "server never listened"
                time.sleep(0.05)
        with conn:
            conn.sendall(frame(INIT))
            data = b""
            while b'"id": 1' not in data and b'"id":1' not in data:
                chunk = conn.recv(65536)
                assert chunk, "connection closed before the initialize answer"
                data += chunk
            assert b"inlineCompletionProvider" in data
    finally:
        server.kill()
        server.wait()

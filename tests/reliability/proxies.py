"""What sits between a writer's editor and their llama-server in the field, for the tests.

* :func:`forwarder`: a plain TCP forwarder, which copies bytes and nothing else (a LAN hop,
  an SSH tunnel), optionally holding every byte back ``delay`` seconds each way, as a LAN
  does.
* :func:`nginx`: Debian's nginx as a reverse proxy, configured as a user would put it in
  front of llama-server: HTTP/1.1 with keep-alive to the client and to the upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

#: How the typing storm reaches llama-server: straight, through nginx, through a LAN.
ROUTES = ("direct", "nginx", "lan")
NGINX_MISSING = "nginx is not installed (scripts/setup.sh --editors installs it)"
#: The forwarder's delay each way in the tests: a slow LAN's round trip of 40 ms.
LAN_DELAY_S = 0.020


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each piece ``delay`` seconds after it came, in order;
    end of file (the peer's close) is passed on after the last piece."""
    pieces: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await pieces.get()
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if not data:
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(65536)
            pieces.put_nowait((time.monotonic() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        pass
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.asynccontextmanager
async def forwarder(url: str, delay: float = 0.0) -> AsyncIterator[str]:
    """A TCP forwarder on a free port in front of ``url``: it copies bytes, ``delay``
    seconds late each way, nothing else.  Yields its URL."""
    target = urlsplit(url)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            server_r, server_w = await asyncio.open_connection(target.hostname, target.port)
            await asyncio.gather(_pipe(client_r, server_w, delay), _pipe(server_r, client_w, delay))
        except (ConnectionError, OSError):
            client_w.close()
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def nginx_binary() -> str | None:
    """Debian's nginx (``/usr/sbin`` is not on every user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


#: A user's reverse proxy for llama-server: keep-alive to the client and to the upstream
#: (``keepalive`` in the upstream block, HTTP/1.1 and no "Connection: close" to it), long
#: read timeouts for a slow model, nginx's defaults otherwise (answers buffered).
NGINX_CONF = """\
{user}worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_timeout 65s;
    keepalive_requests 10000;
    upstream llama {{
        server {upstream};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://llama;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def nginx(url: str, workdir: Path, binary: str) -> Iterator[str]:
    """nginx in front of ``url``, its files in ``workdir``; yields its URL."""
    port = _free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers read workdir, root's
    conf = workdir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(user=user, dir=workdir, upstream=urlsplit(url).netloc, port=port),
        encoding="utf-8",
    )
    command = [binary, "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"nginx exited with {proc.returncode}: {err}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("nginx never listened")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def check_installed(route: str, real_part_missing: Callable[[str], None]) -> None:
    """Skip, or fail under CI, where ``route`` needs a part this machine lacks."""
    if route == "nginx" and nginx_binary() is None:
        real_part_missing(NGINX_MISSING)


@contextlib.asynccontextmanager
async def through(route: str, url: str, workdir: Path) -> AsyncIterator[str]:
    """The URL that reaches ``url`` through ``route``: "direct", "nginx", "forwarder" (no
    delay) or "lan" (the forwarder, ``LAN_DELAY_S`` each way).  nginx keeps its files in
    ``workdir``."""
    if route == "direct":
        yield url
    elif route == "nginx":
        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError(NGINX_MISSING)
        with nginx(url, workdir, binary) as front:
            yield front
    elif route in ("forwarder", "lan"):
        async with forwarder(url, LAN_DELAY_S if route == "lan" else 0.0) as front:
            yield front
    else:
        raise ValueError(f"no such route: {route}")

"""Data safety and secrets, through the language server: the API key never leaves the
environment variable that the settings name (not in logs, messages or lloom.weave
results), TLS verification stays on, and a URL that is not http(s) is refused by name.
(lloom.accept refusing a stale version: tests/lsp/test_commands.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from lloom_lsp.backends.http import HttpTransport

SECRET = "sk-test-4f1b9c2e7d-never-shown"
KEY_ENV = "LLOOM_TEST_SECRET_KEY"
URI = "file:///secret/story.txt"
TEXT = "Once upon a time,"


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "lloom_lsp", "--log-level", "DEBUG"],
        server_env={**os.environ, KEY_ENV: SECRET},
    )
)
async def keyed(lsp_client: LanguageClient) -> AsyncIterator[LanguageClient]:
    yield lsp_client
    await lsp_client.shutdown_session()


async def test_the_api_key_never_reaches_logs_messages_or_results(
    keyed: LanguageClient, llama_server_url: str
) -> None:
    options = {
        "lloom": {
            "backend": {"url": llama_server_url, "apiKeyEnv": KEY_ENV, "type": "llamacpp"},
            "weave": {"strategy": "chain", "maxDepth": 3},
        }
    }
    await keyed.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(), initialization_options=options
        )
    )
    keyed.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=URI, language_id="plaintext", version=1, text=TEXT
            )
        )
    )
    result = await keyed.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="lloom.weave", arguments=[URI, {"line": 0, "character": len(TEXT)}]
        )
    )
    assert result["beams"]  # the key was sent and the weave worked
    # a failing backend too: its error message must not carry the key
    options["lloom"]["backend"]["url"] = "http://127.0.0.1:9"
    keyed.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=options))
    failed = await keyed.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="lloom.weave", arguments=[URI, {"line": 0, "character": len(TEXT)}]
        )
    )
    seen: list[Any] = [
        json.dumps(result),
        json.dumps(failed),
        *(m.message for m in keyed.log_messages),
        *(m.message for m in keyed.messages),
    ]
    assert keyed.log_messages  # DEBUG logging was on: there was something to leak into
    assert all(SECRET not in text for text in seen)


def test_tls_verification_stays_on() -> None:
    transport = HttpTransport("https://llm.example", api_key=SECRET)
    pool = transport.client._transport._pool  # type: ignore[attr-defined]
    context: ssl.SSLContext = pool._ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_a_url_that_is_not_http_is_refused_by_name(keyed: LanguageClient) -> None:
    options = {"lloom": {"backend": {"url": "file:///etc/passwd"}}}
    await keyed.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(), initialization_options=options
        )
    )
    for _ in range(100):  # the message is a notification, sent while initialising
        if keyed.messages:
            break
        await asyncio.sleep(0.02)
    (message,) = [m.message for m in keyed.messages if m.type == types.MessageType.Error]
    assert "lloom.backend.url" in message and "http:// or https://" in message

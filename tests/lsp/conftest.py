"""pytest-lsp fixtures: a real client over stdio, the server as a subprocess, and the
real llama-server serving the test model."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER = [sys.executable, "-m", "lloom_lsp"]
#: Tests that compare whole weaves use LLooM's rules (``chain``) at its original cutoff.  The
#: default ``best`` takes the next prefixes as concurrent answers arrive, and on the bigram test
#: model, which branches at half its positions, the default cutoff (0.1, set for real models)
#: lets maxSuggestions bind, so both depend on the order answers arrive.
EXACT_WEAVE = {"strategy": "chain", "cutoff": 0.2}
URI = "file:///story/tale.txt"


def capabilities(
    profile: str = "visual-studio-code",
    *,
    inline: bool = True,
    utf8: bool = False,
    resolve: bool = True,
) -> types.ClientCapabilities:
    caps = client_capabilities(profile)
    if inline and caps.text_document is not None:
        caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    if not resolve and caps.text_document and caps.text_document.code_action:
        caps.text_document.code_action.resolve_support = None  # codeAction/resolve: no
    if utf8:
        caps.general = caps.general or types.GeneralClientCapabilities()
        caps.general.position_encodings = [types.PositionEncodingKind.Utf8]
    return caps


def lloom_options(url: str, **weave: Any) -> dict[str, Any]:
    return {"lloom": {"backend": {"url": url}, "weave": weave}}


async def start(
    client: LanguageClient, options: dict[str, Any] | None, **caps: Any
) -> types.InitializeResult:
    return await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(**caps),
            initialization_options=options,
            client_info=types.ClientInfo(name="pytest-lsp"),
        )
    )


def open_doc(client: LanguageClient, text: str, uri: str = URI, version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="plaintext", version=version, text=text
            )
        )
    )


def end_of(text: str) -> types.Position:
    """The position after ``text`` in UTF-16 code units."""
    lines = text.split("\n")
    return types.Position(len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, llama_server_url: str) -> AsyncIterator[Any]:
    """A VS Code-like client, initialised with the real backend's URL."""
    await start(lsp_client, lloom_options(llama_server_url, **EXACT_WEAVE))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def bare_client(lsp_client: LanguageClient) -> AsyncIterator[Any]:
    """Not initialised: the test chooses capabilities and options."""
    yield
    await lsp_client.shutdown_session()

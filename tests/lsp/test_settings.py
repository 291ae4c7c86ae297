"""Settings from initializationOptions, workspace/configuration and
didChangeConfiguration, and invalid values; observed through the weave itself."""

from __future__ import annotations

from typing import Any

from conftest import URI, end_of, lloom_options, open_doc, start
from lsprotocol import types
from pytest_lsp import LanguageClient

TEXT = "Once upon a time,"


async def weave_tokens(client: LanguageClient, text: str = TEXT) -> list[int]:
    """Token counts of the beams the server weaves at the end of ``text``."""
    pos = end_of(text)
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="lloom.weave",
            arguments=[URI, {"line": pos.line, "character": pos.character}],
        )
    )
    return [len(b["tokens"]) for b in result["beams"]]


def change_text(client: LanguageClient, text: str, version: int) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def errors(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Error]


async def test_three_sources_later_wins(bare_client: LanguageClient, llama_server_url: str) -> None:
    # chain: every beam runs to maxDepth (best may hand back a beam its budget cut short)
    options: dict[str, Any] = lloom_options(
        llama_server_url, maxDepth=2, autoStop=False, strategy="chain"
    )
    await start(bare_client, options)
    open_doc(bare_client, TEXT)
    assert set(await weave_tokens(bare_client)) == {2}  # initializationOptions

    # workspace/configuration wins over initializationOptions (pulled after a change)
    bare_client.set_configuration({"lloom": {"weave": {"maxDepth": 3}}})
    bare_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None)
    )
    assert set(await weave_tokens(bare_client)) == {3}

    # a push is window-level (VS Code pushes no folder's settings): it makes the server
    # pull again, and the document's own pulled settings win over it
    bare_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"lloom": {"weave": {"maxDepth": 4}}})
    )
    assert set(await weave_tokens(bare_client)) == {3}
    bare_client.set_configuration({"lloom": {"weave": {"maxDepth": 5}}})
    bare_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"lloom": {"weave": {"maxDepth": 4}}})
    )
    assert set(await weave_tokens(bare_client)) == {5}
    assert errors(bare_client) == []


async def test_invalid_value_is_named_and_last_valid_stays(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    options = lloom_options(llama_server_url, maxDepth=2, autoStop=False, strategy="chain")
    await start(bare_client, options)
    open_doc(bare_client, TEXT)
    assert set(await weave_tokens(bare_client)) == {2}
    bare_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"lloom": {"weave": {"maxDepth": 0, "cutoff": 3}}}
        )
    )
    change_text(bare_client, TEXT + " there", 2)  # a new story, so the cache cannot answer
    tokens = await weave_tokens(bare_client, TEXT + " there")
    assert tokens and set(tokens) == {2}
    (message,) = errors(bare_client)
    assert "lloom.weave.maxDepth must be an integer from 1 to 512 (got 0)" in message
    assert "lloom.weave.cutoff must be a number from 0 to 1 (got 3)" in message


async def test_invalid_initialization_options_fall_back_to_defaults(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    options = lloom_options(llama_server_url)
    options["lloom"]["weave"] = {"rank": "best"}
    await start(bare_client, options)
    open_doc(bare_client, TEXT)
    assert await weave_tokens(bare_client)  # weaving goes on with the defaults
    assert any(
        "lloom.weave.rank must be one of 'lloom', 'joint', 'mean'" in m for m in errors(bare_client)
    )


# -- the store, unit ---------------------------------------------------------------------


def _store() -> tuple[Any, list[str], list[str]]:
    from lloom_lsp.server.settings import SettingsStore

    errors: list[str] = []
    warnings: list[str] = []
    return SettingsStore(errors.append, warnings.append), errors, warnings


def test_an_invalid_folder_is_reported_once_however_often_a_valid_folder_asks() -> None:
    """A valid folder's request cleared what had been reported, so the invalid folder's
    error popped up again after every request there."""
    store, errors, _ = _store()
    store.set_pulled("file:///bad/", {"weave": {"maxDepth": 0}})
    store.set_pulled("file:///good/", {"weave": {"maxDepth": 5}})
    for _ in range(3):
        assert store.get("file:///bad/").weave.max_depth == 12  # the last valid value
        assert store.get("file:///good/").weave.max_depth == 5
    assert len(errors) == 1 and "lloom.weave.maxDepth" in errors[0]
    # fixed, then broken again: reported again
    store.set_pulled("file:///bad/", {"weave": {"maxDepth": 4}})
    store.get("file:///bad/")
    store.set_pulled("file:///bad/", {"weave": {"maxDepth": 0}})
    store.get("file:///bad/")
    assert len(errors) == 2


def test_a_folders_pulled_settings_win_over_pushed_window_settings() -> None:
    """VS Code pushes window-level settings; the server ranked them above the per-document
    settings it pulls, so a folder's .vscode/settings.json never applied."""
    store, errors, _ = _store()
    store.set_pushed({"lloom": {"weave": {"maxDepth": 4, "topN": 3}}})
    store.set_pulled("file:///folder/", {"weave": {"maxDepth": 5}})
    folder = store.get("file:///folder/")
    assert (folder.weave.max_depth, folder.weave.top_n) == (5, 3)
    assert store.get("file:///elsewhere/").weave.max_depth == 4  # not pulled: the push
    assert errors == []


def test_an_unknown_key_is_one_warning_naming_it() -> None:
    store, errors, warnings = _store()
    store.set_init({"lloom": {"weave": {"maxDepht": 3}, "bakend": {}, "server": {"command": "x"}}})
    store.get(None)
    store.get("file:///doc.txt")
    assert errors == []
    (warning,) = warnings  # once, though asked twice; client-side groups are not unknown
    assert "lloom.weave.maxDepht" in warning and "lloom.bakend" in warning
    assert "lloom.server" not in warning

"""Memory, the author's note and lloom.showContext, against the real llama-server.

A 47,000-character document whose memory names a character is woven at its end: the
weave's prompt starts with the memory, and lloom.showContext shows that prompt exactly,
with the server's own token count and context size.  What the memory costs the prompt
cache is counted by llama-server itself (``--metrics``: ``llamacpp:prompt_tokens_total``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import URI, end_of, open_doc, start
from lsprotocol import types
from pytest_lsp import LanguageClient

from lloom_lsp.backends.process import LlamaServerProcess, counters
from lloom_lsp.server.context import PROMPT_RULE, prompt_of

MEMORY = "Captain Ilse Varga keeps the lighthouse at Skerry Point."
WORDS = "the miller walked down to river every morning and his daughter sang".split()


def story(chars: int, seed: int = 0) -> str:
    """Paragraphs of the miller's words, ``chars`` characters long."""
    words, out, i = [], 0, seed
    while out < chars:
        word = (
            WORDS[i % len(WORDS)] + ("." if i % 9 == 8 else "") + ("\n\n" if i % 61 == 60 else "")
        )
        words.append(word)
        out += len(word) + 1
        i += 1
    return " ".join(words).replace("\n\n ", "\n\n")[:chars].rstrip()


def front_matter(memory: str) -> str:
    return f"---\ntitle: The Miller\nmemory: |\n  {memory}\n---\n\n"


LONG = front_matter(MEMORY) + story(47_500)


def options(url: str, **story_settings: Any) -> dict[str, Any]:
    return {
        "lloom": {
            "backend": {"url": url, "type": "llamacpp"},
            "weave": {"strategy": "chain", "cutoff": 0.2, "maxSuggestions": 4},
            "story": story_settings,
            "warmup": {"enabled": False},
        }
    }


def at(position: types.Position) -> dict[str, int]:
    return {"line": position.line, "character": position.character}


async def command(client: LanguageClient, name: str, *args: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args))
    )


async def tokenize(url: str, text: str) -> int:
    async with httpx.AsyncClient(timeout=60) as http:
        return len((await http.post(f"{url}/tokenize", json={"content": text})).json()["tokens"])


async def n_ctx(url: str) -> int:
    async with httpx.AsyncClient(timeout=60) as http:
        props = (await http.get(f"{url}/props")).json()
    return int(props["default_generation_settings"]["n_ctx"])


async def test_a_long_documents_weave_starts_with_its_memory_and_show_context_shows_it(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    assert len(LONG) > 47_000
    await start(bare_client, options(llama_server_url))
    open_doc(bare_client, LONG)
    end = at(end_of(LONG))
    woven = await command(bare_client, "lloom.weave", URI, end)
    assert woven["beams"], {k: str(v)[:300] for k, v in woven.items()}
    prompt = woven["tree"]["prompt"]
    assert prompt.startswith(MEMORY + "\n\n")
    assert "title: The Miller" not in prompt  # the block is memory, not story
    assert LONG.endswith(prompt[len(MEMORY) + 2 :])  # then the document's end

    shown = await command(bare_client, "lloom.showContext", URI, end)
    assert shown["prompt"] == prompt
    assert (shown["memory"], shown["memorySource"]) == (MEMORY, "front matter")
    assert shown["tokens"] == await tokenize(llama_server_url, prompt)
    assert shown["contextTokens"] == await n_ctx(llama_server_url)
    assert prompt_of(shown["text"]) == prompt
    header = shown["text"].split(PROMPT_RULE)[0]
    assert f"{shown['tokens']} tokens of {shown['contextTokens']}" in header
    assert "front matter" in header


async def test_the_authors_note_goes_before_the_last_paragraphs(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    note = "[Note: the daughter hides a letter.]"
    text = "One morning.\n\nThe second paragraph.\n\nThe third paragraph.\n\nAnd the miller"
    await start(bare_client, options(llama_server_url, authorsNote=note, authorsNoteDepth=2))
    open_doc(bare_client, text)
    end = at(end_of(text))
    shown = await command(bare_client, "lloom.showContext", URI, end)
    assert shown["prompt"] == (
        "One morning.\n\nThe second paragraph.\n\n" + note + "\n\nThe third paragraph.\n\n"
        "And the miller"
    )
    woven = await command(bare_client, "lloom.weave", URI, end)
    assert woven["beams"] and woven["tree"]["prompt"] == shown["prompt"]
    assert "Author's note: 36 characters, before the last 2 paragraph(s)" in shown["text"]


async def test_memory_from_a_file_beside_the_document_or_the_setting(
    bare_client: LanguageClient, llama_server_url: str, tmp_path: Path
) -> None:
    await start(bare_client, options(llama_server_url, memory="From the setting."))
    text = "The miller walked down to the river"
    document = tmp_path / "chapter.md"
    uri = document.as_uri()
    open_doc(bare_client, text, uri=uri)
    shown = await command(bare_client, "lloom.showContext", uri, at(end_of(text)))
    assert shown["prompt"] == "From the setting.\n\n" + text
    assert shown["memorySource"] == "setting lloom.story.memory"

    (tmp_path / "chapter.memory.md").write_text("Ilse Varga, the keeper.\n")
    shown = await command(bare_client, "lloom.showContext", uri, at(end_of(text)))
    assert shown["prompt"] == "Ilse Varga, the keeper.\n\n" + text
    assert shown["memorySource"] == f"file {tmp_path / 'chapter.memory.md'}"
    woven = await command(bare_client, "lloom.weave", uri, at(end_of(text)))
    assert woven["beams"] and woven["tree"]["prompt"] == shown["prompt"]


async def test_an_unreadable_memory_block_is_named_once_and_the_weave_goes_on(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    text = "<!-- memory\nIlse Varga, never closed.\n\nThe miller walked down to the river"
    await start(bare_client, options(llama_server_url))
    open_doc(bare_client, text)
    for _ in range(2):
        woven = await command(bare_client, "lloom.weave", URI, at(end_of(text)), {"fresh": True})
        assert woven["beams"]
    warnings = [m.message for m in bare_client.messages if m.type == types.MessageType.Warning]
    assert len(warnings) == 1, warnings
    assert URI in warnings[0] and "no closing '-->'" in warnings[0]
    shown = await command(bare_client, "lloom.showContext", URI, at(end_of(text)))
    assert shown["memory"] == "" and shown["prompt"] == text
    assert "Memory problem:" in shown["text"]


async def test_show_context_of_a_document_not_open_is_refused(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    await start(bare_client, options(llama_server_url))
    with pytest.raises(Exception, match="document not open"):
        await command(bare_client, "lloom.showContext", "file:///nowhere.txt", at(end_of("")))


# -- what memory costs the prompt cache ---------------------------------------------------


@pytest.fixture(scope="module")
def counting_server(
    test_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """llama-server on the test model, counting the prompt tokens it evaluates."""
    log = tmp_path_factory.mktemp("metrics-llama-server") / "llama-server.log"
    with LlamaServerProcess(test_model_path, extra_args=("--metrics",), log_path=log) as server:
        yield server.url


async def prompt_tokens(url: str) -> int:
    return int((await counters(url))["prompt_tokens_total"])


async def test_changing_the_memory_costs_one_read_of_the_window_and_typing_none(
    bare_client: LanguageClient, counting_server: str
) -> None:
    await start(bare_client, options(counting_server))
    text, version = LONG, 1
    open_doc(bare_client, text)

    async def weave() -> int:
        """The prompt tokens one weave at the end evaluates."""
        before = await prompt_tokens(counting_server)
        woven = await command(bare_client, "lloom.weave", URI, at(end_of(text)))
        assert woven["beams"], woven
        return await prompt_tokens(counting_server) - before

    def change(start: types.Position, end: types.Position, new: str) -> None:
        nonlocal version
        version += 1
        bare_client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=version, uri=URI),
                [types.TextDocumentContentChangePartial(types.Range(start, end), new)],
            )
        )

    def type_at_end(words: str) -> None:
        nonlocal text
        change(end_of(text), end_of(text), words)
        text += words

    await weave()  # cold
    type_at_end(" and the river")
    typed = await weave()
    # the memory line (line 3 of the front matter) names another keeper
    line = text.split("\n")[3]
    change(types.Position(3, 0), types.Position(3, len(line)), "  Captain Odo Brand keeps it.")
    text = text.replace(line, "  Captain Odo Brand keeps it.", 1)
    shown = await command(bare_client, "lloom.showContext", URI, at(end_of(text)))
    assert shown["prompt"].startswith("Captain Odo Brand keeps it.\n\n")
    changed = await weave()
    type_at_end(" every morning")
    typed_after = await weave()
    print(
        f"prompt tokens: window {shown['tokens']}, typed {typed}, memory changed {changed}, "
        f"typed after {typed_after}"
    )
    # the memory's change reads the whole window again, once; typing reads little
    assert changed >= shown["tokens"] * 0.9
    assert typed < shown["tokens"] / 4 and typed_after < shown["tokens"] / 4

"""Memory and the author's note: the document's own memory block, the file beside it, the
setting, and where the note goes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygls.workspace import TextDocument

from lloom_lsp.config import parse_settings
from lloom_lsp.engine.context import MemoryFormatError, insert_note, memory_block
from lloom_lsp.server.context import MemorySources, memory_file


def test_front_matter_block_scalar_is_the_memory_and_ends_where_the_story_starts() -> None:
    text = (
        "---\ntitle: Ash\nmemory: |\n  Mara keeps the lighthouse.\n  Her brother drowned.\n"
        "author: me\n---\n\nThe storm came."
    )
    block = memory_block(text)
    assert block is not None and block.form == "front matter"
    assert block.text == "Mara keeps the lighthouse.\nHer brother drowned."
    assert text[block.end :] == "The storm came."


@pytest.mark.parametrize(
    ("value", "memory"),
    [
        ("memory: Mara keeps the lighthouse. # a comment", "Mara keeps the lighthouse."),
        ('memory: "Mara said \\"no\\"."', 'Mara said "no".'),
        ("memory: 'Mara''s lamp'", "Mara's lamp"),
        (
            "memory: >\n  Mara keeps\n  the lighthouse.\n\n  Ships pass.",
            "Mara keeps the lighthouse.\n\nShips pass.",
        ),
        ("memory: plain\n  continued", "plain continued"),
    ],
)
def test_front_matter_values(value: str, memory: str) -> None:
    block = memory_block(f"---\n{value}\n---\nStory.")
    assert block is not None and block.text == memory


def test_memory_comment_at_the_top() -> None:
    text = "<!-- memory\n  Mara keeps the lighthouse.\n-->\nThe storm came."
    block = memory_block(text)
    assert block is not None and block.form == "comment"
    assert block.text == "Mara keeps the lighthouse."
    assert text[block.end :] == "The storm came."


@pytest.mark.parametrize(
    "text",
    [
        "The story, no block.",
        "---\ntitle: Ash\n---\nFront matter without memory stays story.",
        "---\nA horizontal rule, never closed: not front matter.\nmemory: no",
        "Text first.\n<!-- memory\nnot at the top -->",
    ],
)
def test_no_memory_block(text: str) -> None:
    assert memory_block(text) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("<!-- memory\nMara.\nThe story never closes it.", "no closing '-->'"),
        ('---\nmemory: "Mara\n---\nStory.', 'no closing "'),
        ("---\nmemory: |x\n---\nStory.", "not a block scalar"),
        ('---\nmemory: "bad \\q escape"\n---\nStory.', "quoted 'memory:' value"),
    ],
)
def test_malformed_memory_blocks_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(MemoryFormatError, match=says.replace("|", r"\|")):
        memory_block(text)


def test_the_note_goes_before_the_last_paragraphs() -> None:
    window = "One.\n\nTwo.\n\nThree and"
    assert insert_note(window, "[Note]", 1) == "One.\n\nTwo.\n\n[Note]\n\nThree and"
    assert insert_note(window, "[Note]", 2) == "One.\n\n[Note]\n\nTwo.\n\nThree and"
    assert insert_note(window, "[Note]", 3) == "[Note]\n\nOne.\n\nTwo.\n\nThree and"
    assert insert_note(window, "  ", 2) == window
    # typing in the last paragraph changes nothing before the note's end
    typed = insert_note(window + " more words", "[Note]", 2)
    assert typed.startswith(insert_note(window, "[Note]", 2))


def test_memory_file_beside_the_document() -> None:
    assert memory_file("/w/chapter-3.md") == Path("/w/chapter-3.memory.md")
    assert memory_file("/w/notes") == Path("/w/notes.memory.md")
    assert memory_file("/w/chapter-3.memory.md") is None


def _doc(path: Path, text: str) -> TextDocument:
    return TextDocument(path.as_uri(), text)


def test_sources_in_order_and_a_file_read_again_only_when_changed(tmp_path: Path) -> None:
    sources = MemorySources()
    setting = parse_settings({"story": {"memory": "From the setting."}})
    story = tmp_path / "tale.md"
    assert sources.memory_for(_doc(story, "Story."), setting).source == "setting lloom.story.memory"
    beside = tmp_path / "tale.memory.md"
    beside.write_text("\ufeffFrom the file.\n")
    memory = sources.memory_for(_doc(story, "Story."), setting)
    assert (memory.text, memory.source) == ("From the file.", f"file {beside}")
    beside.write_text("Changed, longer than before.")
    assert sources.memory_for(_doc(story, "Story."), setting).text == "Changed, longer than before."
    own = sources.memory_for(_doc(story, "<!-- memory From the block. -->\nStory."), setting)
    assert (own.text, own.source, own.problem) == ("From the block.", "comment", None)


def test_an_unreadable_memory_file_is_named(tmp_path: Path) -> None:
    sources = MemorySources()
    settings = parse_settings({})
    (tmp_path / "tale.memory.md").write_bytes(b"\xff\xfe\xfa not text")
    memory = sources.memory_for(_doc(tmp_path / "tale.md", "Story."), settings)
    assert memory.text == ""
    assert memory.problem is not None
    assert str(tmp_path / "tale.memory.md") in memory.problem and "UTF-8" in memory.problem
    (tmp_path / "tale.memory.md").unlink()
    (tmp_path / "tale.memory.md").mkdir()
    memory = sources.memory_for(_doc(tmp_path / "tale.md", "Story."), settings)
    assert memory.problem is not None and "tale.memory.md" in memory.problem


def test_a_malformed_block_falls_back_and_says_so(tmp_path: Path) -> None:
    settings = parse_settings({"story": {"memory": "From the setting."}})
    doc = _doc(tmp_path / "t.md", "<!-- memory\nnever closed")
    memory = MemorySources().memory_for(doc, settings)
    assert memory.text == "From the setting."
    assert memory.problem is not None and "no closing '-->'" in memory.problem

"""The thread tree, drawn (lloom_lsp/engine/render.py), on a hand-built tree."""

from __future__ import annotations

import json
import uuid

import pytest

from lloom_lsp.engine.render import render, to_dot, to_mermaid, to_text, tree_view
from lloom_lsp.engine.source import Candidate
from lloom_lsp.engine.tree import ThreadTree


def tree() -> ThreadTree:
    """story → " there" (0.6) → " was" (0.9, depth) | " lived" (0.05, ungrown);
    story → ' "A' (0.3, stop); story → "\\n" (0.001, ungrown)."""
    t = ThreadTree("Once upon a time,")
    there = t.root.add(Candidate(1, b" there", 0.6))
    was = there.add(Candidate(2, b" was", 0.9))
    was.finish = "depth"
    there.add(Candidate(3, b" lived", 0.05))  # an alternative nobody grew
    quote = t.root.add(Candidate(4, b' "A', 0.3))
    quote.finish = "eos"
    t.root.add(Candidate(5, b"\n", 0.001))  # ungrown
    return t


def test_only_the_explored_tree_is_kept_with_stable_ids() -> None:
    view = tree_view(tree())
    root = view.root
    assert root.id == "n0" and root.text == "" and root.prob == 1.0
    # ids are indices in the whole tree: the ungrown "\n" (n0_2) and " lived" (n0_0_1) are gone
    assert [c.id for c in root.children] == ["n0_0", "n0_1"]
    there, quote = root.children
    assert [c.id for c in there.children] == ["n0_0_0"]
    leaf = there.children[0]
    assert (leaf.text, leaf.prob, leaf.finish, leaf.path) == (" was", 0.9, "depth", " there was")
    assert quote.finish == "end"  # the engine's eos, as the renderings name it
    assert there.finish is None


def test_insert_text_heals_the_held_space_and_starts_with_after() -> None:
    leaf = tree_view(tree(), held=" ").root.children[0].children[0]
    assert leaf.insert_text == "there was"  # the document already has the space
    onward = tree_view(tree(), held="", after=" she said").root.children[0]
    assert onward.insert_text == " she said there"
    data = json.loads(render(tree_view(tree(), held=" "), "json"))
    assert data["held"] == " " and data["root"]["children"][0]["insertText"] == "there"


def test_dot_labels_tokens_and_reasons_and_keeps_ids() -> None:
    dot = to_dot(tree_view(tree()))
    assert dot.startswith("digraph weave {") and dot.rstrip().endswith("}")
    assert 'n0_0_0 [id="n0_0_0", label="·was\\n90%\\n[depth]"' in dot
    assert 'label="·\\"A\\n30%\\n[end]"' in dot  # a quote in a token is escaped
    assert "n0 -> n0_0 [penwidth=2.60" in dot  # 0.5 + 3.5 * 0.6: wider when likelier
    assert "lived" not in dot


def test_mermaid_and_text() -> None:
    mermaid = to_mermaid(tree_view(tree()))
    assert mermaid.splitlines()[0] == "flowchart LR"
    assert 'n0_1[["·#quot;A 30% · end"]]' in mermaid
    assert "n0 --> n0_0" in mermaid and "linkStyle 0 stroke:" in mermaid
    text = to_text(tree_view(tree()))
    lines = text.splitlines()
    assert lines[0] == "story …Once upon a time,"  # the story's end first
    # a chain of only children reads as one phrase, with its joint probability
    assert any("·there·was" in line and "(p=54%)" in line and "[depth]" in line for line in lines)
    assert any('·"A' in line and "[end]" in line for line in lines)


async def test_svg_without_graphviz_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from lloom_lsp import graphviz

    monkeypatch.setattr(graphviz.shutil, "which", lambda name: None)
    svg, error = await graphviz.to_svg(to_dot(tree_view(tree())))
    assert svg == "" and error is not None and "install graphviz" in error


def test_loomsidian_weave_holds_the_prompt_and_one_node_per_phrase() -> None:
    """The JSON Tapestry Loom's migration assistant reads as a loomsidian weave."""
    data = json.loads(render(tree_view(tree()), "loomsidian"))
    nodes = data["nodes"]
    (root,) = [k for k, n in nodes.items() if n["parentId"] is None]
    assert nodes[root] == {"text": "Once upon a time,", "parentId": None, "author": "genesis"}
    children = {n["text"]: k for k, n in nodes.items() if n["parentId"] == root}
    assert set(children) == {" there was", ' "A'}  # a chain of only children is one node
    assert len(nodes) == 3  # the ungrown alternatives are not there
    # current: the most probable finished beam (0.6 * 0.9 = 0.54 against 0.3)
    assert data["current"] == children[" there was"]
    for key in nodes:
        assert str(uuid.UUID(key)) == key
    # the same weave saved twice is the same file; another prompt gets other ids
    assert render(tree_view(tree()), "loomsidian") == render(tree_view(tree()), "loomsidian")
    other = ThreadTree("Twice upon a time,")
    other.root.add(Candidate(1, b" there", 0.6)).finish = "depth"
    assert not set(json.loads(render(tree_view(other), "loomsidian"))["nodes"]) & set(nodes)

"""lloom.tree: the weave's real token tree, as JSON, DOT, SVG, Mermaid and text."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from conftest import URI, open_doc
from lsprotocol import types
from pytest_lsp import LanguageClient

TEXT = "Once upon a time, "
POS = {"line": 0, "character": len(TEXT)}


async def command(client: LanguageClient, name: str, *args: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args))
    )


def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node["children"] for n in nodes(child))]


async def test_the_tree_is_the_weaves_own_and_costs_no_second_weave(
    client: LanguageClient,
) -> None:
    open_doc(client, TEXT)
    woven = await command(client, "lloom.weave", URI, POS)
    answer = await command(client, "lloom.tree", URI, POS)
    assert answer["format"] == "json" and answer["version"] == woven["version"]
    assert answer["speedLine"] == woven["speedLine"]  # the cached weave, not a second one
    tree = answer["tree"]
    assert tree["prompt"] == TEXT.rstrip() and tree["held"] == " "
    everything = nodes(tree["root"])
    # ids are paths of child indices; each child's path extends its parent's
    for node in everything:
        for child in node["children"]:
            assert child["id"].startswith(node["id"] + "_")
            assert child["path"] == node["path"] + child["text"]
            assert 0 < child["prob"] <= 1
    leaves = [n for n in everything if n["finish"]]
    assert leaves and all(not n["children"] for n in leaves if n["finish"] != "stop")
    assert {n["finish"] for n in leaves} <= {"stop", "depth", "end", "cut"}
    # every beam is a leaf of the tree: its insertText is the leaf's (a stop string may cut
    # the beam inside the leaf's last token)
    inserts = [n["insertText"] for n in leaves]
    for beam in woven["beams"]:
        assert any(text.startswith(beam["insertText"]) for text in inserts), beam["insertText"]
    assert all(not text.startswith(" ") for text in inserts)  # the held space is not doubled


async def test_dot_mermaid_and_text_draw_the_same_nodes(client: LanguageClient) -> None:
    open_doc(client, TEXT)
    tree = (await command(client, "lloom.tree", URI, POS))["tree"]
    ids = [n["id"] for n in nodes(tree["root"])]
    dot = (await command(client, "lloom.tree", URI, POS, {"format": "dot"}))["text"]
    assert dot.startswith("digraph weave {")
    assert all(f'{node_id} [id="{node_id}"' in dot for node_id in ids)
    mermaid = (await command(client, "lloom.tree", URI, POS, {"format": "mermaid"}))["text"]
    assert mermaid.startswith("flowchart LR") and all(f"  {i}" in mermaid for i in ids)
    text = (await command(client, "lloom.tree", URI, POS, {"format": "text"}))["text"]
    assert text.startswith("story …") and "[" in text


async def test_svg_comes_from_graphviz(client: LanguageClient, real_part_missing: Any) -> None:
    if shutil.which("dot") is None:
        real_part_missing("Graphviz's dot is not on PATH (scripts/setup.sh installs graphviz)")
    open_doc(client, TEXT)
    answer = await command(client, "lloom.tree", URI, POS, {"format": "svg"})
    assert "error" not in answer, answer.get("error")
    assert "<svg" in answer["text"] and 'id="n0_0"' in answer["text"]


async def test_weaving_on_from_a_node_and_bad_options(client: LanguageClient) -> None:
    open_doc(client, TEXT)
    tree = (await command(client, "lloom.tree", URI, POS))["tree"]
    inner = next(n for n in nodes(tree["root"])[1:] if n["children"])
    onward = await command(client, "lloom.tree", URI, POS, {"after": inner["insertText"]})
    assert onward["after"] == inner["insertText"]
    assert onward["tree"]["prompt"] == (TEXT + inner["insertText"]).rstrip(" \t")
    for node in nodes(onward["tree"]["root"])[1:]:
        assert node["insertText"].startswith(inner["insertText"])
    bad = await command(client, "lloom.tree", URI, POS, {"format": "png"})
    assert "'png'" in bad["error"] and "svg" in bad["error"]
    unknown = await command(client, "lloom.tree", URI, POS, {"colour": True})
    assert "'colour'" in unknown["error"]


@pytest.mark.parametrize("missing", ["file:///never/opened.txt"])
async def test_an_unknown_document_is_named(client: LanguageClient, missing: str) -> None:
    answer = await command(client, "lloom.tree", missing, POS)
    assert answer["error"] == f"document not open: {missing}"


@pytest.mark.parametrize("reuse", [True, False])
async def test_after_accepting_an_inner_node_the_next_weave_extends_only_the_frontier(
    client: LanguageClient, reuse: bool
) -> None:
    """Continue without starting over: the weave after an accepted beam (the server's
    prefetch) replays what the last weave explored below it and says what that saved."""
    import asyncio

    statuses: list[Any] = []
    client.feature("lloom/status")(lambda params: statuses.append(params))

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        return types.ApplyWorkspaceEditResult(applied=True)

    if not reuse:  # lloom.weave.reuse off: every weave asks the model
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"lloom": {"weave": {"reuse": False}}})
        )
    open_doc(client, TEXT)
    answer = await command(client, "lloom.tree", URI, POS)
    inner = max(
        (n for n in nodes(answer["tree"]["root"])[1:] if n["children"]),
        key=lambda n: len([m for m in nodes(n) if m["finish"]]),
    )
    done = len(statuses)
    accepted = await command(
        client, "lloom.accept", URI, answer["version"], POS, inner["insertText"]
    )
    assert accepted == {"applied": True}
    for _ in range(500):  # the prefetch of the text after it
        if any(s.state == "done" for s in statuses[done:]):
            break
        await asyncio.sleep(0.01)
    prefetch = next(s for s in statuses[done:] if s.state == "done")
    assert ("tokens reused from the last weave" in prefetch.message) is reuse, prefetch.message


async def test_a_tree_is_saved_beside_its_document_and_loaded_back(
    client: LanguageClient, tmp_path: Any
) -> None:
    import json

    story = tmp_path / "tale.txt"
    story.write_text(TEXT, encoding="utf-8")
    uri = story.as_uri()
    open_doc(client, TEXT, uri=uri)
    tree = (await command(client, "lloom.tree", uri, POS))["tree"]
    saved = await command(client, "lloom.saveTree", uri, POS)
    path = tmp_path / "tale.txt.lloom.json"
    assert saved == {"path": str(path), "nodes": len(nodes(tree["root"]))}
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["format"], data["version"], data["document"]) == ("lloom-tree", 1, uri)
    loaded = await command(client, "lloom.loadTree", uri)
    assert loaded["tree"] == tree and loaded["position"] == POS
    assert loaded["format"] == "json"
    # drawn by the server as it draws a woven tree, without weaving again
    woven_dot = (await command(client, "lloom.tree", uri, POS, {"format": "dot"}))["text"]
    drawn = await command(client, "lloom.loadTree", uri, {"format": "dot"})
    assert drawn["text"] == woven_dot and drawn["tree"] == tree
    text = await command(client, "lloom.loadTree", uri, {"format": "text"})
    assert (
        text["text"] == (await command(client, "lloom.tree", uri, POS, {"format": "text"}))["text"]
    )
    assert (
        "unknown format" in (await command(client, "lloom.loadTree", uri, {"format": "x"}))["error"]
    )

    data["tree"]["root"]["children"][0]["prob"] = "high"
    path.write_text(json.dumps(data), encoding="utf-8")
    broken = await command(client, "lloom.loadTree", uri)
    assert '"tree.root.children[0].prob" must be a number' in broken["error"]
    assert str(path) in broken["error"]
    nowhere = await command(client, "lloom.saveTree", "untitled:Untitled-1", POS)
    assert "only a file: document" in nowhere["error"]


async def test_a_tree_is_saved_for_other_loom_tools(client: LanguageClient, tmp_path: Any) -> None:
    """format loomsidian: the weave JSON Tapestry Loom's migration assistant reads."""
    import json

    story = tmp_path / "tale.txt"
    story.write_text(TEXT, encoding="utf-8")
    uri = story.as_uri()
    open_doc(client, TEXT, uri=uri)
    tree = (await command(client, "lloom.tree", uri, POS))["tree"]
    saved = await command(client, "lloom.saveTree", uri, POS, {"format": "loomsidian"})
    path = tmp_path / "tale.txt.loomsidian.json"
    assert saved["path"] == str(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    by_id = data["nodes"]
    (root,) = [n for n in by_id.values() if n["parentId"] is None]
    assert root["text"] == tree["prompt"]
    # every finished beam of the tree is a path of the weave, the prompt first
    texts = set()
    for key, node in by_id.items():
        if not any(n["parentId"] == key for n in by_id.values()):  # a leaf
            parts = []
            while node["parentId"] is not None:
                parts.append(node["text"])
                node = by_id[node["parentId"]]
            texts.add("".join(reversed(parts)))
    leaves = {n["path"] for n in nodes(tree["root"]) if not n["children"]}
    assert texts == leaves
    assert data["current"] in by_id
    bad = await command(client, "lloom.saveTree", uri, POS, {"format": "tapestry"})
    assert "unknown format 'tapestry'" in bad["error"]

"""Every relative link in the project's Markdown resolves: the README, CONTRIBUTING, docs/,
the benchmarks' README and the editors' READMEs point at files that exist, and at headings
that exist in them (`#anchors`, slugged as GitHub slugs them). External links are not
fetched.

The Markdown is read by a small parser rather than a library (none is a dependency): code
blocks, code spans and HTML comments are blanked out first, so a link-shaped string in an
example is not taken for a link.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The documents whose links are checked; each pattern must match at least one file.
DOCUMENTS = (
    "README.md",
    "CONTRIBUTING.md",
    "docs/*.md",
    "benchmarks/README.md",
    "editors/*/README.md",
    "editors/*/e2e/README.md",
)

#: The README is a front door: install, a server, the two commands, links onward.
README_MAX_LINES = 220

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*<?([^\s>]+)>?", re.M)
_HTML_TARGET = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)=["']([^"']+)["']""", re.I)
_HTML_ANCHOR = re.compile(r"""<a\b[^>]*?\b(?:id|name)=["']([^"']+)["']""", re.I)
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _blank(match: re.Match[str]) -> str:
    """The matched text with everything but its line breaks turned to spaces."""
    return re.sub(r"[^\n]", " ", match.group(0))


def without_fences(text: str) -> str:
    """The text with its fenced code blocks blanked out, line breaks kept (so line numbers
    still count)."""
    lines, fence = [], ""
    for line in text.split("\n"):
        opened = _FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            lines.append("")
        elif opened:
            fence = opened.group(1)
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


def prose(text: str) -> str:
    """The text with fenced code blocks, code spans and HTML comments blanked out."""
    text = _COMMENT.sub(_blank, without_fences(text))
    return _CODE_SPAN.sub(_blank, text)


def _destination(text: str, start: int) -> str | None:
    """The link destination that starts at ``text[start]``, just after ``](``."""
    rest = text[start:].lstrip(" \t\n")
    if rest.startswith("<"):
        end = rest.find(">")
        return rest[1:end] if end > 0 else None
    depth, out = 0, []
    for char in rest:
        if char.isspace():
            break
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        out.append(char)
    return "".join(out) if out else None


def links(text: str) -> list[tuple[int, str]]:
    """Every link and image target in Markdown text, with its line number: inline
    (``[text](target)``, ``![alt](target)``), reference definitions and HTML ``href``/``src``."""
    text = prose(text)
    found: list[tuple[int, str]] = []
    for match in re.finditer(r"(?<!\\)\]\(", text):
        target = _destination(text, match.end())
        if target is not None:
            found.append((match.start(), target))
    for pattern in (_REFERENCE, _HTML_TARGET):
        found.extend((m.start(1), m.group(1)) for m in pattern.finditer(text))
    return sorted((text.count("\n", 0, pos) + 1, target) for pos, target in found)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: its text lowercased, punctuation dropped,
    spaces turned to hyphens."""
    heading = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    heading = re.sub(r"<[^>]+>", "", heading)
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors a Markdown document offers: its headings' slugs (a repeated one gets
    ``-1``, ``-2``, …) and the ids of its HTML anchors."""
    seen: dict[str, int] = {}
    found = set(_HTML_ANCHOR.findall(text))
    for line in without_fences(text).split("\n"):
        heading = _HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def documents() -> list[Path]:
    paths: list[Path] = []
    for pattern in DOCUMENTS:
        matched = sorted(ROOT.glob(pattern))
        assert matched, f"no document matches {pattern}"
        paths.extend(matched)
    return paths


def broken_links(document: Path) -> list[str]:
    """Why each relative link of a document does not resolve ("line: target (why)")."""
    problems = []
    for line, target in links(document.read_text(encoding="utf-8")):
        if _SCHEME.match(target) or target.startswith("//"):
            continue  # an external link (https:, mailto:): not fetched
        path_part, _, fragment = target.partition("#")
        resolved = (document.parent / unquote(path_part)).resolve() if path_part else document
        where = f"{line}: {target}"
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{where} (outside the repository)")
        elif not resolved.exists():
            problems.append(f"{where} (no such file)")
        elif fragment and resolved.suffix == ".md":
            if unquote(fragment) not in anchors(resolved.read_text(encoding="utf-8")):
                problems.append(f"{where} (no heading #{fragment} in {resolved.name})")
    return problems


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    problems = broken_links(document)
    assert not problems, f"{document.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_the_readme_stays_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines: keep it to install, a server, the two commands and "
        "links, and move the rest to docs/, benchmarks/README.md or CONTRIBUTING.md"
    )


def test_install_snippets_hold_no_placeholder_owner() -> None:
    """`OWNER/lloom-lsp` is not something a user can type: the snippets use a clone."""
    texts = [*documents(), ROOT / "editors" / "neovim" / "doc" / "lloom.txt"]
    for path in texts:
        assert "OWNER/" not in path.read_text(encoding="utf-8"), path


def test_the_parser_skips_code_and_reads_every_link_form() -> None:
    text = "\n".join(
        [
            "# A heading, with `code` (and parens)",
            "See [one](a.md#x) and ![pic](img/p.png 'title') and [par](b_(c).md).",
            "Not a link: `[x](nowhere.md)`, nor in a comment <!-- [y](gone.md) -->.",
            "```md",
            "[z](inside-a-fence.md)",
            "```",
            "A [link that wraps",
            "lines](wrapped.md) and <a href='html.md'>html</a>.",
            "",
            "[ref]: <referenced.md>",
            "## A heading, with `code` (and parens)",
        ]
    )
    assert links(text) == [
        (2, "a.md#x"),
        (2, "b_(c).md"),
        (2, "img/p.png"),
        (8, "html.md"),
        (8, "wrapped.md"),
        (10, "referenced.md"),
    ]
    assert anchors(text) == {"a-heading-with-code-and-parens", "a-heading-with-code-and-parens-1"}
    assert slug("A writer's loop") == "a-writers-loop"
    assert slug("Emacs (eglot)") == "emacs-eglot"

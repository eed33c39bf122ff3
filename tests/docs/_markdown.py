"""Just enough Markdown reading for the docs checks: headings, links, code blocks, tables.

Written by hand: the checks need GitHub's heading anchors and the fenced code blocks with
their info string, which a renderer (markdown-it and the like) would give only after a
plugin and a walk over its token tree of about the same length as this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); one level of nested brackets in the text.
_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_REF = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)
_HTML_ID = re.compile(r"<a\b[^>]*?\b(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
# `<!-- numbers from results/X.json -->`; `... results/X.json phase3 -->` for a table whose rows
# are the services of one phase; `... phase3/search -->` (or http_ceiling/search) for the rates
# the bench offered it; `... scale -->` for the scale model's points, bursts and goals;
# `... scale/<what>` for what tests/docs/_results.py derives from the scale model (the
# evidence at each wall, and what its CPU per signup predicts): see PREDICTIONS in test_docs;
# `cost`, `cost/goals`, `shed` and `failover` for the bench parts of those names; `cluster`
# for the scale model's phase 3 against phase 4 (its points and its two goals). A marker
# whose scope is not one of these is no marker at all, and its table goes unchecked: a test
# says so (test_every_marker_is_read).
_SCOPE = (
    r"scale(?:/(?:predicted|machine|cores|sizing|load))?|(?:phase\d|http_ceiling)(?:/search)?"
    r"|cost(?:/goals)?|shed|failover|cluster"
)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_MARKER = re.compile(rf"<!--\s*numbers from (\S+)(?:\s+({_SCOPE}))?\s*-->")


@dataclass(frozen=True)
class Line:
    number: int
    text: str


@dataclass(frozen=True)
class CodeBlock:
    language: str
    first_line: int
    lines: list[str]


@dataclass(frozen=True)
class Table:
    source: str  # the path named by the marker comment before it
    scope: str  # "", a phase (rows: its services), or `phaseN/search` (rows: rates offered)
    line: int
    header: list[str]
    rows: list[list[str]]


def prose(path: Path) -> Iterator[Line]:
    """Lines outside fenced code blocks."""
    fence = ""
    for number, text in enumerate(path.read_text().splitlines(), 1):
        match = _FENCE.match(text)
        if match and (not fence or match.group(1).startswith(fence)):
            fence = "" if fence else match.group(1)[:3]
            continue
        if not fence:
            yield Line(number, text)


def code_blocks(path: Path) -> Iterator[CodeBlock]:
    block: CodeBlock | None = None
    fence = ""
    for number, text in enumerate(path.read_text().splitlines(), 1):
        match = _FENCE.match(text)
        if block is None and match:
            fence = match.group(1)[:3]
            block = CodeBlock(match.group(2).lower(), number + 1, [])
        elif block is not None and text.strip().startswith(fence):
            yield block
            block = None
        elif block is not None:
            block.lines.append(text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub makes for the file: headings (numbered when repeated), <a id>."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose(path):
        match = _HEADING.match(line.text)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(_HTML_ID.findall(line.text))
    return found


def links(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, text, target) of every Markdown or HTML link and image outside code."""
    for line in prose(path):
        text = _CODE_SPAN.sub("", line.text)
        for label, target in _LINK.findall(text):
            yield line.number, label, target
        for target in _HTML_REF.findall(text):
            yield line.number, "", target


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def marked_tables(path: Path) -> Iterator[Table]:
    """Tables right after a `<!-- numbers from results/FILE.json -->` comment."""
    lines = list(prose(path))
    for i, line in enumerate(lines):
        match = _MARKER.search(line.text)
        if not match:
            continue
        body = [x for x in lines[i + 1 :] if x.text.strip()][:1]
        start = body[0].number if body else line.number
        rows: list[list[str]] = []
        for follow in lines[i + 1 :]:
            if follow.number < start:
                continue
            if not follow.text.lstrip().startswith("|"):
                break
            rows.append(cells(follow.text))
        header = rows[0] if rows else []
        yield Table(match.group(1), match.group(2) or "", line.number, header, rows[2:])


def section(path: Path, heading: str) -> list[str]:
    """The lines under a `## heading` up to the next heading of the same or a higher level."""
    return [line.text for line in _section(prose(path), heading)]


def _section(lines: Iterator[Line], heading: str) -> list[Line]:
    out: list[Line] = []
    level = 0
    for line in lines:
        match = _HEADING.match(line.text)
        if match and level and len(match.group(1)) <= level:
            break
        if level:
            out.append(line)
        elif match and match.group(2).strip() == heading:
            level = len(match.group(1))
    return out


def prose_numbers(path: Path, heading: str | None = None) -> list[tuple[int, str]]:
    """(line, number) in the page's prose, or in one section's: not in code, tables, links'
    targets, comments."""
    lines = prose(path) if heading is None else iter(_section(prose(path), heading))
    found = []
    for line in lines:
        text = line.text.strip()
        if text.startswith(("|", "<!--")):
            continue
        text = re.sub(r"`[^`]*`", "", text)
        text = re.sub(r"\]\([^)]*\)", "]", text)
        text = re.sub(r"\[[^\]]*\.(?:json|md|png)\]", "", text)  # a file name as link text
        text = re.sub(r"https?://\S+", "", text)
        found += [(line.number, m.rstrip(",.")) for m in _NUMBER.findall(text)]
    return found

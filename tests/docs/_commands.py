"""The shell commands the docs show, and what each make target really reads.

The variables a target accepts are read from the sources that consume them, never listed by
hand: the Makefile recipe's `$(NAME)`s, the phase compose files' `${NAME}` interpolations, the
native runtime's `LAB_PORT_*` ports, and the `__ENV` names of the k6 scripts.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lab.runtime import Ports
from lab.topology import PHASES, REPO
from tests.docs import _markdown

SHELL_LANGUAGES = ("", "sh", "bash", "shell", "console")
_COMMENT = re.compile(r"(^|\s)#.*$")  # a `#` that starts a word, as in the shell
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")
_TARGET = re.compile(r"^([a-zA-Z0-9_-]+):(?!=)")
_MAKE_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_IFEQ = re.compile(r"^ifn?eq \(\$\(([A-Za-z_][A-Za-z0-9_]*)\)", re.MULTILINE)
_K6_VAR = re.compile(r"(?:__ENV\.|__ENV\[['\"]|number\(['\"]|duration\(['\"])([A-Z_][A-Z0-9_]*)")
# Read by the lab's Python rather than by make or k6: where each target's program looks.
_RUN_DIR = ("LAB_RUN_DIR",)
_LOADTEST = (*_RUN_DIR, "LOADTEST_RESULTS_DIR")


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    text: str
    words: list[str]  # after the leading NAME=value assignments
    assignments: dict[str, str]  # every NAME=value, before and after the program


def commands(page: Path) -> Iterator[Command]:
    """Each simple command of the page's shell code blocks (comments and prompts removed)."""
    for block in _markdown.code_blocks(page):
        if block.language not in SHELL_LANGUAGES:
            continue
        pending, start = "", block.first_line
        for offset, raw in enumerate(block.lines):
            if not pending:
                start = block.first_line + offset
            line = raw.removeprefix("$ ")
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            full, pending = pending + line, ""
            try:
                words = shlex.split(_COMMENT.sub("", full))
            except ValueError:
                continue  # not shell (a sample answer printed in the block)
            yield from _split(page, start, full, words)


def _split(page: Path, line: int, text: str, words: list[str]) -> Iterator[Command]:
    part: list[str] = []
    for word in [*words, "&&"]:
        if word in ("&&", "||", ";", "|"):
            names = {m.group(1): w[m.end() :] for w in part if (m := _ASSIGN.match(w))}
            lead = 0
            while lead < len(part) and _ASSIGN.match(part[lead]):
                lead += 1
            if part[lead:]:
                yield Command(page, line, text, part[lead:], names)
            part = []
        else:
            part.append(word)


def make_targets(words: list[str]) -> list[str]:
    """The targets of `make [options] [targets] [NAME=value]` (the default goal if none)."""
    targets = [w for w in words[1:] if not w.startswith("-") and not _ASSIGN.match(w)]
    return targets or ["help"]


@cache
def recipes() -> dict[str, str]:
    """Makefile target -> its recipe text."""
    found: dict[str, str] = {}
    current: list[str] = []
    for line in (REPO / "Makefile").read_text().splitlines():
        match = _TARGET.match(line)
        if match and not line.startswith("\t"):
            current = [t for t in line.split(":", 1)[0].split() if not t.startswith(".")]
            for target in current:
                found.setdefault(target, "")
        elif line.startswith("\t"):
            for target in current:
                found[target] += line + "\n"
        elif line.strip():
            current = []
    return found


@cache
def _conditions() -> frozenset[str]:
    """Variables the Makefile tests at its top level (`ifeq ($(SCALE_MODEL),1)`): they change
    the environment every phase starts with."""
    return frozenset(_IFEQ.findall((REPO / "Makefile").read_text()))


@cache
def _k6_variables() -> frozenset[str]:
    scripts = [*REPO.glob("loadtests/*.js"), *REPO.glob("loadtests/lib/*.js")]
    return frozenset(name for js in scripts for name in _K6_VAR.findall(js.read_text()))


def _compose_variables(phase: str) -> set[str]:
    files = [PHASES[phase] / "compose.yaml", REPO / "monitoring" / "compose.yaml"]
    return {name for path in files for name in _COMPOSE_VAR.findall(path.read_text())}


def variables(target: str) -> set[str]:
    """Every variable that changes what `make <target>` does."""
    recipe = recipes()[target]
    names = set(_MAKE_REF.findall(recipe))
    phase = re.search(r"\bup (phase\d)\b", recipe)
    if phase:
        names |= _compose_variables(phase.group(1))
        names |= {f"LAB_PORT_{f.name.upper()}" for f in dataclasses.fields(Ports) if f.init}
        names |= {"LAB_PORTS", "RUNTIME", *_RUN_DIR, *_conditions()}
    if "lab.loadtest" in recipe:
        names |= _k6_variables() | set(_LOADTEST)
    if "lab.report" in recipe:
        names |= set(_LOADTEST)
    if "$(LAB)" in recipe:
        names |= set(_RUN_DIR)
    return names


def loadtest_scenario(target: str) -> str | None:
    """`make load-test-capacity` -> `capacity`: the scenario its recipe runs."""
    match = re.search(r"-m lab\.loadtest (\w+)", recipes()[target])
    return match.group(1) if match else None


def python_module(words: list[str]) -> str | None:
    """`python -m MODULE ...` (any python of the venv or PATH) -> MODULE."""
    if Path(words[0]).name.startswith("python") and len(words) > 2 and words[1] == "-m":
        return words[2]
    return None


def options(words: list[str]) -> list[str]:
    return [w.split("=", 1)[0] for w in words if w.startswith("--")]

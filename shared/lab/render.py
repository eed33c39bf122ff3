"""`python -m lab.render`: render every committed Docker config from its template.

Docker mounts plain files, and the native runtime renders the same Jinja2 templates at start
with loopback addresses. So each config a compose file mounts is rendered here, with Docker's
service names, and committed; `--check` fails when a committed file differs from what its
template renders now (CI runs it through the tests), so template and file cannot drift.

Where render jobs come from: every module in `lab/components/` may define a module-level

    DOCKER_RENDERS: list[DockerRender]

one item per generated file. `DockerRender(template, output, context)`: `template` is the
Jinja2 file (absolute path), `output` where the rendered file is committed (absolute path,
inside the repository), `context` the template variables. `runtime="docker"` is added to the
context (templates branch on it; the native runtime passes `runtime="native"`), so the item
gives everything else the template reads, usually `phase`. The rendered text gets a first
line saying it is generated, written with the file format's comment marker (`comment`, "#" by
default; None for formats without comments).

Example (a phase 2 component module):

    DOCKER_RENDERS = [
        DockerRender(TEMPLATE, REPO / "phase2-replicas/generated/nginx.conf",
                     {"phase": "phase2", "upstream": "app:8000"}),
    ]
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from lab.topology import REPO


@dataclass(frozen=True)
class DockerRender:
    """One committed file rendered from a template for the Docker runtime."""

    template: Path
    output: Path
    context: Mapping[str, object] = field(default_factory=dict)
    comment: str | None = "#"

    def text(self) -> str:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.template.parent)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,  # noqa: S701 - config files, not HTML
        )
        body = env.get_template(self.template.name).render({**self.context, "runtime": "docker"})
        if self.comment is None:
            return body
        source = _relative(self.template)
        header = f"{self.comment} GENERATED from {source} by `make render`: edit the template."
        return f"{header}\n{body}"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def collect(package: str = "lab.components") -> list[DockerRender]:
    """The DOCKER_RENDERS of every module of `package`, in module name order."""
    root = importlib.import_module(package)
    renders: list[DockerRender] = []
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package}.{info.name}")
        items = getattr(module, "DOCKER_RENDERS", ())
        for item in items:
            if not isinstance(item, DockerRender):
                raise TypeError(f"{module.__name__}.DOCKER_RENDERS holds {item!r}")
            renders.append(item)
    outputs = [r.output for r in renders]
    duplicates = sorted({str(o) for o in outputs if outputs.count(o) > 1})
    if duplicates:
        raise ValueError(f"rendered by more than one job: {', '.join(duplicates)}")
    return renders


def stale(renders: Iterable[DockerRender]) -> list[tuple[DockerRender, str]]:
    """Each render whose committed file is missing or differs, with the reason."""
    found = []
    for item in renders:
        if not item.output.exists():
            found.append((item, "missing"))
        elif item.output.read_text() != item.text():
            found.append((item, "differs from its template"))
    return found


def write(renders: Iterable[DockerRender]) -> list[Path]:
    """Render every item; returns the files whose content changed."""
    changed = []
    for item in renders:
        text = item.text()
        if item.output.exists() and item.output.read_text() == text:
            continue
        item.output.parent.mkdir(parents=True, exist_ok=True)
        item.output.write_text(text)
        changed.append(item.output)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.render", description="Render the committed Docker configs."
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a committed render is missing or stale",
    )
    args = parser.parse_args(argv)
    try:
        return _check(collect()) if args.check else _write(collect())
    except (jinja2.TemplateError, OSError, TypeError, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _check(renders: list[DockerRender]) -> int:
    problems = stale(renders)
    for item, reason in problems:
        print(f"stale: {_relative(item.output)} {reason} (run `make render`)", file=sys.stderr)
    if not problems:
        print(f"{len(renders)} rendered configs are up to date")
    return 1 if problems else 0


def _write(renders: list[DockerRender]) -> int:
    changed = write(renders)
    for path in changed:
        print(f"rendered {_relative(path)}")
    print(f"{len(renders)} configs, {len(changed)} changed")
    return 0


if __name__ == "__main__":
    # Run as `python -m lab.render` this file is `__main__`, a second copy of the module whose
    # DockerRender is not the one the components import: use the real module's main.
    from lab.render import main as _main

    sys.exit(_main())

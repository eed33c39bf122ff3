"""The images the phases run, under the exact names the compose files pin.

Two sources, one test body. Where the engine can pull (a maintainer's machine), the real images.
Where no registry answers (this project's machines and CI), stand-ins built from Debian 12's
packages: a `debootstrap --variant=minbase` root imported as a base, then one small Dockerfile
per image under tests/docker/images/, named after the image's repository (`postgres`,
`redis_exporter`, ...). Each says which interface of the official image it reproduces and what
differs. The tag is whatever the compose files (or the Dockerfiles they build) pin, so bumping a
pin needs no change here; an image without a stand-in fails the test and names the folder to add.

Grafana and cAdvisor have no Debian package: the phases run without them (WITHOUT), and the run
says so; their configuration keeps its static tests.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from lab.topology import PHASES, REPO
from tests.compose import _compose
from tests.docker._engine import Engine, EngineError

log = logging.getLogger("docker-test")
STAND_INS = Path(__file__).parent / "images"
BASE = "signup-lab-test/bookworm-minbase"
# Services left out of every phase, and why (the Makefile's WITHOUT takes their names).
LEFT_OUT = {
    "grafana": "Grafana has no Debian package to build a stand-in from",
    "cadvisor": "cAdvisor has no Debian package to build a stand-in from",
}
# Files a stand-in's build copies from outside its folder (None: the machine's CA bundle).
EXTRA_FILES: dict[str, dict[str, Path | None]] = {
    "python": {"host-ca.crt": None},
    "pgbouncer-exporter": {
        "pgbouncer_exporter.py": REPO / "shared/lab/native/pgbouncer_exporter.py",
        "constraints.txt": REPO / "shared/constraints.txt",
    },
}
# The python stand-in under a name of the test's own too, for stand-ins built on it.
PYTHON = "signup-lab-test/python"
_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", re.IGNORECASE | re.MULTILINE)


def repository(reference: str) -> str:
    """`quay.io/org/postgres-exporter:v0.16.0` -> `postgres-exporter`."""
    name = reference.rsplit("/", 1)[-1]
    return name.split("@", 1)[0].split(":", 1)[0]


def dockerfile_bases(dockerfile: Path) -> list[str]:
    """The images a Dockerfile builds FROM, less its own stages (`FROM x AS stage`)."""
    text = dockerfile.read_text()
    stages = {m.lower() for m in re.findall(r"\bAS\s+(\S+)", text, re.IGNORECASE)}
    return [ref for ref in _FROM.findall(text) if ref.lower() not in stages]


def references() -> dict[str, str]:
    """Every image a phase needs from a registry -> the first place that names it."""
    found: dict[str, str] = {}
    for phase in PHASES:
        for name, service in _compose.config(phase)["services"].items():
            if name in LEFT_OUT:
                continue
            build = service.get("build")
            if build:
                dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
                for ref in dockerfile_bases(dockerfile):
                    found.setdefault(ref, str(dockerfile.relative_to(REPO)))
            else:
                found.setdefault(service["image"], f"{phase} service {name}")
    return found


def host_ca_bundle() -> Path:
    """The machine's trust store: what lets pip inside a build reach PyPI through a proxy that
    re-signs TLS with an authority only this machine knows."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise EngineError("no CA bundle found (SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt)")


def debian_mirror(sources: Iterable[Path] | None = None) -> str:
    """The Debian mirror this machine's apt uses (one-line or deb822 sources), so debootstrap
    reaches what apt-get reaches here."""
    paths = sources or [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in paths:
        if not path.is_file() or not path.name.endswith((".list", ".sources")):
            continue
        text = path.read_text()
        for line in text.splitlines():
            # deb [options] URI suite components; the options in brackets are dropped.
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if words[:1] == ["deb"] and words[2:3] == ["bookworm"]:
                return words[1]
        for stanza in text.split("\n\n"):
            fields = dict(
                (k.strip(), v.strip())
                for k, _, v in (ln.partition(":") for ln in stanza.splitlines())
                if not k.startswith("#")
            )
            if "bookworm" in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    raise EngineError("no Debian bookworm mirror in /etc/apt/sources.list(.d)")


def can_pull(engine: Engine, reference: str) -> bool:
    try:
        return engine.docker("pull", "--quiet", reference, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def pull(engine: Engine, refs: Iterable[str]) -> None:
    for ref in refs:
        result = engine.docker("pull", "--quiet", ref, timeout=600)
        if result.returncode != 0:
            raise EngineError(f"docker pull {ref}: {result.stderr.strip()}")


def build_base(engine: Engine, work: Path) -> None:
    root = work / "rootfs"
    mirror = debian_mirror()
    log.info("debootstrap --variant=minbase bookworm from %s (about 30 s)", mirror)
    debootstrap = ["debootstrap", "--variant=minbase", "bookworm", str(root), mirror]
    _check(debootstrap, work / "debootstrap")
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    with subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE) as tar:
        imported = subprocess.run(
            ["docker", "import", "-", BASE],
            stdin=tar.stdout,
            env=engine.environment(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if imported.returncode != 0 or tar.returncode != 0:
        raise EngineError(f"docker import of the debootstrap root failed: {imported.stderr}")
    shutil.rmtree(root, ignore_errors=True)


def build_stand_ins(engine: Engine, refs: Mapping[str, str], work: Path) -> None:
    """The base, then one stand-in per reference (python first: others may build on it)."""
    missing = sorted({repository(r) for r in refs} - {p.name for p in STAND_INS.iterdir()})
    missing = [m for m in missing if m != "debian"]
    if missing:
        raise EngineError(f"no stand-in for {missing}: add tests/docker/images/<name>/Dockerfile")
    build_base(engine, work)
    ordered = sorted(refs, key=lambda r: repository(r) != "python")
    for number, ref in enumerate(ordered, 1):
        name = repository(ref)
        if name == "debian":  # the base is what the official debian image is
            _docker(engine, "tag", BASE, ref)
            continue
        log.info("stand-in %d/%d: %s (tests/docker/images/%s)", number, len(refs), ref, name)
        with tempfile.TemporaryDirectory(dir=work) as context:
            shutil.copytree(STAND_INS / name, context, dirs_exist_ok=True)
            for target, source in EXTRA_FILES.get(name, {}).items():
                shutil.copy(source or host_ca_bundle(), Path(context) / target)
            tags = ["--tag", ref, *(["--tag", PYTHON] if name == "python" else [])]
            result = engine.docker("build", "--quiet", *tags, context, timeout=900)
        if result.returncode != 0:
            raise EngineError(f"building the stand-in for {ref}:\n{result.stderr[-3000:]}")


def _docker(engine: Engine, *args: str) -> None:
    result = engine.docker(*args)
    if result.returncode != 0:
        raise EngineError(f"docker {' '.join(args)}: {result.stderr.strip()}")


def _check(command: list[str], log_stem: Path) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        log_stem.with_suffix(".log").write_text(result.stdout + result.stderr)
        raise EngineError(f"{command[0]} failed:\n{(result.stdout + result.stderr)[-2000:]}")

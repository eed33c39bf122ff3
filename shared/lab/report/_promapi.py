"""The few calls of Prometheus's HTTP API the report and the dashboard tests make.

Plain urllib: four GET requests returning JSON need no client library, and an unreachable
Prometheus becomes one exception with one line to show.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import yaml

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class PrometheusError(RuntimeError):
    """Prometheus answered with an error (a bad query, a bad range)."""


class Unreachable(PrometheusError):
    """Nothing answers at the URL, or it is not a ready Prometheus."""


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    times: list[float]
    values: list[float]  # NaN and ±Inf as floats, as Prometheus sends them

    def has_data(self) -> bool:
        return any(v == v for v in self.values)  # NaN is the only value unequal to itself


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration like 5s, 1m30s or 500ms."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


class Prometheus:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str] | None = None) -> bytes:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(  # noqa: S310 - the URL is the user's Prometheus
                f"{self.url}{path}{query}", timeout=self.timeout
            ) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                message = str(exc)
            raise PrometheusError(message) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"Prometheus at {self.url} is not reachable ({reason})") from None

    def _api(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            answer = json.loads(self._get(path, params))
        except ValueError:
            raise Unreachable(f"{self.url} answered {path} with something not JSON") from None
        if answer.get("status") != "success":
            raise PrometheusError(answer.get("error", "unknown error"))
        return answer["data"]

    def ready(self) -> None:
        """Raise Unreachable unless a Prometheus answers and is ready."""
        try:
            self._get("/-/ready")
        except Unreachable:
            raise
        except PrometheusError as exc:
            raise Unreachable(f"Prometheus at {self.url} is not ready ({exc})") from None

    def query(self, expr: str, at: float) -> list[Series]:
        data = self._api("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        if data["resultType"] == "scalar":
            t, v = data["result"]
            return [Series({}, [float(t)], [float(v)])]
        return [
            Series(item["metric"], [float(item["value"][0])], [float(item["value"][1])])
            for item in data["result"]
        ]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}"}
        data = self._api("/api/v1/query_range", params)
        return [
            Series(
                item["metric"],
                [float(t) for t, _ in item["values"]],
                [float(v) for _, v in item["values"]],
            )
            for item in data["result"]
        ]

    def scrape_interval(self) -> float:
        """The global scrape interval of the running config, in seconds."""
        config = yaml.safe_load(self._api("/api/v1/status/config")["yaml"])
        return parse_duration(str(config.get("global", {}).get("scrape_interval", "1m")))

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self._api("/api/v1/targets")["activeTargets"]
        return active

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._api("/api/v1/rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

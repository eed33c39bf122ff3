"""The alert rules: valid for promtool, unit-tested by promtool, and complete.

`promtool test rules` runs the cases in monitoring/prometheus/tests/; the checks here make sure
those cases exist for every alert (one that fires, one that stays quiet) and that every alert
carries what a person receiving it needs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "monitoring" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
PROMTOOL = "/usr/bin/promtool"

# The nine alerts of the metrics guide, and the two phase 3 adds, with their severities. The
# error rate pages only on server errors; a surge of client errors is a warning.
GUIDE_ALERTS = {
    ("SignupHighErrorRate", "critical"),
    ("SignupHighErrorRate", "warning"),
    ("SignupDatabaseConnectionsHigh", "critical"),
    ("SignupServiceDown", "critical"),
    ("SignupHighServerErrors", "critical"),
    ("SignupSlowLatency", "warning"),
    ("SignupHighValidationErrors", "warning"),
    ("SignupSlowDatabaseQueries", "warning"),
    ("SignupTrafficSpike", "info"),
    ("SignupHighDuplicateEmails", "info"),
}
PHASE3_ALERTS = {("SignupQueueLagGrowing", "warning"), ("SignupWriterStopped", "critical")}
PHASE4_ALERTS = {("RedisClusterNotOk", "critical"), ("RedisPrimaryWithoutReplica", "critical")}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False
    )


def alerts() -> list[tuple[str, dict[str, Any]]]:
    """(group name, rule) for every alerting rule of every rule file."""
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [(group["name"], rule) for rule in group["rules"] if "alert" in rule]
    return found


def test_rule_files_exist() -> None:
    assert RULE_FILES, "no rule files in monitoring/prometheus/rules"
    assert TEST_FILES, "no promtool test files in monitoring/prometheus/tests"


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_guide_alert_and_phase3_and_4_alert_exists_with_its_severity() -> None:
    found = [(rule["alert"], rule["labels"]["severity"]) for _, rule in alerts()]
    assert sorted(found) == sorted(GUIDE_ALERTS | PHASE3_ALERTS | PHASE4_ALERTS)


@pytest.mark.parametrize(
    ("group", "rule"),
    alerts(),
    ids=[f"{r['alert']}-{r['labels']['severity']}" for _, r in alerts()],
)
def test_alert_has_what_its_receiver_needs(group: str, rule: dict[str, Any]) -> None:
    name = rule["alert"]
    assert rule.get("for"), f"{name} has no `for`: one bad scrape would page"
    labels, notes = rule["labels"], rule["annotations"]
    assert labels["service"] in ("signup", "signup-writer", "redis")
    # Grouped by severity: the group's name says which.
    assert group == f"signup-{labels['severity']}"
    assert notes["summary"].strip()
    assert notes["description"].strip()
    assert notes["runbook"] == f"docs/metrics.md#{name.lower()}"
    # Every expression keeps the phase, so an alert says which phase it is about.
    assert "phase" in rule["expr"] or "up{" in rule["expr"]


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", ()):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for _, rule in alerts()}
    assert names - firing == set(), "alerts without a firing case"
    assert names - quiet == set(), "alerts without a quiet case"


def test_promtool_test_rules_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    # The unit tests can fail: a copy expecting another summary must not pass.
    text = (PROMETHEUS / "tests" / "signup-alerts.test.yml").read_text()
    rules = PROMETHEUS / "rules" / "signup-alerts.yml"
    wrong = text.replace("../rules/signup-alerts.yml", str(rules)).replace(
        "Signup server error rate is 10.0% in phase1", "Signup server error rate is 11.0% in phase1"
    )
    assert wrong != text
    copy = tmp_path / "wrong.test.yml"
    copy.write_text(wrong)
    result = promtool("test", "rules", str(copy))
    assert result.returncode != 0
    assert "SignupHighErrorRate" in result.stdout + result.stderr

"""The dashboards are valid, provisioned Grafana JSON whose every query can be answered.

Grafana itself cannot run here, so this checks what Grafana would reject or silently show
empty: schema version, uids, datasource references, variables, and metric names nobody
exports. (tests/monitoring/test_panels_live.py runs every query against a real Prometheus.)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lab.report import dashboards
from lab.report.dashboards import Panel
from signup import metrics

REPO = Path(__file__).resolve().parents[3]
PROVISIONING = REPO / "monitoring" / "grafana" / "provisioning"
BOARDS = dashboards.load()
PANELS = list(dashboards.panels(BOARDS))

# Series other exporters provide, by exporter, as the dashboards use them. The native test run
# checks the phase 1 ones against the real exporters (test_panels_live.py).
EXPORTED_ELSEWHERE: dict[str, set[str]] = {
    # cAdvisor (Docker); the native supervisor exports the first seven itself.
    "cadvisor": {
        "container_cpu_usage_seconds_total",
        "container_cpu_cfs_periods_total",
        "container_cpu_cfs_throttled_periods_total",
        "container_memory_usage_bytes",
        "container_spec_cpu_quota",
        "container_spec_cpu_period",
        "container_spec_memory_limit_bytes",
        "container_network_receive_bytes_total",
        "container_network_transmit_bytes_total",
    },
    "postgres_exporter": {
        "pg_stat_activity_count",
        "pg_settings_max_connections",
        "pg_stat_database_tup_inserted",
    },
    "nginx-prometheus-exporter": {
        "nginx_connections_active",
        "nginx_connections_waiting",
        "nginx_http_requests_total",
    },
    # prometheus-community/pgbouncer_exporter in Docker; lab.native.pgbouncer_exporter natively
    # (same names: Debian's exporter does not work with Debian's PgBouncer)
    "pgbouncer_exporter": {
        "pgbouncer_pools_client_active_connections",
        "pgbouncer_pools_client_waiting_connections",
        "pgbouncer_pools_client_maxwait_seconds",
        "pgbouncer_pools_server_active_connections",
        "pgbouncer_pools_server_idle_connections",
    },
    "redis_exporter": {
        "redis_memory_used_bytes",
        # phase 4's cluster nodes (CLUSTER INFO and INFO replication, per node)
        "redis_cluster_slots_ok",
        "redis_cluster_slots_fail",
        "redis_cluster_slots_pfail",
        "redis_cluster_known_nodes",
        "redis_cluster_current_epoch",
        "redis_commands_processed_total",
        "redis_instance_info",
        "redis_connected_slaves",
        "redis_master_repl_offset",
        "redis_connected_slave_offset_bytes",
    },
    # k6's experimental-prometheus-rw output with K6_PROMETHEUS_RW_TREND_STATS=p(95),...
    "k6": {"k6_http_reqs_total", "k6_http_req_duration_p95", "k6_vus"},
}
# The guide's panels, by dashboard (titles as in the guide).
GUIDE_PANELS = {
    "signup-overview": {
        "Signups/sec",
        "Success Rate",
        "p95 Latency",
        "Error Rate",
        "Total Signups Today",
        "Connection Pool Usage",
    },
    "signup-traffic": {
        "Requests by Status Code",
        "Latency Percentiles",
        "Error Breakdown",
        "Database Query Time",
        "Validation Errors by Field",
    },
    "signup-capacity": {
        "CPU Usage",
        "Memory Usage",
        "Database Connections",
        "Requests/Minute Trend",
        "Progress to Signup Goal",
    },
}


def service_metric_names() -> set[str]:
    """Every series name signup.metrics exports, with all label values created."""
    metrics.precreate_request_series()
    text = generate_latest(REGISTRY).decode() + generate_latest(metrics.writer().registry).decode()
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def selectors(expr: str) -> list[Any]:
    """Every vector selector of a PromQL expression, from the real parser's tree."""
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        elif isinstance(node, promql_parser.MatrixSelector):
            found.append(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(
            node,
            promql_parser.AggregateExpr
            | promql_parser.ParenExpr
            | promql_parser.UnaryExpr
            | promql_parser.SubqueryExpr,
        ):
            walk(node.expr)

    walk(promql_parser.parse(expr))
    return found


def concrete(expr: str, board: dashboards.Dashboard) -> str:
    return dashboards.substitute(
        expr, phase="PHASE", instance="INSTANCE", variables=board.variables
    )


def board_of(panel: Panel) -> dashboards.Dashboard:
    return next(b for b in BOARDS if b.uid == panel.dashboard)


def test_the_three_dashboards_have_fixed_unique_uids_and_a_schema_version() -> None:
    assert [b.uid for b in BOARDS] == ["signup-overview", "signup-traffic", "signup-capacity"]
    for board in BOARDS:
        assert isinstance(board.raw["schemaVersion"], int)
        assert board.raw["schemaVersion"] >= 36
        ids = Counter(p["id"] for p in _all_raw_panels(board.raw["panels"]))
        assert max(ids.values()) == 1, f"{board.uid}: panel ids repeat"


def _all_raw_panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        out.append(item)
        out += _all_raw_panels(item.get("panels", []))
    return out


def test_every_datasource_reference_is_the_provisioned_uid() -> None:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = provisioned["datasources"]
    assert source["uid"] == dashboards.DATASOURCE_UID
    for board in BOARDS:
        refs = []
        for panel in _all_raw_panels(board.raw["panels"]):
            refs.append(panel.get("datasource"))
            refs += [t.get("datasource") for t in panel.get("targets", [])]
        refs += [
            v.get("datasource") for v in board.raw["templating"]["list"] if v["type"] == "query"
        ]
        for ref in refs:
            if ref is not None:
                assert ref == {"type": "prometheus", "uid": dashboards.DATASOURCE_UID}


def test_dashboards_provider_points_at_the_mounted_folder() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "signup-lab.yml").read_text())
    (entry,) = provider["providers"]
    compose = yaml.safe_load((REPO / "monitoring" / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{entry['options']['path']}:ro" in mounts


def test_every_dashboard_has_phase_and_instance_variables() -> None:
    for board in BOARDS:
        names = [v["name"] for v in board.raw["templating"]["list"]]
        assert names[:2] == ["phase", "instance"]


def test_the_guide_panels_are_all_there() -> None:
    for uid, titles in GUIDE_PANELS.items():
        assert titles <= {p.title for p in PANELS if p.dashboard == uid}


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: p.key)
def test_every_selector_uses_phase_and_instance(panel: Panel) -> None:
    assert panel.queries, "a panel without a query"
    for query in panel.queries:
        for selector in selectors(concrete(query.expr, board_of(panel))):
            matchers = {(m.name, str(m.op), m.value) for m in selector.matchers.matchers}
            names = {(name, value) for name, _, value in matchers}
            assert ("phase", "PHASE") in names, f"{selector} ignores $phase"
            assert ("instance", "INSTANCE") in names, f"{selector} ignores $instance"


def test_no_panel_references_a_metric_nobody_exports() -> None:
    known = service_metric_names().union(*EXPORTED_ELSEWHERE.values())
    used: dict[str, list[str]] = {}
    for panel in PANELS:
        for query in panel.queries:
            for selector in selectors(concrete(query.expr, board_of(panel))):
                used.setdefault(selector.name, []).append(panel.key)
    unknown = {name: where for name, where in used.items() if name not in known}
    assert not unknown
    # ... and every listed exporter name is used, so the list cannot rot.
    assert set().union(*EXPORTED_ELSEWHERE.values()) <= set(used)


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: p.key)
def test_every_panel_has_a_unit_and_a_description(panel: Panel) -> None:
    defaults = panel.raw["fieldConfig"]["defaults"]
    assert defaults.get("unit")
    assert panel.raw.get("description")
    assert defaults["thresholds"]["steps"][0]["value"] is None  # Grafana's base step


def test_success_rate_uses_the_guide_colours() -> None:
    (panel,) = [p for p in PANELS if p.title == "Success Rate"]
    steps = panel.raw["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["color"], s["value"]) for s in steps] == [
        ("red", None),
        ("yellow", 90),
        ("green", 95),
    ]


def test_pool_usage_divides_by_the_configured_maximum() -> None:
    (panel,) = [p for p in PANELS if p.title == "Connection Pool Usage"]
    (query,) = panel.queries
    assert "database_connections_max" in query.expr
    assert "25" not in query.expr


def test_substitute_replaces_every_variable_form() -> None:
    expr = 'rate(x{phase=~"$phase", instance=~"${instance}"}[$__rate_interval]) / $goal'
    assert (
        dashboards.substitute(
            expr, phase="phase1", instance=".*", rate_interval="20s", variables={"goal": "1000"}
        )
        == 'rate(x{phase=~"phase1", instance=~".*"}[20s]) / 1000'
    )
    with pytest.raises(ValueError, match=r"\$nope"):
        dashboards.substitute("x / $nope")


def test_rate_interval_and_durations_follow_grafana() -> None:
    assert dashboards.rate_interval(step=1, scrape_interval=5) == 20
    assert dashboards.rate_interval(step=60, scrape_interval=5) == 65
    assert dashboards.duration(20) == "20s"
    assert dashboards.duration(4.5) == "4500ms"


def test_legend_format() -> None:
    labels = {"__name__": "up", "phase": "phase2", "status_code": "201"}
    assert dashboards.legend("{{phase}} {{ status_code }}", labels) == "phase2 201"
    assert dashboards.legend("", labels) == 'up{phase="phase2", status_code="201"}'

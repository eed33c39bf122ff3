"""`python -m lab.native.pgbouncer_exporter`: PgBouncer's pools and stats for Prometheus, natively.

Written here because nothing installable fits: Debian 12's prometheus-pgbouncer-exporter (1.7)
crashes at start against Debian 12's own PgBouncer 1.18 (it reads SHOW STATS columns that
PgBouncer renamed in 1.8), and the PyPI package of the same name pins prometheus-client 0.8
and a psycopg2 that builds from source. The compose file runs the community's Go exporter
(prometheuscommunity/pgbouncer-exporter v0.9.0); this one exports the same series under the same
names and labels, and takes the same flag and environment variable, so the dashboards and
alerts read one set of names in both runtimes.

Like the Go exporter it connects afresh for every scrape: a PgBouncer restart shows as
`pgbouncer_up 0` for the scrapes it is down, never as an exporter stuck on a dead connection.

Unlike it, `pgbouncer_pools_client_maxwait_seconds` adds SHOW POOLS' `maxwait_us` (the
microseconds) to `maxwait` (whole seconds): waits of a few hundred milliseconds, the ones that
matter to a signup, read 0 from the Go exporter, so under Docker that panel only shows waits
of a second or more.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger("pgbouncer_exporter")
ENV_DSN = "PGBOUNCER_EXPORTER_CONNECTION_STRING"
US = 1e-6

# SHOW POOLS column -> (metric, help); labels database and user.
POOLS = {
    "cl_active": ("client_active_connections", "Client connections linked to a server"),
    "cl_waiting": ("client_waiting_connections", "Client connections waiting for a server"),
    "cl_active_cancel_req": ("client_active_cancel_connections", "Clients forwarding a cancel"),
    "cl_waiting_cancel_req": ("client_waiting_cancel_connections", "Clients with a cancel held"),
    "sv_active": ("server_active_connections", "Server connections linked to a client"),
    "sv_active_cancel": ("server_active_cancel_connections", "Servers forwarding a cancel"),
    "sv_being_canceled": ("server_being_canceled_connections", "Servers waiting on a cancel"),
    "sv_idle": ("server_idle_connections", "Server connections idle and ready"),
    "sv_used": ("server_used_connections", "Servers idle past server_check_delay"),
    "sv_tested": ("server_testing_connections", "Servers running a reset or check query"),
    "sv_login": ("server_login_connections", "Server connections logging in"),
}
# SHOW POOLS gives the oldest client's wait in two columns: whole seconds and the microseconds.
MAXWAIT = ("client_maxwait_seconds", "Age of the oldest unserved client")
# SHOW STATS column -> (counter, help, factor); label database.
STATS = {
    "total_query_count": ("queries_pooled_total", "SQL queries pooled", 1.0),
    "total_query_time": ("queries_duration_seconds_total", "Seconds executing queries", US),
    "total_received": ("received_bytes_total", "Bytes received from clients", 1.0),
    "total_sent": ("sent_bytes_total", "Bytes sent to clients", 1.0),
    "total_wait_time": ("client_wait_seconds_total", "Seconds clients waited for a server", US),
    "total_xact_count": ("sql_transactions_pooled_total", "SQL transactions pooled", 1.0),
    "total_xact_time": ("server_in_transaction_seconds_total", "Seconds in transactions", US),
}
# SHOW DATABASES numeric columns; the text columns below are its labels.
DATABASES = (
    "pool_size",
    "reserve_pool",
    "max_connections",
    "current_connections",
    "paused",
    "disabled",
)
DATABASE_LABELS = ("name", "host", "port", "database", "force_user", "pool_mode")
LISTS = {
    "databases": "databases",
    "users": "users",
    "pools": "pools",
    "free_clients": "free_clients",
    "used_clients": "used_clients",
    "login_clients": "login_clients",
    "free_servers": "free_servers",
    "used_servers": "used_servers",
    "dns_names": "cached_dns_names",
    "dns_zones": "cached_dns_zones",
    "dns_queries": "in_flight_dns_queries",
}
CONFIG = {
    "max_client_conn": "config_max_client_connections",
    "max_user_connections": "config_max_user_connections",
}

Rows = list[dict[str, Any]]


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _pool(row: dict[str, Any]) -> list[str]:
    return [_text(row["database"]), _text(row["user"])]


class PgBouncerCollector(Collector):
    def __init__(self, dsn: str, connect: Callable[..., psycopg.Connection[Any]] | None = None):
        self.dsn = dsn
        self._connect = connect or psycopg.connect

    def _show(self, conn: psycopg.Connection[Any], what: str) -> Rows:
        cur = conn.execute(f"SHOW {what}")
        names = [column.name for column in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("pgbouncer_up", "1 if PgBouncer answered this scrape")
        try:
            # The admin console has no transactions and no prepared statements.
            with self._connect(
                self.dsn, autocommit=True, connect_timeout=3, prepare_threshold=None
            ) as conn:
                shown = {
                    what: self._show(conn, what)
                    for what in ("VERSION", "LISTS", "CONFIG", "POOLS", "STATS", "DATABASES")
                }
        except psycopg.Error as exc:
            log.warning("scrape failed: %s", str(exc).strip() or type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._version(shown["VERSION"])
        yield from self._rows_as_gauges(shown["LISTS"], "list", "items", LISTS)
        yield from self._rows_as_gauges(shown["CONFIG"], "key", "value", CONFIG)
        yield from self._pools(shown["POOLS"])
        yield from self._stats(shown["STATS"])
        yield from self._databases(shown["DATABASES"])

    @staticmethod
    def _version(rows: Rows) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "pgbouncer_version_info", "PgBouncer's version", labels=["version"]
        )
        for row in rows:
            info.add_metric([_text(row.get("version"))], 1)
        yield info

    @staticmethod
    def _rows_as_gauges(
        rows: Rows, key: str, value: str, names: dict[str, str]
    ) -> Iterator[Metric]:
        for row in rows:
            name = names.get(_text(row.get(key)))
            if name is not None:
                yield GaugeMetricFamily(
                    f"pgbouncer_{name}", f"SHOW {key} {name}", float(row[value])
                )

    @staticmethod
    def _pools(rows: Rows) -> Iterator[Metric]:
        labels = ["database", "user"]
        for column, (name, help_text) in POOLS.items():
            family = GaugeMetricFamily(f"pgbouncer_pools_{name}", help_text, labels=labels)
            for row in rows:
                if column in row:
                    family.add_metric(_pool(row), float(row[column]))
            yield family
        maxwait = GaugeMetricFamily(f"pgbouncer_pools_{MAXWAIT[0]}", MAXWAIT[1], labels=labels)
        for row in rows:
            if "maxwait" in row:
                waited = float(row["maxwait"]) + float(row.get("maxwait_us") or 0) * US
                maxwait.add_metric(_pool(row), waited)
        yield maxwait

    @staticmethod
    def _stats(rows: Rows) -> Iterator[Metric]:
        for column, (name, help_text, factor) in STATS.items():
            family = CounterMetricFamily(f"pgbouncer_stats_{name}", help_text, labels=["database"])
            for row in rows:
                if column in row:
                    family.add_metric([_text(row["database"])], float(row[column]) * factor)
            yield family

    @staticmethod
    def _databases(rows: Rows) -> Iterator[Metric]:
        for column in DATABASES:
            family = GaugeMetricFamily(
                f"pgbouncer_databases_{column}", f"SHOW DATABASES {column}", labels=DATABASE_LABELS
            )
            for row in rows:
                if column in row and row[column] is not None:
                    labels = [_text(row.get(label)) for label in DATABASE_LABELS]
                    family.add_metric(labels, float(row[column]))
            yield family


def parse_listen(value: str) -> tuple[str, int]:
    host, colon, port = value.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not host:port")
    return host or "0.0.0.0", int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.native.pgbouncer_exporter", description=__doc__
    )
    parser.add_argument(
        "--pgBouncer.connectionString",
        dest="dsn",
        default=os.environ.get(ENV_DSN, ""),
        help=f"PgBouncer admin console URL (env {ENV_DSN})",
    )
    parser.add_argument("--web.listen-address", dest="listen", type=parse_listen, default=":9127")
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error(f"no PgBouncer to scrape: set {ENV_DSN} or --pgBouncer.connectionString")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    registry = CollectorRegistry()
    registry.register(PgBouncerCollector(args.dsn))
    host, port = args.listen
    server, _thread = start_http_server(port, addr=host, registry=registry)
    log.info("serving PgBouncer metrics on %s:%d", host, port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

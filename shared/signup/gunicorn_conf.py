"""gunicorn settings for compose and the native runtime: `-c python:signup.gunicorn_conf`.

Everything tunable comes from the environment so one file serves every phase:
GUNICORN_BIND (default 0.0.0.0:8000), GUNICORN_WORKERS (default 1), GUNICORN_GRACEFUL_TIMEOUT.
"""

import os
import shutil
import tempfile
from pathlib import Path

# Before prometheus_client is imported: it picks its value storage once, at import, from this
# variable, and the workers inherit the master's choice. Imported first, every worker would
# count in its own memory and /metrics (which reads the directory) would be empty. The image
# starts gunicorn without the variable, so this default is what runs under Docker.
_metrics_dir = Path(
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / "signup-metrics")
    )
)

from prometheus_client import multiprocess  # noqa: E402

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "1"))
# The maintained worker; uvicorn.workers is deprecated.
worker_class = "uvicorn_worker.UvicornWorker"
# SIGTERM: stop accepting, let in-flight requests finish, then the lifespan closes the pool.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
timeout = 30
keepalive = 75  # longer than nginx's upstream keepalive_timeout, so nginx closes first
accesslog = None
# gunicorn >= 25.1 opens a control socket at one fixed path per user ($HOME/.gunicorn), so
# every replica on a host would share it and one could signal another. Nothing here uses it.
control_socket_disable = True
wsgi_app = "signup.app:create_app()"


def on_starting(server: object) -> None:
    # Metrics from every worker go to files in one directory, summed on scrape. It must be
    # empty when the master starts, or counters of a previous run would be added in.
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True)


def child_exit(server: object, worker: object) -> None:
    # A dead worker's livesum gauges (in flight, pool size) must stop counting.
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined,no-untyped-call]

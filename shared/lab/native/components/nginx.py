"""The `nginx` and `nginx-exporter` services: Debian's nginx in front of the app replicas.

nginx gets the same template the compose file mounts (rendered by `make render` with Docker's
service names, see lab.native.render), rendered here with the replicas' loopback addresses as the
upstream, its pid file and temp folders in the run folder, and its public port.
"""

from __future__ import annotations

import os
from pathlib import Path

from lab.native.components._spec import exporter, phase_template, spec
from lab.runtime import CONTAINER_PORTS, LOOPBACK, ProcSpec, RunContext, executable, http_ok
from lab.topology import Service
from signup.config import Settings

# Replies slower than this become nginx's 504; the app answers its own errors well before.
READ_TIMEOUT = "10s"


def template(phase: str) -> Path:
    return phase_template(phase, "nginx/nginx.conf.j2")


def max_body_bytes(app: Service | None) -> int:
    """The app's body limit (SIGNUP_MAX_BODY_BYTES or its default): nginx enforces the same."""
    raw = (app.environment if app else {}).get("SIGNUP_MAX_BODY_BYTES", "")
    return int(raw) if raw.strip() else Settings().max_body_bytes


def native_context(ctx: RunContext, upstream: list[str]) -> dict[str, object]:
    folder = ctx.folder("nginx")
    return {
        # As root the master keeps root (to bind and read its config) and the workers drop to
        # nobody; as anyone else there is nothing to drop.
        "user": "nobody nogroup" if os.geteuid() == 0 else None,
        "pid_file": str(folder / "nginx.pid"),
        "temp_dir": str(folder / "tmp"),
        "listen": f"{LOOPBACK}:{ctx.ports.http}",
        "status_listen": f"{LOOPBACK}:{ctx.ports.nginx_status}",
        "status_allow": [LOOPBACK],
        "upstream": upstream,
        "max_body_bytes": max_body_bytes(ctx.topology.services.get("app")),
        "read_timeout": READ_TIMEOUT,
    }


def command(config: Path) -> list[str]:
    # The prefix is the config's folder, so nothing nginx opens falls back to /var/lib/nginx.
    return [
        executable("nginx", "nginx-light"),
        "-p",
        f"{config.parent}/",
        "-c",
        str(config),
        "-g",
        "daemon off;",
    ]


def nginx(ctx: RunContext, service: Service) -> list[ProcSpec]:
    config = ctx.folder("nginx") / "nginx.conf"
    status = f"{LOOPBACK}:{ctx.ports.nginx_status}"
    ctx.addresses[(service.name, CONTAINER_PORTS["nginx"])] = f"{LOOPBACK}:{ctx.ports.http}"
    ctx.addresses[(service.name, CONTAINER_PORTS["nginx-status"])] = status
    ctx.members[service.name] = [f"{LOOPBACK}:{ctx.ports.http}"]

    def render() -> None:
        # At start, when every replica has registered its address.
        upstream = ctx.members.get("app", [])
        if not upstream:
            raise RuntimeError("nginx has no upstream: the phase starts no `app` replica")
        ctx.render(template(ctx.phase), config, **native_context(ctx, upstream))
        (config.parent / "tmp").mkdir(exist_ok=True)

    return [
        spec(
            ctx,
            service,
            command=command(config),
            check=lambda: http_ok(f"http://{status}/stub_status"),
            port=ctx.ports.http,
            prepare=render,
            url=f"http://{LOOPBACK}:{ctx.ports.http}",
            stop_signal=3,  # SIGQUIT: nginx's graceful shutdown (SIGTERM is its fast one)
        )
    ]


# The exporter (0.11.0, Debian's and the image's) handles SIGTERM by shutting its HTTP server
# down gracefully, and then exits 1 all the same: the goroutine that served log.Fatal's on
# http.ErrServerClosed. A stop would read as a failure, and SIGKILL would skip the shutdown.
# This shell waits for it and reports a stop that was asked for and went that way as the
# clean exit it is; any other exit, a crash at start included, keeps its status.
STOP_CLEANLY = """
stopping=0
trap 'stopping=1; kill -TERM "$child" 2>/dev/null' TERM
"$@" &
child=$!
wait "$child"
status=$?
if [ "$stopping" = 1 ]; then
  # The trap may have ended the wait before the child ended: wait for the child's own status
  # (a shell that already reported it answers 127 for an unknown child, or repeats it).
  wait "$child"
  code=$?
  if [ "$code" != 127 ]; then status=$code; fi
fi
# 1: its shutdown ran; 143: our TERM came before it could catch it. Either is the stop asked.
if [ "$stopping" = 1 ] && { [ "$status" = 1 ] || [ "$status" = 143 ]; }; then exit 0; fi
exit "$status"
"""


def exporter_command(address: str) -> list[str]:
    binary = executable("prometheus-nginx-exporter", "prometheus-nginx-exporter")
    command = [binary, f"-web.listen-address={address}"]
    return ["/bin/sh", "-c", STOP_CLEANLY, "nginx-exporter", *command]


def nginx_exporter(ctx: RunContext, service: Service) -> list[ProcSpec]:
    # SCRAPE_URI names `nginx:8081` as in compose; the nginx builder registers it natively.
    return exporter(ctx, service, ctx.ports.nginx_exporter, exporter_command)

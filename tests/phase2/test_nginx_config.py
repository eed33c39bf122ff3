"""The nginx config of phase 2, run by the real nginx, in front of upstreams the test controls.

The upstreams are small real HTTP servers that record every request they receive and can
misbehave on purpose: take a request and hang up without answering (a replica dying mid-
request), or answer too late. That is what it takes to see retries, replays and headers from
the replicas' side. nginx runs with the config the native runtime renders, with one change:
a 1 s read timeout (instead of 10 s) so the timeout cases take a second.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from lab._proc import ServerProcess
from lab.native.components import nginx
from lab.runtime import Ports, RunContext, http_ok
from lab.topology import load

SLOW_SECONDS = 3.0  # longer than the 1 s read timeout below


@dataclass
class Upstream:
    """One fake replica: records (method, path, headers, client port) of every request."""

    server: ThreadingHTTPServer
    hits: list[tuple[str, str, dict[str, str], int]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def paths(self, method: str) -> list[str]:
        return [path for m, path, _, _ in self.hits if m == method]


def _handler(upstream: Callable[[], Upstream]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn speaks it

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            upstream().hits.append((self.command, self.path, headers, self.client_address[1]))
            if self.path == "/drop":  # took the request, died before answering
                self.close_connection = True
                return
            if self.path == "/slow":
                time.sleep(SLOW_SECONDS)
            status = 201 if self.command == "POST" else 200
            body = json.dumps({"headers": headers}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def upstreams() -> Iterator[Callable[[], Upstream]]:
    started: list[Upstream] = []

    def start() -> Upstream:
        holder: list[Upstream] = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(lambda: holder[0]))
        server.daemon_threads = True
        holder.append(Upstream(server))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(holder[0])
        return holder[0]

    yield start
    for upstream in started:
        upstream.server.shutdown()
        upstream.server.server_close()


@dataclass
class Nginx:
    url: str
    status_url: str
    log: Path


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[Callable[[list[str]], Nginx]]:
    processes: list[ServerProcess] = []

    def start(upstream: list[str]) -> Nginx:
        ctx = RunContext(load("phase2", {}), tmp_path / f"run{len(processes)}", Ports.free())
        config = ctx.folder("nginx") / "nginx.conf"
        context = {**nginx.native_context(ctx, upstream), "read_timeout": "1s"}
        ctx.render(nginx.template("phase2"), config, **context)
        (config.parent / "tmp").mkdir()
        status = f"http://127.0.0.1:{ctx.ports.nginx_status}/stub_status"
        log = ctx.log("nginx")
        process = ServerProcess(
            nginx.command(config),
            check=lambda: http_ok(status),
            port=ctx.ports.http,
            log_file=log,
            env={},
            timeout=20,
        )
        process.start()
        processes.append(process)
        return Nginx(f"http://127.0.0.1:{ctx.ports.http}", status, log)

    yield start
    for process in processes:
        process.stop()


@pytest.fixture
def dead_address() -> Iterator[Callable[[], str]]:
    """Addresses that refuse connections: bound, never listening, held until the test ends.

    Held, not just probed free: a port that is only known to have been free can be handed
    to nginx's own listener a moment later, and nginx proxying to itself loops until its
    worker connections run out and answers 500.
    """
    held: list[socket.socket] = []

    def reserve() -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        held.append(sock)
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"

    yield reserve
    for sock in held:
        sock.close()


def test_a_post_that_reached_a_replica_is_never_replayed(
    upstreams: Callable[[], Upstream], start_nginx: Callable[[list[str]], Nginx]
) -> None:
    replicas = [upstreams() for _ in range(3)]
    proxy = start_nginx([r.address for r in replicas])

    post = httpx.post(f"{proxy.url}/drop", json={"email": "a@example.com"})
    assert (post.status_code, post.json()) == (502, {"error": "no app replica answered"})
    # The replica that took it may have inserted the row: nginx must not send it again.
    assert sum(len(r.paths("POST")) for r in replicas) == 1

    get = httpx.get(f"{proxy.url}/drop")
    assert get.status_code == 502
    # A GET is safe to repeat, so nginx does try another replica, but only up to the bound
    # (proxy_next_upstream_tries 2), not every replica there is.
    assert sum(len(r.paths("GET")) for r in replicas) == 2


def test_a_post_is_retried_when_the_connection_was_refused(
    upstreams: Callable[[], Upstream],
    start_nginx: Callable[[list[str]], Nginx],
    dead_address: Callable[[], str],
) -> None:
    live = upstreams()
    proxy = start_nginx([dead_address(), live.address])

    statuses = [httpx.post(f"{proxy.url}/signup", json={"n": n}).status_code for n in range(10)]

    assert statuses == [201] * 10
    assert live.paths("POST") == ["/signup"] * 10  # each exactly once
    # The refused replica was really tried (and its POST then went to the live one).
    assert "Connection refused" in proxy.log.read_text()


def test_a_post_that_timed_out_after_it_was_sent_is_not_replayed(
    upstreams: Callable[[], Upstream], start_nginx: Callable[[list[str]], Nginx]
) -> None:
    replicas = [upstreams() for _ in range(2)]
    proxy = start_nginx([r.address for r in replicas])

    post = httpx.post(f"{proxy.url}/slow", json={}, timeout=SLOW_SECONDS * 3)
    assert (post.status_code, post.json()) == (504, {"error": "app replica timed out"})
    assert sum(len(r.paths("POST")) for r in replicas) == 1


def test_nginx_sets_the_client_address_headers(
    upstreams: Callable[[], Upstream], start_nginx: Callable[[list[str]], Nginx]
) -> None:
    replica = upstreams()
    proxy = start_nginx([replica.address])

    spoofed = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
    seen = httpx.get(f"{proxy.url}/echo", headers=spoofed).json()["headers"]

    # The address nginx saw, not what the client claimed: the app may trust these.
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["host"] == proxy.url.removeprefix("http://")


def test_connections_to_the_replicas_are_kept_alive(
    upstreams: Callable[[], Upstream], start_nginx: Callable[[list[str]], Nginx]
) -> None:
    replica = upstreams()
    proxy = start_nginx([replica.address])

    for _ in range(20):
        assert httpx.get(f"{proxy.url}/").status_code == 200  # a new client connection each

    # One nginx worker, one request at a time: one upstream connection, reused 20 times.
    assert len({port for _, _, _, port in replica.hits}) == 1
    assert replica.hits[0][2].get("connection", "") != "close"


def test_all_replicas_down_is_a_json_502(
    start_nginx: Callable[[list[str]], Nginx], dead_address: Callable[[], str]
) -> None:
    proxy = start_nginx([dead_address(), dead_address()])

    for response in (
        httpx.get(f"{proxy.url}/"),
        httpx.post(f"{proxy.url}/signup", json={"email": "x@example.com"}),
    ):
        assert response.status_code == 502
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"error": "no app replica answered"}


def _raw(url: str, request: bytes) -> tuple[int, str, bytes]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.getheader("Content-Type", ""), response.read()


def test_nginx_own_errors_are_json(
    upstreams: Callable[[], Upstream], start_nginx: Callable[[list[str]], Nginx]
) -> None:
    replica = upstreams()
    proxy = start_nginx([replica.address])

    long_uri = httpx.get(f"{proxy.url}/{'x' * 10_000}")
    assert (long_uri.status_code, long_uri.json()) == (414, {"error": "request uri too long"})
    status, content_type, body = _raw(proxy.url, b"NOT A REQUEST\r\n\r\n")
    assert (status, content_type) == (400, "application/json")
    assert json.loads(body) == {"error": "bad request"}
    huge_header = httpx.get(f"{proxy.url}/", headers={"X-Big": "y" * 20_000})
    assert (huge_header.status_code, huge_header.json()) == (
        400,
        {"error": "request headers too large"},
    )
    # The error pages are internal: asking for one from outside is a (JSON) 404.
    direct = httpx.get(f"{proxy.url}/_error/502")
    assert (direct.status_code, direct.json()) == (404, {"error": "not found"})
    assert replica.hits == []


def test_stub_status_is_served_on_the_status_port(
    start_nginx: Callable[[list[str]], Nginx], dead_address: Callable[[], str]
) -> None:
    proxy = start_nginx([dead_address()])
    status = httpx.get(proxy.status_url)
    assert status.status_code == 200
    assert status.text.startswith("Active connections:")

"""The HTTP service: one contract for every phase, persistence chosen by settings.

Run it under gunicorn (see gunicorn.conf.py); `create_app()` is the factory
(`signup.app:create_app()`), so tests can build it with their own settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from signup import metrics
from signup._json import json_response
from signup.config import Settings
from signup.stores import (
    DuplicateEmail,
    Outcome,
    Overloaded,
    Store,
    StoreUnavailable,
    build,
)
from signup.validation import InvalidBody, ValidationFailure, parse_body, validate

log = logging.getLogger("signup")
FAILED = "failed to create user"
# The answer to a signup the store took: 201 once its row exists, 202 when it is queued and
# the row will follow (phase 3's writer).
CREATED: dict[Outcome, tuple[int, str]] = {
    "recorded": (201, "user created successfully"),
    "queued": (202, "signup accepted"),
}


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:  # chunked bodies have no Content-Length to trust
            raise _BodyTooLarge
    return bytes(body)


class SignupService:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._created = CREATED[store.outcome]

    async def signup(self, request: Request) -> Response:
        metrics.IN_FLIGHT.inc()
        started = time.perf_counter()
        try:
            if request.method == "POST":
                response = await self._create(request)
            else:
                response = self._count(405, {"error": "method not allowed"}, "invalid_method")
                response.headers["Allow"] = "POST"
        except Exception:
            # What a store or the answer raised unexpectedly (a client library's error type we
            # did not expect while Redis was SIGKILLed, once in CI): the contract's 500, its
            # traceback logged. Left to the framework, it is re-raised after the 500, and the
            # server then drops the connection: behind nginx, the client gets a 502.
            log.exception("signup failed unexpectedly")
            response = self._count(500, {"error": FAILED}, self.store.backend)
        finally:
            metrics.IN_FLIGHT.dec()
        metrics.request_duration(response.status_code).observe(time.perf_counter() - started)
        return response

    async def _create(self, request: Request) -> Response:
        try:
            body = await _read_body(request, self.settings.max_body_bytes)
            signup = validate(parse_body(body))
        except _BodyTooLarge:
            limit = self.settings.max_body_bytes
            return self._count(
                413, {"error": f"request body larger than {limit} bytes"}, "body_too_large"
            )
        except InvalidBody:
            return self._count(400, {"error": "invalid request body"}, "invalid_json")
        except ValidationFailure as failure:
            metrics.VALIDATION_ERRORS.labels(failure.field).inc()
            return self._count(400, {"error": failure.message}, "validation")
        store = self.store
        try:
            user = await store.create(signup)
        except DuplicateEmail:
            metrics.DUPLICATE_ATTEMPTS.inc()
            return self._count(409, {"error": "email already exists"}, "duplicate_email")
        except Overloaded as shed:
            if shed.error_type != "overloaded":
                log.error("signup refused: %s", shed)
            response = self._count(503, {"error": shed.message}, shed.error_type)
            response.headers["Retry-After"] = str(shed.retry_after)
            return response
        except StoreUnavailable as exc:
            log.error("signup not stored: %s", exc)
            return self._count(500, {"error": FAILED}, store.backend)
        status, message = self._created
        metrics.requests_answered(status).inc()
        return json_response(status, {"message": message, "user": user})

    @staticmethod
    def _count(status: int, body: dict[str, object], error: str) -> Response:
        metrics.requests_answered(status).inc()
        metrics.ERRORS.labels(error).inc()
        return json_response(status, body)

    async def signup_status(self, request: Request) -> Response:
        email = request.query_params.get("email", "").strip().lower()
        if not email:
            return json_response(400, {"error": "email is required"})
        try:
            state = await self.store.status(email)
        except StoreUnavailable as exc:
            log.error("status lookup failed: %s", exc)
            return json_response(500, {"error": "failed to look up signup"})
        if state is None:
            return json_response(404, {"error": "signup not found"})
        return json_response(200, {"email": email, "status": state})

    async def ready(self, request: Request) -> Response:
        try:
            await self.store.check_ready()
        except StoreUnavailable as exc:
            return json_response(503, {"status": "unavailable", "error": str(exc)[:200]})
        return json_response(200, {"status": "ready"})


async def welcome(request: Request) -> Response:
    return json_response(200, {"message": "welcome"})


async def healthz(request: Request) -> Response:
    return json_response(200, {"status": "ok"})


async def metrics_endpoint(request: Request) -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Every answer is JSON, including the framework's own 404 and 405.
    assert isinstance(exc, HTTPException)
    messages = {404: "not found", 405: "method not allowed"}
    text = messages.get(exc.status_code, str(exc.detail).lower())
    return json_response(exc.status_code, {"error": text}, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response(500, {"error": "internal server error"})


async def _sample_forever(store: Store, interval: float = 1.0) -> None:
    while True:
        store.sample_metrics()
        await asyncio.sleep(interval)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = Settings.from_env() if settings is None else settings
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    metrics.precreate_request_series()
    service = SignupService(settings, build(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.store.open()
        sampler = asyncio.create_task(_sample_forever(service.store))
        try:
            yield
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            await service.store.close()

    routes = [
        Route("/", welcome, methods=["GET"]),
        # All methods reach the handler so a wrong one is counted and answered in JSON.
        Route(
            "/signup",
            service.signup,
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        ),
        Route("/signup/status", service.signup_status, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", service.ready, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )

"""JSON responses through orjson: it is several times faster than the stdlib encoder on the hot
path and serialises the datetimes psycopg returns as RFC 3339."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response


def json_response(
    status: int, body: Mapping[str, object], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )

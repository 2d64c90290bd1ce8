"""A bound on request headers answered in the API's error shape (431, RFC 6585 section 5).

Hypercorn's HTTP/1.1 parser (h11) refuses a request whose request line and headers exceed
its ``h11_max_incomplete_size`` before the app sees it, with a bare 431: no body,
``Content-Length: 0``, ``Connection: close`` (``hypercorn/protocol/h11.py``,
``_send_error_response``: hard-coded, no hook can give it a body). So the server's bound is
set well above the app's own (:data:`SERVER_HEAD_BYTES`, :func:`web.server.hypercorn_config`)
and the app refuses first, at :data:`MAX_HEAD_BYTES`, with ``{"detail": {"code":
"REQUEST_HEADERS_TOO_LARGE", ...}}`` like every other error (:mod:`web.errors`). Only a
request over the server's bound still gets the bare 431; README and the OpenAPI document say
so. Measured on HTTP/1.1 (tests/api/test_header_limits.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from quart import Quart, request

from web.errors import ApiError, headers_too_large

MAX_HEAD_BYTES: Final = 16 * 1024
"""The app's bound on a request's head (request line and headers, as on the wire): what
Hypercorn allowed before this bound existed (its default ``h11_max_incomplete_size``), so
no request that was served before is refused now."""

SERVER_HEAD_BYTES: Final = 64 * 1024
"""Hypercorn's bound (``h11_max_incomplete_size``). h11 applies it to the bytes it holds
while the head is still incomplete, and Hypercorn reads up to 64 KiB at a time
(``asyncio/tcp_server.py`` ``MAX_RECV``): a head over this may reach the app (and get the
JSON 431) or meet the bare 431, depending on how its bytes arrive; one over twice this
always meets the bare 431."""


def head_bytes(scope: Mapping[str, Any]) -> int:
    """The size in bytes of a request's head as an HTTP/1.1 client sent it: ``METHOD SP
    target SP HTTP/x.y CRLF``, each ``name: value CRLF``, the closing CRLF (the ASGI scope
    keeps names and values as received)."""
    target = len(scope.get("raw_path") or scope.get("path", "").encode())
    query = scope.get("query_string") or b""
    if query:
        target += 1 + len(query)
    line = len(scope.get("method", "")) + 1 + target + len(" HTTP/1.1\r\n")
    fields = sum(len(name) + 2 + len(value) + 2 for name, value in scope.get("headers", ()))
    return line + fields + 2


async def _refuse_large_heads() -> None:
    if head_bytes(request.scope) > MAX_HEAD_BYTES:
        raise ApiError(431, headers_too_large(MAX_HEAD_BYTES))


def install_header_limit(app: Quart) -> None:
    """Refuse requests whose head exceeds :data:`MAX_HEAD_BYTES` before any other work
    (register first: authentication and routing never see such a request)."""
    app.before_request(_refuse_large_heads)

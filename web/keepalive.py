"""Keep HTTP/1.1 connections usable after answers given before the body was read.

Routes authorise before they read the body (contract 9 order), so a 401/403/404 can be
ready while the client is still sending it. Hypercorn (h11) only reuses a connection whose
request was read to its end; otherwise it closes the connection after the response, and a
keep-alive client loses it (issue 9 item 5). So before any response leaves, the unread rest
of the body is received and dropped, within a bound: a body over ``MAX_CONTENT_LENGTH`` or
slower than :data:`DRAIN_SECONDS` gets ``Connection: close`` instead, said honestly in the
response.
"""

from __future__ import annotations

import asyncio

from quart import Quart, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

DRAIN_SECONDS = 10.0


async def _drain_body(response: Response) -> Response:
    if (
        request.http_version in ("1.0", "1.1")
        and request.content_length is None
        and "Transfer-Encoding" not in request.headers
    ):
        return response  # an HTTP/1 request without a body (RFC 9112 6.3): nothing to drain
    try:
        # asyncio.timeout, not wait_for: wait_for wraps the body in a task, which costs two
        # loop iterations per request even when the route already read the whole body (the
        # usual case: every create), where this await returns at once.
        async with asyncio.timeout(DRAIN_SECONDS):
            await request.body
    except (TimeoutError, RequestEntityTooLarge):
        response.headers["Connection"] = "close"
    return response


def install_body_drain(app: Quart) -> None:
    """Register the drain as an ``after_request`` hook (it runs for error responses too)."""
    app.after_request(_drain_body)

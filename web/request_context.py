"""Per-request log context: a request id, the ids in the path, and one access line.

Every request gets an id: the caller's ``X-Request-ID`` when it is sane (1-128 characters
of ``A-Z a-z 0-9 . _ : -``, starting with a letter or digit: nothing that could break a log
line or a header), else a new random one. It is bound for the request's log lines
(:func:`runtime.logs.bind`, with the ``app_id``/``run_id`` of the path; the auth chain adds
the tenant) and echoed in the response's ``X-Request-ID`` header, errors included.

One access line per request (logger ``runwright.access``): method, path, status and
duration; health and metrics probes log at DEBUG so they do not flood INFO.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from quart import Quart, Response, g, request

from runtime.logs import bind, current

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_MAX = 128
REQUEST_ID_PATTERN = rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{REQUEST_ID_MAX - 1}}}"
"""A caller's request id that is kept (matched whole)."""
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_PROBES = ("/healthz", "/readyz", "/livez", "/metrics")

access_log = logging.getLogger("runwright.access")


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is valid (see the module docstring), else a new
    one (32 hex digits)."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def install_request_context(app: Quart) -> None:
    """Register the before/after-request hooks on ``app``; call once from ``create_app``,
    before the blueprints."""

    @app.before_request
    async def _begin() -> None:
        g.request_started = time.perf_counter()
        args = request.view_args or {}
        bind(
            request_id=request_id_from(request.headers.get(REQUEST_ID_HEADER)),
            app_id=args.get("app_id"),
            run_id=args.get("run_id"),
        )

    @app.after_request
    async def _end(response: Response) -> Response:
        request_id = current().get("request_id")
        if request_id is None:  # a failure before _begin ran: still give an id
            request_id = request_id_from(None)
            bind(request_id=request_id)
        response.headers[REQUEST_ID_HEADER] = request_id
        started = getattr(g, "request_started", None)
        millis = round((time.perf_counter() - started) * 1000, 1) if started else None
        level = logging.DEBUG if request.path.startswith(_PROBES) else logging.INFO
        if access_log.isEnabledFor(level):
            access_log.log(
                level,
                "%s %s %d (%s ms)",
                request.method,
                request.path,
                response.status_code,
                millis,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": millis,
                },
            )
        return response
